"""``memtsm watch``: latency of provisional and final scores, and streams scored in real time.

    python benchmarks/bench_watch.py [--video PATH] [--streams 1 2 4 8] [--frame-stride 1]
        [--engine auto] [--seconds 0]

Each setting runs in a fresh process (its peak RSS is the memory figure): ``N`` copies of one real
320x240 30-fps UCF-Crime clip read with ``--realtime`` (frames arrive at the camera's rate, as
from a live source) and scored by one :class:`~memtsm.watch.runner.Watcher` sharing one XFeat
engine. The scorer is a freshly initialised MemTSM (default config, receptive field 12) in a
checkpoint whose feature identity is the real extraction's: speed does not depend on what the
weights learnt.

Reported per setting: the ``lag`` of provisional and final segment lines (wall seconds from a
clip's last frame arriving to its line; the final one includes waiting for the scorer's
12-clip look-ahead, 6.4 s of video at 30 fps), median and p95 over all streams; how far the
streams fell behind real time (the wall time to score the clip minus its duration: a setting
keeps up when this stays near zero and the provisional lag does not grow); and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_VIDEO = SHARED / "ucf_crime" / "videos" / "Normal_Videos_015_x264.mp4"
WEIGHTS = os.environ.get("MEMTSM_XFEAT_WEIGHTS") or str(SHARED / "xfeat" / "xfeat.pt")


def make_checkpoint(path: Path, frame_stride: int) -> Path:
    """A default MemTSM scorer (random weights) for features of the default spec."""
    import torch

    from memtsm.extract.config import FeatureSpec
    from memtsm.extract.identity import FeatureIdentity
    from memtsm.extract.layouts import get_layout
    from memtsm.extract.weights import sha256_of
    from memtsm.model import build_scorer
    from memtsm.model.config import ScorerConfig
    from memtsm.train.checkpoint import Checkpoint, save_checkpoint

    spec = FeatureSpec(frame_stride=frame_stride)
    dim = get_layout(spec.layout).dim
    torch.manual_seed(0)
    config = ScorerConfig(feature_dim=dim)
    model = build_scorer(config)
    identity = FeatureIdentity.of_extraction(spec, dim, sha256_of(Path(WEIGHTS)))
    return save_checkpoint(path, Checkpoint(scorer_config=config, state_dict=model.state_dict(),
                                            feature_identity=identity, val_video_threshold=0.5))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def worker(args: argparse.Namespace) -> None:
    """One setting, in this process: prints one JSON line."""
    from memtsm.runtime.threads import configure_threads, prepare_openmp

    prepare_openmp()
    configure_threads(None, reserve=1)
    from memtsm.watch.config import WatchConfig
    from memtsm.watch.runner import Watcher

    events: list[dict] = []
    config = WatchConfig(engine=args.engine, device="cpu", realtime=True, xfeat_weights=WEIGHTS)
    watcher = Watcher([str(args.video)] * args.streams, args.checkpoint, config, events.append)
    started = time.monotonic()
    summary = watcher.run()
    wall = time.monotonic() - started
    segments = [e for e in events if e["event"] == "segment"]
    provisional = [e["lag"] for e in segments if not e["final"]]
    final = [e["lag"] for e in segments if e["final"]]
    ends = [e for e in events if e["event"] == "end"]
    duration = max(e["end_time"] for e in segments)
    # the lag of the last provisional line of each stream: grows when scoring falls behind
    last_lags = [max((e for e in segments if e["stream"] == s and not e["final"]),
                     key=lambda e: e["index"])["lag"] for s in {e["stream"] for e in segments}]
    print(json.dumps({
        "streams": args.streams, "frame_stride": args.frame_stride, "engine": watcher.engine.name,
        "video_seconds": duration, "wall_seconds": round(wall, 2),
        "behind_seconds": round(wall - duration, 2),
        "provisional_lag_median": round(statistics.median(provisional), 3),
        "provisional_lag_p95": round(percentile(provisional, 0.95), 3),
        "final_lag_median": round(statistics.median(final), 3),
        "final_lag_p95": round(percentile(final, 0.95), 3),
        "last_provisional_lag_max": round(max(last_lags), 3),
        "frames": sum(e["frames"] for e in ends), "statuses": sorted(set(summary.streams.values())),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--frame-stride", type=int, default=1)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.worker:
        args.streams = args.streams[0]
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_checkpoint(Path(tmp) / "best.pt", args.frame_stride)
        for count in args.streams:
            subprocess.run([sys.executable, __file__, "--worker", "--video", str(args.video),
                            "--streams", str(count), "--frame-stride", str(args.frame_stride),
                            "--engine", args.engine, "--checkpoint", str(checkpoint)],
                           check=True, env={**os.environ, "PYTHONPATH": str(REPO)})


if __name__ == "__main__":
    main()
