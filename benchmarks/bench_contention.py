"""Extraction under CPU contention: torch's default threads vs configure_threads, same run.

    python benchmarks/bench_contention.py [--video PATH] [--competitor python|torch]
        [--competitors 1] [--rounds 1] [--settings old new ...]

Extracts one real UCF-Crime clip (CPU, real XFeat weights from ``$MEMTSM_XFEAT_WEIGHTS`` or
``$MEMTSM_SHARED_DATA/xfeat/xfeat.pt``) on an idle machine and again while ``--competitors``
other processes run: ``python``, a pure-Python loop keeping one core busy, or ``torch``, a matmul
loop with torch's default threads (spinning OpenMP threads on every core), in these settings:

* ``old``: torch's defaults (one thread per core, OpenMP's default spin-then-sleep waiting),
  what ``memtsm extract`` did before ``--threads``;
* ``omp1-spin``: ``OMP_NUM_THREADS=1``, default waiting (the workaround in the issue);
* ``N-passive``: N threads with ``OMP_WAIT_POLICY=PASSIVE`` / ``KMP_BLOCKTIME=0``;
* ``new``: what the commands do now, :func:`memtsm.runtime.threads.prepare_openmp` before torch
  is imported and ``configure_threads(None, reserve=DECODE_THREADS)``.

Each setting runs in a fresh process (the OpenMP wait policy is read when torch is imported) and
reports ``memtsm.extract.extract``'s own frames/s (weights loading excluded). Prints frames/s per
setting and load, busy / idle for each setting and each setting / ``old`` under load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
#: setting -> (intra-op threads: None = torch default, "auto" = configure_threads; passive wait)
SETTINGS: dict[str, tuple[int | str | None, bool]] = {
    "old": (None, False),
    "omp1-spin": (1, False),
    "2-passive": (2, True),
    "1-passive": (1, True),
    "new": ("auto", True),
}
#: What a competing process runs: one core of pure Python, or a torch job with torch's defaults
#: (its own spinning OpenMP threads on every core, e.g. someone else's training or tests).
COMPETITORS = {
    "python": "while True: pass",
    "torch": "import torch\na = torch.randn(256, 256)\nwhile True: a @ a",
}
_ENV_KNOBS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME",
              "GOMP_SPINCOUNT")


class _EngineLog(logging.Handler):
    """Catches the engine the extractor logs it built (``auto`` resolves at run time)."""

    engine: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("XFeat engine: ") and self.engine is None:
            self.engine = message.split()[2]


def child(setting: str, video: Path, engine: str) -> None:
    """One extraction in this (fresh) process; prints a JSON line with frames/s."""
    threads, passive = SETTINGS[setting]
    if setting == "new":
        from memtsm.runtime.threads import prepare_openmp

        prepare_openmp()
    elif passive:
        os.environ.update({"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"})
    if setting == "omp1-spin":
        os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from memtsm.extract import ExtractConfig, extract
    from memtsm.extract.runner import DECODE_THREADS
    from memtsm.runtime.threads import configure_threads

    if threads == "auto":
        configure_threads(None, reserve=DECODE_THREADS)
    elif threads is not None:
        torch.set_num_threads(int(threads))
    used = _EngineLog()
    logging.getLogger("memtsm.extract.engines").addHandler(used)
    logging.getLogger("memtsm.extract.engines").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        config = ExtractConfig(device="cpu", xfeat_weights=WEIGHTS, engine=engine)
        summary = extract([video], Path(tmp) / "store", config)

    print(json.dumps({"fps": summary.frames_per_second, "frames": summary.frames,
                      "threads": torch.get_num_threads(), "engine": used.engine or engine,
                      "wait": os.environ.get("OMP_WAIT_POLICY", "default")}))


def run_child(setting: str, video: Path, engine: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_KNOBS}
    result = subprocess.run([sys.executable, __file__, "--child", setting, "--video", str(video),
                             "--engine", engine],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{setting} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--competitors", type=int, default=1)
    parser.add_argument("--competitor", choices=list(COMPETITORS), default="python")
    parser.add_argument("--rounds", type=int, default=1, help="Repeat the whole table.")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--engine", default="torch",
                        help="XFeat engine (torch: the threads this is about; auto: the default).")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.video, args.engine)
        return
    from memtsm.runtime.threads import available_cpus

    print(f"{available_cpus()} CPUs available, {os.cpu_count()} on the machine; video "
          f"{args.video.name}; under load {args.competitors} competing {args.competitor} "
          "process(es)")
    rates: dict[tuple[str, str], list[float]] = {}
    info: dict[str, str] = {}
    engines: set[str] = set()
    for _ in range(args.rounds):
        for load in ("idle", "busy"):
            competitors = []
            if load == "busy":
                env = {k: v for k, v in os.environ.items() if k not in _ENV_KNOBS}
                competitors = [subprocess.Popen([sys.executable, "-c",
                                                 COMPETITORS[args.competitor]], env=env)
                               for _ in range(args.competitors)]
                time.sleep(3.0 if args.competitor == "torch" else 1.0)  # torch: import time
            try:
                for setting in args.settings:
                    result = run_child(setting, args.video, args.engine)
                    rates.setdefault((setting, load), []).append(result["fps"])
                    info[setting] = f"{result['threads']} thr, wait {result['wait']}"
                    engines.add(str(result["engine"]))
                    print(f"  {load:<5} {setting:<10} {result['fps']:8.1f} frames/s "
                          f"({info[setting]}, {result['frames']} frames; load average "
                          f"{os.getloadavg()[0]:.2f})", flush=True)
            finally:
                for process in competitors:
                    process.kill()
                    process.wait()
            time.sleep(2.0)  # let the machine settle

    def rate(setting: str, load: str) -> float:
        return statistics.median(rates[(setting, load)])

    print(f"\nengine: {', '.join(sorted(engines))}")
    print(f"{'setting':<11}{'threads/wait':<24}{'idle f/s':>9}{'busy f/s':>9}"
          f"{'busy/idle':>10}{'busy/old':>9}")
    for setting in args.settings:
        idle, busy = rate(setting, "idle"), rate(setting, "busy")
        versus = f"{busy / rate('old', 'busy'):>9.2f}" if "old" in args.settings else ""
        print(f"{setting:<11}{info[setting]:<24}{idle:>9.1f}{busy:>9.1f}{busy / idle:>10.2f}"
              f"{versus}")


if __name__ == "__main__":
    main()
