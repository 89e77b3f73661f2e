"""Parallel extraction: disjoint size-balanced parts, one shared store, torchrun on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _videos import moving_frames, write_video

from memtsm.extract import FeatureStore
from memtsm.extract.sources import VideoSource, discover_videos, shard_sources, source_bytes
from memtsm.extract.verify import verify_store

LENGTHS = [16, 80, 33, 48, 20, 64, 17]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sharded") / "videos"
    for i, length in enumerate(LENGTHS):
        folder = root / ("Assault" if i % 2 else "Training_Normal_Videos")
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f"video_{i}", moving_frames(length, seed=i), codec="h264")
    (root / "broken.mp4").write_bytes(b"not a video")
    return root


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory) -> dict[str, np.ndarray]:
    """Features of one single-process run, with the workers' thread count (one thread each:
    another count sums in another order, which can change the last float16 bit)."""
    out = tmp_path_factory.mktemp("reference") / "features"
    result = _run_cli("extract", videos, "--out", out, "--long-side", 64, "--device", "cpu",
                      "--quiet")
    assert result.returncode == 1, result.stderr  # 1: broken.mp4 failed
    return {record.video_id: record.features for record in FeatureStore(out)}


def _fake_sources(sizes: dict[str, int], tmp_path: Path) -> list[VideoSource]:
    sources = []
    for video_id, size in sizes.items():
        path = tmp_path / f"{video_id}.mp4"
        path.write_bytes(b"\0" * size)
        sources.append(VideoSource(video_id, path, False))
    return sources


def test_parts_are_disjoint_complete_deterministic_and_balanced(tmp_path):
    rng = np.random.default_rng(0)
    sizes = {f"v{i:02d}": int(s) for i, s in enumerate(rng.integers(1, 5000, size=40))}
    sources = _fake_sources(sizes, tmp_path)
    for parts in (1, 2, 3, 7):
        split = [shard_sources(sources, parts, i) for i in range(parts)]
        shuffled = [shard_sources(list(reversed(sources)), parts, i) for i in range(parts)]
        assert split == shuffled  # the order found on disk does not matter
        ids = [s.video_id for part in split for s in part]
        assert sorted(ids) == sorted(sizes)  # every video exactly once
        loads = [sum(source_bytes(s) for s in part) for part in split]
        assert max(loads) - min(loads) <= max(sizes.values())


def test_more_parts_than_videos_leaves_some_parts_empty(tmp_path):
    sources = _fake_sources({"a": 10, "b": 5}, tmp_path)
    assert [len(shard_sources(sources, 4, i)) for i in range(4)] == [1, 1, 0, 0]


def _run_cli(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "memtsm", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def _check_store(out: Path, reference: dict[str, np.ndarray]) -> FeatureStore:
    report = verify_store(out)
    assert report.ok, report.problems
    store = FeatureStore(out)
    assert sorted(store.video_ids) == sorted(reference)  # each once (FeatureStore checks)
    for record in store:
        np.testing.assert_array_equal(record.features, reference[record.video_id])
    return store


def test_workers_write_their_own_shards_into_one_store(videos, reference, tmp_path):
    out = tmp_path / "features"
    for index in range(2):
        result = _run_cli("extract", videos, "--out", out, "--long-side", 64, "--device", "cpu",
                          "--num-shards", 2, "--shard-index", index, "--quiet")
        assert result.returncode in (0, 1), result.stderr
    store = _check_store(out, reference)
    assert {p.name.split("-")[1] for p in store.shards} == {"r0", "r1"}
    assert (out / "extract_config-r0.json").is_file() and (out / "extract_config-r1.json").is_file()
    assert json.loads((out / "extract_config-r1.json").read_text())["shard_index"] == 1
    failed = [json.loads(line)["video_id"] for name in ("failures-r0.jsonl", "failures-r1.jsonl")
              for line in (out / name).read_text().splitlines()]
    assert failed == ["broken"]
    info = _run_cli("features", "info", out)
    assert "videos: 7" in info.stdout
    assert "failures of the last run(s): 1 (failures-r0.jsonl: " in info.stdout
    # A rerun with another number of workers, or with one, redoes nothing.
    for args in (["--num-shards", 3, "--shard-index", 2], []):
        result = _run_cli("extract", videos, "--out", out, "--long-side", 64, "--device", "cpu",
                          *args)
        assert "stored 0 videos" in result.stderr, result.stderr
    _check_store(out, reference)


def test_contradicting_flags_under_torchrun_are_a_usage_error(videos, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1",
           "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"}
    result = subprocess.run([sys.executable, "-m", "memtsm", "extract", str(videos), "--out",
                             str(tmp_path / "f"), "--num-shards", "3", "--shard-index", "0"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "contradict torchrun's WORLD_SIZE/RANK (2/1)" in result.stderr


def test_torchrun_two_cpu_processes_equal_one_process(videos, reference, tmp_path):
    out = tmp_path / "features"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "memtsm", "extract", str(videos), "--out", str(out), "--long-side", "64",
         "--quiet"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    try:
        store = _check_store(out, reference)
    except AssertionError as exc:  # say what the workers printed (a worker may have failed)
        raise AssertionError(f"{exc}\n--- torchrun stderr ---\n{result.stderr[-4000:]}") from None
    by_worker = {p.name.split("-")[1] for p in store.shards}
    assert by_worker == {"r0", "r1"}
    assert len(store.video_ids) == len(LENGTHS)
    discovered = [s.video_id for s in discover_videos([videos])]
    parts = [shard_sources(discover_videos([videos]), 2, i) for i in range(2)]
    for worker, part in enumerate(parts):
        stored_by_worker = {e.video_id for e in store.entries if f"-r{worker}-" in e.shard}
        assert stored_by_worker == {s.video_id for s in part} - {"broken"}
    assert "broken" in discovered
