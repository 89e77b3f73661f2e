"""Training throughput: one process vs torchrun with N processes (DDP), same data and batch.

    python benchmarks/bench_train_scaling.py [--bags 400] [--dim 128] [--epochs 3] [--nproc 2]
        [--batch-size 16] [--device cpu|cuda] [--threads T]

Writes a temporary feature store of ``--bags`` random videos (32 clips x ``--dim``, half normal,
half anomalous; bench_train.py's builder), then runs the real command line twice on it with the
default MemTSM configuration and the same global ``--batch-size``: ``memtsm train`` in one
process, and ``torchrun --standalone --nproc-per-node N -m memtsm train`` (gloo on the CPU, NCCL
with ``--device cuda``). Prints seconds per epoch (best epoch of the run, from metrics.jsonl:
training steps + validation on rank 0), training bags/s, the whole command's wall time, and the
ratio. On the CPU the single process gets ``--threads`` threads (default: all cores) and each of
the N processes ``threads / N``, so both use the same cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_train import SEGMENTS, write_store


def run(command: list[str], threads: int) -> float:
    """Run ``command`` with ``threads`` OpenMP threads; its wall time in seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return time.perf_counter() - started


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``), else the machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def epoch_stats(run_dir: Path, batch_size: int) -> tuple[float, float, int]:
    """``(best s/epoch, training bags/s at that pace, steps per epoch)`` from metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    seconds = min(row["seconds"] for row in rows)
    return seconds, rows[0]["steps"] * batch_size / seconds, rows[0]["steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", type=int, default=400)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    train = ["-m", "memtsm", "train", "--epochs", str(args.epochs), "--batch-size",
             str(args.batch_size), "--device", args.device, "--quiet"]
    per_rank = max(1, args.threads // args.nproc)
    import torch

    print(f"{datetime.date.today()}  {cpu_name()}, {os.cpu_count()} CPUs  "
          f"{torch.cuda.get_device_name() if args.device.startswith('cuda') else 'no GPU used'}  "
          f"python {platform.python_version()}  torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        write_store(store, args.bags, args.dim)
        print(f"store: {args.bags} bags x {SEGMENTS} clips x {args.dim}; default MemTSM scorer; "
              f"global batch {args.batch_size}; {args.epochs} epochs; device {args.device}")
        backend = "nccl" if args.device.startswith("cuda") else "gloo"
        single = [sys.executable, *train, "--features", str(store)]
        ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               str(args.nproc), *train, "--features", str(store)]
        cases = [(f"1 process, {args.threads} thread(s)", single, args.threads)]
        if args.device == "cpu" and per_rank != args.threads:  # same threads as one rank
            cases.append((f"1 process, {per_rank} thread(s)", single, per_rank))
        cases.append((f"torchrun {args.nproc} processes ({backend}), {per_rank} thread(s) each",
                      ddp, per_rank))
        epoch_seconds = []
        for i, (name, command, threads) in enumerate(cases):
            out = Path(tmp) / f"run{i}"
            wall = run([*command, "--out", str(out)], threads)
            seconds, rate, steps = epoch_stats(out, args.batch_size)
            epoch_seconds.append(seconds)
            print(f"{name:<46} {seconds:7.2f} s/epoch  {rate:8.1f} training bags/s  "
                  f"({steps} steps of {args.batch_size})  command {wall:6.1f} s")
        for (name, _, _), seconds in zip(cases[:-1], epoch_seconds):
            print(f"speed-up of torchrun x {args.nproc} over {name} (s/epoch): "
                  f"{seconds / epoch_seconds[-1]:.2f}x")


if __name__ == "__main__":
    main()
