"""`memtsm features verify`: an intact store passes; truncation, bit flips and a stale index are named."""

from __future__ import annotations

import h5py
import numpy as np
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.extract.store import FeatureStore, FeatureStoreWriter, VideoRecord
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
