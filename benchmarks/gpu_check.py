"""GPU check: decode, XFeat per precision and end-to-end extraction on one CUDA device, one table.

    python benchmarks/gpu_check.py [--json FILE] [--videos-320 16] [--frames-320 900]
        [--videos-1080 2] [--frames-1080 300] [--batch-size 64] [--smoke]

Generates a corpus of H.264 files (320x240 and 1080p, moving textured patterns, encoded with
PyAV's libx264 in parallel), then measures, in this order and in one process:

1. decode frames/s: PyAV on the CPU (luma; the baseline), DALI NVDEC to RGB, and DALI NVDEC with
   grey conversion and resize to the network input inside DALI (one persistent pipeline for the
   whole corpus, :class:`memtsm.extract.decode.dali.DaliStream`);
2. the XFeat network alone (batch ``--batch-size`` at 224x320, channels-last) per precision:
   torch fp32 (TF32 off, as the engine runs it), torch bf16 autocast, and each replayed as a
   CUDA graph captured here, to show what graphs would buy before the engine uses them;
3. ``memtsm.extract.extract`` end to end per corpus: ``--decoder dali`` (NVDEC) and ``pyav``
   (CPU decode, the baseline) with the torch engine on the GPU, fp32 and bf16;
4. features against the CPU fp32 reference (PyAV + torch on the CPU) on the first 320x240
   video, read from the end-to-end stores of step 3: cosine of the clip vectors, min and mean,
   and the max abs diff;
5. GPU memory: torch's peak allocation and the device's peak used memory (``nvidia-smi``,
   polled every 0.2 s, so DALI's own allocations count).

A stage whose package is missing (DALI is not part of the default install) is reported as
"not measured" with the reason, and the rest still runs. The corpus is sized to aim at under 8
minutes on an H100/H200 with 16 CPU cores (not yet timed on one: the last row says how long it
took). ``--smoke`` runs every code path on the CPU with a
tiny VP9 corpus (DALI's CPU decoder decodes VP9, not H.264): it is how CI keeps this script
working; its figures mean nothing.

The device machine of this project has torch, h5py and onnxruntime but no DALI, PyAV or kornia,
and reaches no package index: carry PyAV and kornia as wheels (``/work/.library/device``).
DALI's smallest wheel (199 MB) is larger than what may travel there (64 MiB), so there the DALI
rows read "not measured".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing memtsm

from memtsm.extract import ExtractConfig, FeatureSpec, FeatureStore, extract  # noqa: E402
from memtsm.extract.decode import DecoderSession  # noqa: E402
from memtsm.extract.weights import resolve_weights  # noqa: E402
from memtsm.extract.xfeat import load_xfeat  # noqa: E402


@dataclass
class Table:
    """Rows of ``(stage, figure, note)``, printed once at the end."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, value: float | None, unit: str, note: str = "") -> None:
        if value is None:
            self.rows.append((stage, "not measured", note))
            return
        self.figures[stage] = value
        if unit.startswith("cosine"):
            figure = f"{value:.6f} {unit}"
        else:
            figure = f"{value:,.1f} {unit}" if value >= 10 else f"{value:.4g} {unit}"
        self.rows.append((stage, figure, note))

    def print(self) -> None:
        width = max(len(stage) for stage, _, _ in self.rows) + 2
        print(f"\n{'stage':<{width}}{'figure':>20}  note")
        for stage, figure, note in self.rows:
            print(f"{stage:<{width}}{figure:>20}  {note}")


def _frames(num_frames: int, width: int, height: int, seed: int) -> np.ndarray:
    """``uint8 [N, H, W, 3]``: a fixed texture with two bright blocks moving across it."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 140, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(small, 8, 0), 8, 1)[:height, :width]
    side = max(8, height // 6)
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        frame = out[index]
        frame[:] = background
        x = (7 * index) % (width - side)
        y = (3 * index) % (height - side)
        frame[y:y + side, x:x + side] = (230, 210, 60)
        frame[height - side - y:height - y, width - side - x:width - x] = (40, 200, 220)
    return out


def _encode(job: tuple[str, int, int, int, int, str]) -> str:
    """Encode one generated video (run in a worker process)."""
    import av

    path, num_frames, width, height, seed, codec = job
    encoder, pix_fmt, options = {
        "h264": ("libx264", "yuv420p", {"preset": "ultrafast", "g": "60"}),
        "vp9": ("libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
    }[codec]
    with av.open(path, mode="w") as container:
        stream = container.add_stream(encoder, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for start in range(0, num_frames, 60):  # bounded memory for 1080p
            for image in _frames(min(60, num_frames - start), width, height, seed + start):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def make_corpus(folder: Path, name: str, videos: int, num_frames: int, width: int, height: int,
                codec: str) -> list[Path]:
    """Write ``videos`` files of ``num_frames`` frames into ``folder/name``."""
    target = folder / name
    target.mkdir(parents=True)
    suffix = ".mp4" if codec == "h264" else ".webm"
    jobs = [(str(target / f"{name}_{i:03d}{suffix}"), num_frames, width, height, i, codec)
            for i in range(videos)]
    with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return [Path(p) for p in pool.map(_encode, jobs)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class MemoryPoll:
    """Peak device memory used (MiB) as ``nvidia-smi`` reports it, polled in a thread."""

    def __init__(self, device: torch.device) -> None:
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._index = device.index or 0
        self._thread = None
        if device.type == "cuda" and shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                text = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                     f"--id={self._index}"], capture_output=True, text=True, timeout=5).stdout
                self.peak_mib = max(self.peak_mib, float(text.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.2)

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread is None:
            return None
        self._thread.join(timeout=6)
        return self.peak_mib


def decode_rate(paths: list[Path], backend: str, device: torch.device, network: bool,
                batch_size: int) -> float:
    """Frames/s of decoding ``paths`` (frames left on the device, as extraction gets them)."""
    spec = FeatureSpec()
    start, frames = time.perf_counter(), 0
    with DecoderSession(backend, device, luma=True,
                        network_size=spec.network_size if network else None) as session:
        for path in paths:
            with session.open(path) as decoder:
                for batch in decoder.batches(batch_size):
                    frames += len(batch)
    _sync(device)
    return frames / (time.perf_counter() - start)


def network_rates(device: torch.device, batch_size: int, repeats: int, table: Table) -> None:
    """XFeat alone per precision, eager (as :class:`TorchEngine` runs it) and as a CUDA graph."""
    from memtsm.extract.engines.torch_engine import TorchEngine

    net = load_xfeat(resolve_weights(), "cpu")
    images = torch.rand(batch_size, 1, 224, 320, device=device).contiguous(
        memory_format=torch.channels_last)
    reference = None
    for precision in ("fp32", "bf16"):
        engine = TorchEngine(net, device, precision)

        def eager(engine=engine):
            return engine.descriptors(images)

        rate = _rate(eager, batch_size, repeats, device)
        out = eager()
        reference = out if reference is None else reference
        diff = (out.float() - reference.float()).abs().max().item()
        table.add(f"xfeat network torch {precision}", rate, "frames/s",
                  f"batch {batch_size}, 224x320" + (f"; max abs diff vs fp32 {diff:.3g}"
                                                    if precision != "fp32" else ""))
        if device.type != "cuda":
            table.add(f"xfeat network torch {precision} CUDA graph", None, "",
                      "no CUDA device")
            continue
        try:
            replay = _cuda_graph(engine, images)
            graph_rate = _rate(replay, batch_size, repeats, device)
            graph_diff = (replay().float() - out.float()).abs().max().item()
            table.add(f"xfeat network torch {precision} CUDA graph", graph_rate, "frames/s",
                      f"{graph_rate / rate:.2f}x eager; max abs diff vs eager {graph_diff:.3g}")
        except Exception as exc:  # noqa: BLE001 - report the failure, measure the rest
            table.add(f"xfeat network torch {precision} CUDA graph", None, "",
                      f"{type(exc).__name__}: {exc}"[:120])


def _cuda_graph(engine, images: torch.Tensor):
    """Capture ``engine.descriptors`` on a static input; returns the replay function."""
    static = images.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            engine.descriptors(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = engine.descriptors(static)

    def replay():
        static.copy_(images)
        graph.replay()
        return static_out

    return replay


def _rate(fn, units: int, repeats: int, device: torch.device) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return units / float(np.median(times))


def end_to_end(paths: list[Path], out: Path, device: torch.device, decoder: str, precision: str,
               batch_size: int) -> tuple[float, float | None, float | None]:
    """``(frames/s, torch peak MiB, device peak MiB)`` of one ``extract`` run over ``paths``."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    poll = MemoryPoll(device)
    config = ExtractConfig(device=str(device), decoder=decoder, engine="torch",
                           precision=precision, batch_size=batch_size)
    summary = extract(paths, out, config)
    used = poll.stop()
    if summary.failures:
        raise RuntimeError(f"{len(summary.failures)} videos failed: {summary.failures[0].error}")
    torch_peak = (torch.cuda.max_memory_allocated(device) / 2**20
                  if device.type == "cuda" else None)
    return summary.frames / summary.seconds, torch_peak, used


def feature_agreement(reference: Path, other: Path) -> tuple[float, float, float]:
    """``(cosine min, cosine mean, max abs diff)`` of the clip vectors of the one video of the
    ``reference`` store and the same video in ``other``."""
    ref_store = FeatureStore(reference)
    (video_id,) = ref_store.video_ids
    a = ref_store.read(video_id).features.astype(np.float64)
    b = FeatureStore(other).read(video_id).features.astype(np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosine.min()), float(cosine.mean()), float(np.abs(a - b).max())


def describe_machine(device: torch.device) -> str:
    parts = [f"{platform.node()}", f"python {platform.python_version()}",
             f"torch {torch.__version__}", f"{os.cpu_count()} CPU cores"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        parts.insert(1, f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
        parts.append(f"CUDA {torch.version.cuda}")
    for module in ("nvidia.dali", "av", "kornia", "onnxruntime"):
        version = "absent"
        if _installed(module):
            imported = __import__(module, fromlist=["__version__"])
            version = getattr(imported, "__version__", "present")
        parts.append(f"{module.split('.')[-1]} {version}")
    return ", ".join(parts)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--videos-320", type=int, default=16)
    parser.add_argument("--frames-320", type=int, default=900)
    parser.add_argument("--videos-1080", type=int, default=2)
    parser.add_argument("--frames-1080", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, tiny VP9 corpus: exercise every path (figures mean nothing)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.smoke:
        device, codec = torch.device("cpu"), "vp9"
        sizes = {"320x240": (2, 24, 160, 120), "1080p": (1, 12, 480, 270)}
        args.batch_size, args.repeats = 8, 1
    else:
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device here; nothing measured (use --smoke on a CPU)")
            return 2
        device, codec = torch.device("cuda", 0), "h264"
        sizes = {"320x240": (args.videos_320, args.frames_320, 320, 240),
                 "1080p": (args.videos_1080, args.frames_1080, 1920, 1080)}
    machine = describe_machine(device)
    print(f"gpu_check {time.strftime('%Y-%m-%d %H:%M:%S')}: {machine}", flush=True)
    table = Table()
    dali = _installed("nvidia.dali")
    with tempfile.TemporaryDirectory(prefix="memtsm-gpu-check-") as tmp:
        folder = Path(tmp)
        corpora = {name: make_corpus(folder, name.replace("x", "_"), videos, frames, width,
                                     height, codec)
                   for name, (videos, frames, width, height) in sizes.items()}
        print(f"corpus written in {time.perf_counter() - started:.0f} s", flush=True)
        for name, paths in corpora.items():
            total = sizes[name][0] * sizes[name][1]
            note = f"{len(paths)} x {sizes[name][1]} frames, {codec}"
            table.add(f"decode {name} pyav (CPU, luma)",
                      decode_rate(paths, "pyav", device, False, args.batch_size), "frames/s",
                      note)
            for network in (False, True):
                stage = f"decode {name} dali {'+ grey/resize' if network else 'RGB'}"
                if not dali:
                    table.add(stage, None, "", "DALI not installed")
                    continue
                table.add(stage, decode_rate(paths, "dali", device, network, args.batch_size),
                          "frames/s", note + ("; one pipeline for all" if network else ""))
            print(f"decode {name} measured ({total} frames)", flush=True)
        network_rates(device, args.batch_size, args.repeats, table)
        print("network measured", flush=True)
        measured: dict[tuple[str, str], Path] = {}  # (decoder, precision) -> 320x240 store
        for name, paths in corpora.items():
            for decoder in ("dali", "pyav"):
                for precision in ("fp32", "bf16"):
                    stage = f"end to end {name} {decoder} {precision}"
                    if decoder == "dali" and not dali:
                        table.add(stage, None, "", "DALI not installed")
                        continue
                    out = folder / f"store_{name}_{decoder}_{precision}"
                    try:
                        rate, torch_peak, used = end_to_end(paths, out, device, decoder,
                                                            precision, args.batch_size)
                    except Exception as exc:  # noqa: BLE001 - report it, measure the rest
                        table.add(stage, None, "", f"{type(exc).__name__}: {exc}"[:120])
                        continue
                    memory = "" if torch_peak is None else f"torch peak {torch_peak:,.0f} MiB"
                    if used is not None:
                        memory += f", device peak {used:,.0f} MiB"
                    table.add(stage, rate, "frames/s", memory)
                    if name == "320x240":
                        measured[decoder, precision] = out
            print(f"end to end {name} measured", flush=True)
        first = corpora["320x240"][0]
        reference = folder / "reference_cpu"
        extract([first], reference, ExtractConfig(device="cpu", decoder="pyav", engine="torch"))
        for (decoder, precision), store in measured.items():
            low, mean, diff = feature_agreement(reference, store)
            table.add(f"features {decoder} {precision} vs CPU fp32", low, "cosine min",
                      f"mean {mean:.6f}, max abs diff {diff:.2e}")
    table.add("whole check", time.perf_counter() - started, "s", "target < 480 s")
    table.print()
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "date": time.strftime("%Y-%m-%d"),
                                         "smoke": args.smoke, "figures": table.figures,
                                         "rows": table.rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
