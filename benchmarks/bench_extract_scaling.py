"""Extraction scaling: one process against N torchrun workers on the same videos, same run.

    python benchmarks/bench_extract_scaling.py [--workers 2] [--device cpu|cuda] [--videos DIR]

Runs ``memtsm extract`` once as one process and once as ``torchrun --standalone
--nproc-per-node N -m memtsm extract`` on the same videos (by default the real UCF-Crime clips in
``$MEMTSM_SHARED_DATA/ucf_crime/videos``), checks that both stores hold identical features, and
prints frames/s of each and their ratio. On the CPU the single process uses all cores through
torch's threads and each of the N workers ``cores / N`` threads, so the ratio shows what
process-level parallelism adds over thread-level parallelism; on GPUs each worker uses its own
``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memtsm.extract import FeatureStore

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))


def timed_run(command: list[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of ``command`` (which must succeed or only report failed videos)."""
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=SHARED / "ucf_crime" / "videos")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--copies", type=int, default=2,
                        help="Link each video this many times (more work per worker).")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        for copy in range(args.copies):
            folder = videos / f"copy{copy}"
            folder.mkdir(parents=True)
            for video in sorted(args.videos.glob("*.mp4")):
                (folder / video.name).symlink_to(video.resolve())
        common = [str(videos), "--device", args.device, "--quiet"]
        single_out, multi_out = Path(tmp) / "single", Path(tmp) / "multi"
        base_env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        single = timed_run([sys.executable, "-m", "memtsm", "extract", *common,
                            "--out", str(single_out)], base_env)
        threads = max(1, cores // args.workers) if args.device == "cpu" else 1
        multi = timed_run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", str(args.workers), "-m", "memtsm", "extract",
                           *common, "--out", str(multi_out)],
                          {**base_env, "OMP_NUM_THREADS": str(threads)})
        one, many = FeatureStore(single_out), FeatureStore(multi_out)
        assert sorted(one.video_ids) == sorted(many.video_ids)
        # Different thread counts sum in a different order: equal to float16 rounding.
        difference = max(float(np.abs(record.features.astype(np.float32)
                                      - many.read(record.video_id).features).max())
                         for record in one)
        assert difference < 1e-3, difference
        frames = sum(entry.num_frames for entry in one.entries)
    print(f"{len(one)} videos, {frames} frames, device {args.device}, {cores} CPU cores")
    print(f"{'run':<34}{'seconds':>9}{'frames/s':>10}")
    print(f"{'1 process':<34}{single:>9.1f}{frames / single:>10.1f}")
    label = f"torchrun {args.workers} workers x {threads} thr"
    print(f"{label:<34}{multi:>9.1f}{frames / multi:>10.1f}")
    print(f"speed-up {single / multi:.2f}x (at most {args.workers}x); features equal to "
          f"{difference:.1e}")


if __name__ == "__main__":
    main()
