"""Distributed training: torchrun with 2 CPU processes (gloo) against one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from test_loop import TINY_SCORER, StopAfter, read_jsonl, strip_time, tiny_config, write_bags

from memtsm.runtime.world import DistributedError, World
from memtsm.train.checkpoint import load_checkpoint
from memtsm.train.data import BalancedBatchSampler, split_batch
from memtsm.train.loop import train

#: Dropout draws different masks per rank, so the exact comparison needs none.
NO_DROPOUT = {**TINY_SCORER, "dropout": 0.0, "mil_dropout": 0.0,
              "mil_hidden": list(TINY_SCORER["mil_hidden"])}
EPOCHS = 3
#: What both runs change from tiny_config (a strong memory regulariser: counted once, not W times).
CHANGES = {"epochs": EPOCHS, "steps_per_epoch": 4, "scorer": NO_DROPOUT,
           "loss": {"mem_reg_weight": 0.5}}
RUN_FILES = {"config.yaml", "split.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png"}

#: Installed as sitecustomize in the workers: logs every file-system write under $AUDIT_ROOT
#: (open for writing, mkdir, rename, remove) to $AUDIT_LOG/rank<RANK>.txt.
AUDIT_HOOK = textwrap.dedent("""
    import os, sys
    if "RANK" in os.environ and "AUDIT_ROOT" in os.environ:
        _root = os.environ["AUDIT_ROOT"]
        _log = open(os.path.join(os.environ["AUDIT_LOG"], f"rank{os.environ['RANK']}.txt"), "a")
        _write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        def _hook(event, args):
            if event == "open":
                path, mode, flags = args
                if not (isinstance(mode, str) and any(c in mode for c in "wax+")
                        or mode is None and flags & _write_flags):
                    return
            elif event not in ("os.mkdir", "os.rename", "os.remove", "os.rmdir"):
                return
            paths = args[:2] if event == "os.rename" else args[:1]  # rename: source and target
            for path in paths:
                if isinstance(path, (str, bytes, os.PathLike)):
                    path = os.path.abspath(os.fsdecode(path))
                    if path.startswith(_root):
                        _log.write(f"{event} {path}\\n")
                        _log.flush()
        sys.addaudithook(_hook)
""")


def torchrun(*args, nproc=2, env=None):
    """``torchrun --standalone --nproc-per-node nproc -m memtsm ARGS`` with 1 thread each."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(nproc), "-m", "memtsm", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    return result


def assert_same_weights(a_path, b_path, atol=1e-5):
    a, b = load_checkpoint(a_path).state_dict, load_checkpoint(b_path).state_dict
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=atol), (
            name, (a[name] - b[name]).abs().max().item())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_bags(tmp_path_factory.mktemp("store"), n_unlabelled=2)


def config_file(path, **changes):
    """The YAML config both runs read (tiny scorer without dropout)."""
    import yaml

    path.write_text(yaml.safe_dump({"lr": 1e-2, "batch_size": 8, **CHANGES, **changes}))
    return path


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory):
    """One process in-process, and torchrun x 2 with every worker's file writes logged."""
    root = tmp_path_factory.mktemp("runs")
    single = train(tiny_config(store, root / "single", **CHANGES))
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
    audit = root / "audit"
    audit.mkdir()
    pythonpath = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    result = torchrun("train", "--features", store, "--out", root / "ddp", "--config",
                      config_file(root / "run.yaml"), "--device", "cpu",
                      env={"PYTHONPATH": pythonpath, "AUDIT_ROOT": str(root / "ddp"),
                           "AUDIT_LOG": str(audit)})
    assert result.returncode == 0, result.stderr
    return single, root, result, audit


def test_two_processes_reach_the_parameters_of_one(runs):
    single, root, result, _ = runs
    assert {p.name for p in (root / "ddp").iterdir()} == RUN_FILES
    assert_same_weights(root / "single" / "last.pt", root / "ddp" / "last.pt")
    assert_same_weights(root / "single" / "best.pt", root / "ddp" / "best.pt")
    rows = read_jsonl(root / "ddp" / "metrics.jsonl")
    assert len(rows) == EPOCHS
    for mine, theirs in zip(rows, single.metrics):
        assert mine["steps"] == theirs["steps"] == 4
        for key, value in strip_time([theirs])[0].items():  # global-batch losses, val metrics
            assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    ddp_best = load_checkpoint(root / "ddp" / "best.pt")
    assert ddp_best.epoch == single.best_epoch
    assert ddp_best.val_video_threshold == pytest.approx(single.val_video_threshold,
                                                        abs=1e-5)
    assert load_checkpoint(root / "ddp" / "last.pt").training_state.world_size == 2
    assert "best epoch" in result.stderr  # rank 0's summary


def test_only_rank_0_writes_files(runs):
    _, root, _, audit = runs
    rank0 = (audit / "rank0.txt").read_text().splitlines()
    written = {os.path.basename(line.split(" ", 1)[1]) for line in rank0}
    assert RUN_FILES <= written  # the hook sees rank 0's writes ...
    assert (audit / "rank1.txt").read_text() == ""  # ... and ran on rank 1, which wrote none


def test_mil_ranking_pairs_span_the_ranks(store, tmp_path):
    """The MIL hinge pairs every anomalous with every normal bag of the global batch."""
    single = train(tiny_config(store, tmp_path / "single", model="mil-mlp", **CHANGES))
    result = torchrun("train", "--features", store, "--out", tmp_path / "ddp", "--config",
                      config_file(tmp_path / "run.yaml", model="mil-mlp"), "--device", "cpu",
                      "-q")
    assert result.returncode == 0, result.stderr
    assert_same_weights(tmp_path / "single" / "last.pt", tmp_path / "ddp" / "last.pt")
    rows = read_jsonl(tmp_path / "ddp" / "metrics.jsonl")
    assert [r["loss_ranking"] for r in rows] == pytest.approx(
        [r["loss_ranking"] for r in single.metrics], rel=1e-5)


def test_distributed_resume_of_a_single_process_run(runs, store, tmp_path):
    """Stopped after 1 epoch in one process, finished by torchrun: the uninterrupted weights."""
    _, root, _, _ = runs
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(store, out, **CHANGES), StopAfter(1))
    result = torchrun("train", "--features", store, "--out", out, "--config",
                      config_file(tmp_path / "run.yaml"), "--device", "cpu", "--resume")
    assert result.returncode == 0, result.stderr
    assert "trained by 1 process(es), now 2" in result.stderr
    assert [r["epoch"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2, 3]
    assert_same_weights(root / "single" / "last.pt", out / "last.pt")


def test_distributed_errors_are_reported_by_rank_0(runs, store):
    _, root, _, _ = runs
    result = torchrun("train", "--features", store, "--out", root / "ddp", "--device", "cpu")
    assert result.returncode != 0
    assert "already holds a training run" in result.stderr


# -- the pieces, in one process ----------------------------------------------------------------


def test_split_batch_gives_disjoint_balanced_shares_of_the_global_batch():
    labels = torch.tensor([0] * 7 + [1] * 5)
    sampler = BalancedBatchSampler(labels, batch_size=12, seed=3)
    for batch in sampler.epoch(0):
        shares = split_batch(batch, 3)
        assert shares.shape == (3, 4)
        assert sorted(shares.flatten().tolist()) == sorted(batch.tolist())
        for share in shares:
            assert labels[share].tolist() == [0, 0, 1, 1]
    assert torch.equal(split_batch(batch, 1)[0], batch)


def test_batch_size_must_split_into_balanced_shares(store, tmp_path):
    world = World(world_size=4, rank=0, local_rank=0, local_world_size=4)
    with pytest.raises(ValueError, match=r"--batch-size 12 .* multiple of 2 x 4 = 8"):
        train(tiny_config(store, tmp_path / "run", batch_size=12), world=world)
    assert not (tmp_path / "run").exists()


def test_world_from_torchrun_environment():
    assert World.from_env({}) == World()
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
           "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}
    world = World.from_env(env)
    assert (world.world_size, world.rank, world.local_rank) == (4, 3, 1)
    assert world.is_distributed and not world.is_main
    assert str(world.device("cpu")) == "cpu"
    with pytest.raises(DistributedError, match="MASTER_ADDR"):
        World.from_env({**env, "MASTER_ADDR": ""})
    with pytest.raises(DistributedError, match="RANK='x'"):
        World.from_env({**env, "RANK": "x"})
    with pytest.raises(DistributedError, match="rank 4 is outside"):
        World.from_env({**env, "RANK": "4"})
