"""`memtsm features verify`: an intact store passes; truncation, bit flips and a stale index
are named."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.extract.store import (
    FeatureStore,
    FeatureStoreWriter,
    ShardReadError,
    StoreError,
    VideoRecord,
)
from memtsm.extract.verify import verify_store

IDENTITY = {"feature_dim": 4, "dtype": "float32", "layout": "test"}


def make_store(root, shards=3, per_shard=2):
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(root, IDENTITY, shard_bytes=per_shard * 3 * 4 * 4) as writer:
        for i in range(shards * per_shard):
            starts = np.arange(3) * 16
            writer.add(VideoRecord(f"v{i}", rng.normal(size=(3, 4)).astype(np.float32),
                                   np.stack([starts, starts + 16], 1), 30.0, 48, label=i % 2))
    return FeatureStore(root)


def verify_cli(root):
    return CliRunner().invoke(app, ["features", "verify", str(root)])


def test_intact_store_passes(tmp_path):
    make_store(tmp_path)
    report = verify_store(tmp_path)
    assert report.ok and report.shards == 3 and report.videos == 6
    assert verify_cli(tmp_path).exit_code == 0


def test_truncated_shard_is_named_and_the_rest_stays_usable(tmp_path):
    store = make_store(tmp_path)
    victim = store.shards[1]
    victim.write_bytes(victim.read_bytes()[:1000])
    report = verify_store(tmp_path)
    assert not report.ok and report.videos == 4
    assert any(p.startswith(f"{victim.name}: cannot be opened") for p in report.problems)
    result = verify_cli(tmp_path)
    assert result.exit_code == 1 and victim.name in result.output
    assert FeatureStore(tmp_path).read("v0").features.shape == (3, 4)  # other shards still read


def test_flipped_bit_in_features_is_detected(tmp_path):
    store = make_store(tmp_path)
    shard = store.shards[0]
    with h5py.File(shard, "r") as handle:
        offset = handle["v1/features"].id.get_chunk_info(0).byte_offset
    data = bytearray(shard.read_bytes())
    data[offset + 5] ^= 0x10
    shard.write_bytes(bytes(data))
    report = verify_store(tmp_path)
    assert [p for p in report.problems if "v1: data cannot be read back" in p]
    assert not [p for p in report.problems if "v0:" in p]


def test_stale_index_and_bad_clip_frames_are_reported(tmp_path):
    store = make_store(tmp_path)
    (tmp_path / "index.jsonl").write_text('{"video_id": "ghost", "shard": "shard-00000.h5"}\n')
    with h5py.File(store.shards[2], "a") as handle:
        handle["v4"].attrs["num_frames"] = 50  # clips end at 48: no longer tile the video
    report = verify_store(tmp_path)
    assert any("index.jsonl: does not match" in p for p in report.problems)
    assert any("v4: clip_frames do not tile" in p for p in report.problems)


def _flip_feature_byte(shard, video_id):
    with h5py.File(shard, "r") as handle:
        offset = handle[f"{video_id}/features"].id.get_chunk_info(0).byte_offset
    data = bytearray(shard.read_bytes())
    data[offset + 5] ^= 0x10
    shard.write_bytes(bytes(data))


def test_reading_a_damaged_shard_names_shard_video_and_verify(tmp_path):
    store = make_store(tmp_path)
    shard = store.shards[0]
    _flip_feature_byte(shard, "v1")
    with pytest.raises(ShardReadError) as info:
        store.read("v1")
    message = str(info.value)
    assert str(shard) in message and "'v1'" in message
    assert f"memtsm features verify {tmp_path}" in message
    assert "filter returned failure" in message  # h5py's own reason is kept
    assert isinstance(info.value, StoreError) and isinstance(info.value, OSError)
    with pytest.raises(ShardReadError, match="'v1'"):
        list(store)
    assert store.read("v0").features.shape == (3, 4)  # the rest of the shard still reads
    victim = store.shards[2]
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(ShardReadError, match=f"{victim}: video 'v4' cannot be opened"):
        store.read("v4")
    first = store.shards[0]
    first.write_bytes(first.read_bytes()[:1000])
    with pytest.raises(ShardReadError, match=f"{first}: cannot be opened.*features verify"):
        store.identity  # noqa: B018 (the identity is read from the first shard)


def test_train_on_a_damaged_shard_points_to_verify(tmp_path):
    from memtsm.train.data import load_bags

    store = make_store(tmp_path / "store")
    _flip_feature_byte(store.shards[1], "v3")
    with pytest.raises(ShardReadError, match="v3"):
        load_bags([tmp_path / "store"], num_segments=4)
    result = CliRunner().invoke(app, ["train", "--features", str(tmp_path / "store"), "--out",
                                      str(tmp_path / "run"), "--epochs", "1", "--steps", "1",
                                      "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"{store.shards[1]}: video 'v3' cannot be read" in result.output
    assert "memtsm features verify" in result.output
