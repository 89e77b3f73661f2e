"""The sharded HDF5 store: round trip, identity checks, crash safety, index rebuild."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from memtsm.extract.store import (
    FeatureStore,
    FeatureStoreWriter,
    StoreError,
    VideoRecord,
    validate_video_id,
)

IDENTITY = {"feature_dim": 4, "dtype": "float16", "layout": "test", "feature_spec": {"k": 1}}


def record(video_id: str, clips: int = 3, label: int | None = 1, value: float = 1.0):
    starts = np.arange(clips) * 16
    return VideoRecord(
        video_id=video_id,
        features=np.full((clips, 4), value, np.float32),
        clip_frames=np.stack([starts, starts + 16], axis=1),
        fps=30.0, num_frames=clips * 16, width=64, height=48, source=f"/videos/{video_id}.mp4",
        label=label, class_name="Assault" if label else "Normal")


def test_round_trip_and_plain_h5py_layout(tmp_path):
    with FeatureStoreWriter(tmp_path, IDENTITY, {"memtsm_version": "x"}) as writer:
        writer.add(record("Assault/a", value=0.5))
        writer.add(record("Normal/b", label=0))
        writer.add(record("u", label=None))
    store = FeatureStore(tmp_path)
    assert store.video_ids == ["Assault/a", "Normal/b", "u"]
    got = store.read("Assault/a")
    assert got.features.dtype == np.float16 and np.all(got.features == 0.5)
    assert got.label == 1 and got.class_name == "Assault" and got.num_frames == 48
    assert store.read("u").label is None
    assert store.feature_dim == 4
    # Plain h5py: every group with a `features` dataset is one video, clip_frames beside it.
    found = []
    with h5py.File(store.shards[0], "r") as handle:
        handle.visititems(lambda name, obj: found.append(name)
                          if isinstance(obj, h5py.Group) and "features" in obj else None)
        assert handle["Normal/b/clip_frames"].shape == (3, 2)
        assert json.loads(handle.attrs["identity"]) == IDENTITY
    assert sorted(found) == ["Assault/a", "Normal/b", "u"]


def test_shards_roll_over_by_size(tmp_path):
    with FeatureStoreWriter(tmp_path, IDENTITY, shard_bytes=3 * 4 * 2 * 2) as writer:
        for i in range(5):
            writer.add(record(f"v{i}"))
    store = FeatureStore(tmp_path)
    assert [p.name for p in store.shards] == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    assert len(store) == 5 and {e.shard for e in store.entries} == {p.name for p in store.shards}


def test_different_identity_is_refused(tmp_path):
    with FeatureStoreWriter(tmp_path, IDENTITY) as writer:
        writer.add(record("a"))
    with pytest.raises(StoreError, match="feature_dim: store has 4, run has 8"):
        FeatureStoreWriter(tmp_path, {**IDENTITY, "feature_dim": 8})


def test_interrupted_shard_is_discarded_and_redone(tmp_path):
    with FeatureStoreWriter(tmp_path, IDENTITY) as writer:
        writer.add(record("a"))
    crashed = FeatureStoreWriter(tmp_path, IDENTITY)
    crashed.add(record("b"))  # never committed: the process "dies" here
    assert (tmp_path / "shard-00001.h5.tmp").exists()
    crashed._handle.close()
    rerun = FeatureStoreWriter(tmp_path, IDENTITY)
    assert not list(tmp_path.glob("*.tmp"))
    assert rerun.done_ids == {"a"}
    rerun.add(record("b"))
    rerun.close()
    assert FeatureStore(tmp_path).video_ids == ["a", "b"]


def test_stale_index_is_rebuilt_from_shards(tmp_path):
    with FeatureStoreWriter(tmp_path, IDENTITY, shard_bytes=1) as writer:
        writer.add(record("a"))
        writer.add(record("b"))
    (tmp_path / "index.jsonl").write_text('{"video_id": "a"}\n')  # truncated by a crash
    store = FeatureStore(tmp_path)
    assert store.video_ids == ["a", "b"]
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 2


def test_duplicate_ids_and_bad_records_are_rejected(tmp_path):
    with FeatureStoreWriter(tmp_path, IDENTITY) as writer:
        writer.add(record("a"))
        with pytest.raises(StoreError, match="already"):
            writer.add(record("a"))
        with pytest.raises(StoreError, match="feature dim"):
            writer.add(VideoRecord("c", np.ones((2, 5)), np.zeros((2, 2)), 30.0, 32))
    with pytest.raises(ValueError, match="NaN"):
        VideoRecord("n", np.full((2, 4), np.nan), np.zeros((2, 2)), 30.0, 32)


def test_failed_write_leaves_no_partial_group(tmp_path):
    bad = record("partial")
    bad.extra["unstorable"] = object()  # h5py cannot store it: fails after the datasets exist
    with FeatureStoreWriter(tmp_path, IDENTITY) as writer:
        with pytest.raises(TypeError):
            writer.add(bad)
        writer.add(record("ok"))
    with h5py.File(FeatureStore(tmp_path).shards[0], "r") as handle:
        assert "partial" not in handle and "ok" in handle
    assert FeatureStore(tmp_path).video_ids == ["ok"]


def test_commit_drops_groups_an_interrupt_left_unfinished(tmp_path):
    """Ctrl-C can land between any two steps of add(); commit indexes only finished groups."""
    with FeatureStoreWriter(tmp_path, IDENTITY) as writer:
        writer.add(record("Assault/whole"))
        # What an interrupt leaves: a created, empty group, and one with data but no attributes.
        handle = writer._handle
        handle.create_group("Assault/created_only")
        handle.create_group("half").create_dataset("features", data=np.zeros((3, 4)))
        # ... and one interrupted while its attributes were written (video_id comes last).
        almost = handle.create_group("almost")
        almost.create_dataset("features", data=np.zeros((3, 4)))
        almost.create_dataset("clip_frames", data=np.zeros((3, 2), np.int64))
        almost.attrs["fps"] = 30.0
    store = FeatureStore(tmp_path)
    assert store.video_ids == ["Assault/whole"]
    with h5py.File(store.shards[0], "r") as shard:
        assert "half" not in shard and "almost" not in shard
        assert "Assault/created_only" not in shard
        assert "Assault/whole" in shard
    index = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["video_id"] for line in index] == ["Assault/whole"]


@pytest.mark.parametrize("video_id", ["", "../x", "/abs", "a/../b", "a//b", "a\\b", "./a"])
def test_unsafe_video_ids_are_rejected(video_id):
    with pytest.raises(ValueError):
        validate_video_id(video_id)
