"""``memtsm score`` speed and memory on 1-minute and 10-minute 320x240 videos.

    python benchmarks/bench_score.py [--minutes 1 10] [--device cpu]

Builds the test videos by looping a real UCF-Crime clip (320x240, 30 fps, re-encoded with
H.264), makes a MemTSM checkpoint for default XFeat features (weights untrained: speed does not
depend on them), and scores each video in a fresh subprocess through ``memtsm.score_video`` (what
``memtsm score`` runs), reporting wall time, x real time, the scorer's share of it and the peak
resident memory (``ru_maxrss``) of that process. The baseline in the same run is extraction alone
(``memtsm.extract``'s FeatureExtractor on the same video).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCE = SHARED / "ucf_crime" / "videos" / "Normal_Videos_010_x264.mp4"
FPS = 30


def loop_video(source: Path, seconds: int, out: Path) -> Path:
    """Re-encode ``source`` looped to ``seconds`` at 30 fps (H.264, yuv420p)."""
    import av

    frames = []
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(seconds * FPS):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)],
                                                                   format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def make_checkpoint(path: Path) -> Path:
    from memtsm.extract import ExtractConfig
    from memtsm.extract.runner import FeatureExtractor
    from memtsm.model import ScorerConfig, build_scorer
    from memtsm.train.checkpoint import Checkpoint, save_checkpoint

    extractor = FeatureExtractor(ExtractConfig(device="cpu"))
    config = ScorerConfig(feature_dim=extractor.descriptor.dim)
    model = build_scorer(config)
    save_checkpoint(path, Checkpoint(scorer_config=config, state_dict=model.state_dict(),
                                     feature_identity=extractor.identity, val_video_threshold=0.5,
                                     extract_config=extractor.config.to_dict()))
    return path


def child(mode: str, video: str, checkpoint: str, device: str) -> None:
    """Run in a fresh process: score (or only extract) one video, print JSON."""
    import numpy as np

    from memtsm.extract import ExtractConfig
    from memtsm.extract.runner import FeatureExtractor
    from memtsm.extract.sources import VideoSource
    from memtsm.score.stored import score_features
    from memtsm.train.checkpoint import build_model_from_checkpoint, load_checkpoint

    started = time.perf_counter()
    extractor = FeatureExtractor(ExtractConfig(device=device))
    [(_, record)] = list(extractor.iter_features([VideoSource("v", Path(video), False)]))
    extracted = time.perf_counter()
    model_seconds = 0.0
    if mode == "score":
        model = build_model_from_checkpoint(load_checkpoint(checkpoint), device)
        t0 = time.perf_counter()
        score_features(model, record.features.astype(np.float32), device, window=4096)
        model_seconds = time.perf_counter() - t0
    print(json.dumps({
        "frames": record.num_frames, "seconds": time.perf_counter() - started,
        "extract_seconds": extracted - started, "model_seconds": model_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(mode: str, video: Path, checkpoint: Path, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(video), str(checkpoint),
                          device], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_checkpoint(Path(tmp) / "ckpt.pt")
        print(f"{'video':<8}{'mode':<9}{'seconds':>9}{'x real time':>13}{'model s':>9}"
              f"{'peak MiB':>10}")
        for minutes in args.minutes:
            seconds = int(minutes * 60)
            video = loop_video(SOURCE, seconds, Path(tmp) / f"{seconds}s.mp4")
            for mode in ("extract", "score"):
                r = run_child(mode, video, checkpoint, args.device)
                print(f"{minutes:>4g} min {mode:<9}{r['seconds']:>9.1f}"
                      f"{seconds / r['seconds']:>13.1f}{r['model_seconds']:>9.2f}"
                      f"{r['peak_rss_mib']:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
