"""`memtsm train` killed (SIGINT or SIGKILL) at random moments, then `--resume`d to the end.

The resumed run must end exactly where an uninterrupted run ends (training is deterministic on
the CPU and an epoch's batches depend only on seed and epoch), with every checkpoint loadable
and every epoch logged once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _signals import default_sigint
from test_loop import write_bags

from memtsm.train.checkpoint import load_checkpoint

EPOCHS = 8


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_bags(tmp_path_factory.mktemp("store"), n_normal=24, n_anomalous=24, seed=3)


def _train(store: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "memtsm", "train", "--features", str(store), "--out", str(out),
           "--epochs", str(EPOCHS), "--batch-size", "8", "--lr", "0.01", "--channels", "32",
           "--mem-size", "8", "--steps-per-epoch", "6", "--device", "cpu", "--seed", "5",
           "--quiet", *extra]
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


def _epochs_logged(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_training_resumes_to_the_uninterrupted_result(store, tmp_path, seed):
    reference = tmp_path / "reference"
    proc = _train(store, reference)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr

    rng = random.Random(seed)
    out = tmp_path / "interrupted"
    # Kill points: once the log reaches a random epoch, plus a random fraction of an epoch (a
    # target of 0 kills during start-up or the first epoch).
    for attempt, target in enumerate(sorted(rng.sample(range(EPOCHS - 2), 3))):
        # What a user does: --resume once a checkpoint exists, else start again.
        proc = _train(store, out, *(["--resume"] if (out / "last.pt").is_file() else []))
        deadline = time.monotonic() + 120
        while len(_epochs_logged(out)) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.1))
        kill = rng.choice([signal.SIGINT, signal.SIGKILL])
        proc.send_signal(kill)
        _, stderr = proc.communicate(timeout=120)
        if kill == signal.SIGINT:
            assert proc.returncode in (130, -signal.SIGINT), stderr
        else:
            assert proc.returncode == -signal.SIGKILL, stderr
        epochs = _epochs_logged(out)
        assert epochs == list(range(1, len(epochs) + 1)), (attempt, epochs)
        assert len(epochs) < EPOCHS  # the kill landed before the end
        for name in ("last.pt", "best.pt"):
            if (out / name).is_file():
                load_checkpoint(out / name)  # every checkpoint on disk is whole
    proc = _train(store, out, "--resume")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert _epochs_logged(out) == list(range(1, EPOCHS + 1))
    for name in ("last.pt", "best.pt"):
        mine, theirs = load_checkpoint(out / name), load_checkpoint(reference / name)
        assert mine.epoch == theirs.epoch
        for key, value in theirs.state_dict.items():
            torch.testing.assert_close(mine.state_dict[key], value, rtol=0, atol=1e-6)
