"""Extraction throughput: per stage and end to end, beside torchvision's r3d_18 in the same run.

    python benchmarks/bench_extract.py [--video PATH] [--device cpu|cuda] [--batch-size 32]
        [--engine auto|torch|openvino|onnxruntime] [--threads N] [--no-int8]

Prints frames/s for decode (PyAV or DALI), preprocessing, the XFeat network alone (torch eager
channels-last, and plain contiguous eager torch, the baseline issue 11 states its targets against,
and ``--engine``), pooling, HDF5 writing, ``memtsm.extract.extract``
end to end with ``--engine`` and with torch (every frame and ``--frame-stride 2``), and
``--precision int8`` (OpenVINO running the NNCF-quantised graph; network alone and end to end,
with its ratios to torch fp32 and OpenVINO fp32 and the cosine of its frame vectors to fp32 over
every frame of the video), r3d_18 (random weights, 16x112x112 clips: the usual 3D-CNN clip
feature extractor) on the same frames, with the ratios the targets are stated in. r3d_18 needs
torchvision (``pip install torch==2.14.1 torchvision==0.29.1``); without it that line is
skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from memtsm.extract import ExtractConfig, FeatureSpec, extract
from memtsm.extract.decode import open_video
from memtsm.extract.weights import resolve_weights
from memtsm.extract.xfeat import ClipPooler, XFeatDescriptor, load_xfeat

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_VIDEO = SHARED / "ucf_crime" / "videos" / "Normal_Videos_010_x264.mp4"


def best_rate(fn, units: int, repeats: int) -> float:
    """Median units/s over ``repeats`` runs of ``fn`` (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return units / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decoder", default="pyav")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and engine threads (default: torch's)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, "
          f"video {args.video.name}")

    def decode_all(luma: bool = True):
        # The extractor asks CPU decoders for luma frames (the Y plane, no YUV->RGB conversion).
        with open_video(args.video, args.decoder, device, luma=luma) as decoder:
            return [b.frames for b in decoder.batches(args.batch_size)]

    batches = decode_all()
    frames = sum(len(b) for b in batches)
    height, width = batches[0].shape[1:3]
    print(f"{frames} frames of {width}x{height}")
    rates: dict[str, float] = {}
    rates["decode (luma)"] = best_rate(decode_all, frames, args.repeats)
    rates["decode (RGB)"] = best_rate(lambda: decode_all(luma=False), frames, args.repeats)

    spec = FeatureSpec()
    weights = resolve_weights()
    descriptor = XFeatDescriptor.from_weights(weights, spec, device, engine="torch")
    fast = XFeatDescriptor.from_weights(weights, spec, device, engine=args.engine)
    engine = fast.engine.name
    grey = [descriptor.preprocess(b) for b in batches]
    rates["preprocess"] = best_rate(lambda: [descriptor.preprocess(b) for b in batches], frames,
                                    args.repeats)

    def network(chosen=descriptor):
        return [chosen.engine.descriptors(g) for g in grey]

    rates["xfeat network (torch)"] = best_rate(network, frames, args.repeats)
    # issue 11 states its target against plain eager torch (contiguous NCHW, what a user of
    # kornia's XFeatModel gets); memtsm's torch engine runs channels-last, a stronger baseline
    plain_net = load_xfeat(weights, device)
    plain_grey = [g.contiguous() for g in grey]
    with torch.inference_mode():
        rates["xfeat network (torch, contiguous)"] = best_rate(
            lambda: [plain_net(g)[0] for g in plain_grey], frames, args.repeats)
    if engine != "torch":
        rates[f"xfeat network ({engine})"] = best_rate(lambda: network(fast), frames,
                                                       args.repeats)
        expected, got = network()[0], network(fast)[0]
        print(f"{engine} vs torch descriptors: max abs diff "
              f"{(expected - got.to(expected.device)).abs().max():.2e}")
    descs = network()
    for name in ("torch", "openvino"):
        try:
            half = XFeatDescriptor.from_weights(weights, spec, device, engine=name,
                                                precision="bf16")
        except Exception as exc:  # e.g. OpenVINO not installed or no BF16 on this CPU
            print(f"bf16 {name} skipped: {exc}")
            continue
        rates[f"xfeat network ({name} bf16)"] = best_rate(lambda h=half: network(h), frames,
                                                          args.repeats)
        descriptor.reset()
        half.reset()
        vectors = torch.cat([descriptor.describe(b) for b in batches])
        half_vectors = torch.cat([half.describe(b) for b in batches])
        cosine = torch.nn.functional.cosine_similarity(vectors, half_vectors, dim=1)
        print(f"bf16 {name} vs fp32 frame vectors: cosine min {cosine.min():.5f}, mean "
              f"{cosine.mean():.5f}; max abs diff {(vectors - half_vectors).abs().max():.3f}")

    int8 = None
    if not args.no_int8:
        try:
            int8 = XFeatDescriptor.from_weights(weights, spec, device, engine="openvino",
                                                precision="int8")
        except Exception as exc:  # OpenVINO or NNCF not installed, or a CUDA device
            print(f"int8 skipped: {exc}")
    if int8 is not None:
        ov_fp32 = fast if engine == "openvino" else XFeatDescriptor.from_weights(
            weights, spec, device, engine="openvino")
        rates["xfeat network (openvino fp32)"] = rates.get("xfeat network (openvino)") or \
            best_rate(lambda: network(ov_fp32), frames, args.repeats)
        rates["xfeat network (openvino int8)"] = best_rate(lambda: network(int8), frames,
                                                           args.repeats)
        descriptor.reset()
        int8.reset()
        vectors = torch.cat([descriptor.describe(b) for b in batches])
        int8_vectors = torch.cat([int8.describe(b) for b in batches])
        cosine = torch.nn.functional.cosine_similarity(vectors, int8_vectors, dim=1)
        print(f"int8 openvino vs fp32 frame vectors ({frames} frames): cosine min "
              f"{cosine.min():.5f}, mean {cosine.mean():.5f}; max abs diff "
              f"{(vectors - int8_vectors).abs().max():.3f}")

    def pool(raws, normalize_first: bool):
        """Clip vectors of ``raws``: memtsm's pooling, or (baseline) F.normalize first."""
        pooler = ClipPooler(spec.clip_len, descriptor.dim)
        descriptor.reset()
        start = 0
        for d in raws:
            n = d.shape[0]
            if normalize_first:  # memtsm before 2026-12-03
                normed = torch.nn.functional.normalize(d, dim=1)
                delta = (normed - torch.cat([normed[:1], normed[:-1]])).abs()
                vectors = descriptor.layout.frame_vectors(normed, delta)
            else:
                vectors = descriptor._vectors(d)
            pooler.add(vectors, torch.arange(start, start + n))
            start += n
        return pooler.finish(start)

    # the ONNX engines return contiguous descriptors, the torch engine channels-last ones
    flat = [d.contiguous() for d in descs]
    rates["pooling"] = best_rate(lambda: pool(descs, False), frames, args.repeats)
    rates["pooling, contiguous input (OpenVINO's)"] = best_rate(lambda: pool(flat, False),
                                                                frames, args.repeats)
    rates["pooling, contiguous input, F.normalize (before)"] = best_rate(
        lambda: pool(flat, True), frames, args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))

        def run_extract(stride: int, chosen: str, precision: str = "fp32"):
            out = Path(tmp) / f"run{next(counter)}"
            config = ExtractConfig(spec=FeatureSpec(frame_stride=stride), decoder=args.decoder,
                                   device=str(device), batch_size=args.batch_size, engine=chosen,
                                   precision=precision)
            return extract([args.video], out, config)

        rates["end-to-end (torch)"] = best_rate(lambda: run_extract(1, "torch"), frames,
                                                args.repeats)
        if engine != "torch":
            rates[f"end-to-end ({engine})"] = best_rate(lambda: run_extract(1, engine), frames,
                                                        args.repeats)
        if int8 is not None:
            if engine != "openvino":
                rates["end-to-end (openvino)"] = best_rate(lambda: run_extract(1, "openvino"),
                                                           frames, args.repeats)
            rates["end-to-end (openvino int8)"] = best_rate(
                lambda: run_extract(1, "openvino", "int8"), frames, args.repeats)
        rates[f"end-to-end stride 2 ({engine})"] = best_rate(lambda: run_extract(2, engine),
                                                             frames, args.repeats)

        from memtsm.extract.store import FeatureStoreWriter, VideoRecord

        pooled = pool(descs, False)

        def write():
            identity = {"feature_dim": descriptor.dim, "dtype": "float16"}
            with FeatureStoreWriter(Path(tmp) / f"w{next(counter)}", identity) as writer:
                writer.add(VideoRecord("v", pooled.features, pooled.clip_frames, 30.0, frames))

        rates["hdf5 write"] = best_rate(write, frames, args.repeats)

    try:
        from torchvision.models.video import r3d_18
    except Exception as exc:  # torchvision absent or incompatible with this torch
        print(f"r3d_18 skipped: {type(exc).__name__}: {exc}")
    else:
        net3d = r3d_18().eval().to(device)
        rgb = torch.cat(decode_all(luma=False))
        clips = rgb[: frames // 16 * 16].to(device).permute(0, 3, 1, 2).float()
        clips = torch.nn.functional.interpolate(clips / 255, size=(112, 112), mode="bilinear")
        clips = clips.reshape(-1, 16, 3, 112, 112).permute(0, 2, 1, 3, 4).contiguous()

        @torch.inference_mode()
        def run3d():
            return [net3d(clips[i:i + 2]) for i in range(0, clips.shape[0], 2)]

        rates["r3d_18 network"] = best_rate(run3d, clips.shape[0] * 16, args.repeats)

    print(f"{'stage':<32}{'frames/s':>12}{'x real time':>13}")
    for name, rate in rates.items():
        print(f"{name:<32}{rate:>12.1f}{rate / 30:>13.1f}")
    xfeat, e2e = rates["xfeat network (torch)"], rates[f"end-to-end ({engine})"]
    baseline = rates["xfeat network (torch, contiguous)"]
    print(f"end-to-end ({engine}) / torch xfeat network alone, contiguous (issue 11's baseline): "
          f"{e2e / baseline:.2f} (target >= 2)")
    print(f"end-to-end ({engine}) / torch xfeat network alone, channels-last: {e2e / xfeat:.2f}")
    print(f"end-to-end ({engine}) / end-to-end (torch): "
          f"{e2e / rates['end-to-end (torch)']:.2f}")
    if "xfeat network (openvino int8)" in rates:
        net8, e2e8 = rates["xfeat network (openvino int8)"], rates["end-to-end (openvino int8)"]
        print(f"int8 network / torch fp32 network: {net8 / xfeat:.2f}; / openvino fp32 network: "
              f"{net8 / rates['xfeat network (openvino fp32)']:.2f}")
        print(f"int8 end-to-end / torch end-to-end: {e2e8 / rates['end-to-end (torch)']:.2f}; "
              f"/ openvino fp32 end-to-end: {e2e8 / rates['end-to-end (openvino)']:.2f}")
    if "r3d_18 network" in rates:
        r3d = rates["r3d_18 network"]
        print(f"torch xfeat network / r3d_18: {xfeat / r3d:.2f}")
        print(f"end-to-end ({engine}) / r3d_18: {e2e / r3d:.2f} (target >= 6)")
        print(f"end-to-end stride 2 / r3d_18: "
              f"{rates[f'end-to-end stride 2 ({engine})'] / r3d:.2f}")


if __name__ == "__main__":
    main()
