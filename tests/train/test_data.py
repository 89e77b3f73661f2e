"""Training data: resampling math, loading labelled bags from real stores, split, sampler."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.store import FeatureStore, FeatureStoreWriter, VideoRecord
from memtsm.segments import (
    resample_segments,
    segment_clip_ranges,
    segment_frame_ranges,
    spread_over_ranges,
)
from memtsm.train.data import (
    BalancedBatchSampler,
    DataError,
    load_bags,
    stratified_split,
)

CLIP = 10  # deliberately not 16: frame ranges must come from clip_frames
IDENTITY = {"feature_dim": 8, "layout": "test", "feature_spec": {"clip_len": CLIP},
            "dtype": "float32"}


def write_store(root, videos, identity=IDENTITY, provenance=None):
    """videos: iterable of (video_id, label, features [T, D])."""
    with FeatureStoreWriter(root, identity, provenance or {}) as writer:
        for video_id, label, features in videos:
            starts = np.arange(len(features)) * CLIP
            writer.add(VideoRecord(
                video_id=video_id, features=np.asarray(features, np.float32),
                clip_frames=np.stack([starts, starts + CLIP], axis=1), fps=25.0,
                num_frames=len(features) * CLIP, label=label,
                class_name={0: "Normal", 1: "Fighting", None: ""}[label]))
    return root


def random_videos(rng, n, label, prefix, dim=8, lengths=(3, 40)):
    return [(f"{prefix}{i:03d}", label, rng.normal(size=(int(rng.integers(*lengths)), dim)))
            for i in range(n)]


# -- resampling ------------------------------------------------------------------------------


def column(values):
    return np.asarray(values, np.float32)[:, None]


def test_resample_hand_cases_more_clips_than_segments():
    segs, ranges = resample_segments(column([0, 1, 2, 3]), 2)
    assert ranges.tolist() == [[0, 2], [2, 4]]
    assert segs[:, 0].tolist() == [0.5, 2.5]
    # round(linspace(0, 5, 3)) = round([0, 2.5, 5]) -> half rounds up: [0, 3, 5]
    segs, ranges = resample_segments(column([0, 1, 2, 3, 4]), 2)
    assert ranges.tolist() == [[0, 3], [3, 5]]
    assert segs[:, 0].tolist() == [1.0, 3.5]


def test_resample_fewer_clips_than_segments_keeps_the_clips():
    # No repetition: a short video keeps its T clips (the bag is padded and masked instead).
    segs, ranges = resample_segments(column([7, 8, 9]), 5)
    assert ranges.tolist() == [[0, 1], [1, 2], [2, 3]]
    assert segs[:, 0].tolist() == [7, 8, 9]
    segs, _ = resample_segments(column([5]), 32)
    assert segs.shape == (1, 1) and np.all(segs == 5)


def test_resample_identity_when_t_equals_s():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    segs, ranges = resample_segments(x, 32)
    assert ranges.tolist() == [[i, i + 1] for i in range(32)]
    np.testing.assert_array_equal(segs, x)


def test_resample_matches_rounded_linspace_for_t_above_s():
    for t in (33, 47, 100, 1000):
        ranges = segment_clip_ranges(t, 32)
        expected = np.floor(np.linspace(0, t, 33) + 0.5).astype(int)
        assert ranges[:, 0].tolist() == expected[:-1].tolist()
        assert ranges[:, 1].tolist() == expected[1:].tolist()


@settings(max_examples=150, deadline=None)
@given(t=st.integers(1, 400), s=st.integers(1, 64))
def test_resample_properties(t, s):
    x = np.arange(t * 2, dtype=np.float32).reshape(t, 2)
    segs, ranges = resample_segments(x, s)
    length = min(t, s)
    assert segs.shape == (length, 2) and ranges.shape == (length, 2)
    assert np.all(ranges[:, 1] > ranges[:, 0])
    # a partition of the clips, in order (one clip per segment when t <= s)
    assert ranges[0, 0] == 0 and ranges[-1, 1] == t
    assert np.all(ranges[1:, 0] == ranges[:-1, 1])
    for (a, b), seg in zip(ranges, segs):
        np.testing.assert_allclose(seg, x[a:b].mean(axis=0), rtol=1e-6)
    # mapping segment values back gives every clip its segment's value
    back = spread_over_ranges(np.arange(length, dtype=float), ranges, t)
    assert back.shape == (t,)
    for i, (a, b) in enumerate(ranges):
        assert np.all(back[a:b] == i)


def test_segment_frames_come_from_clip_frames():
    clip_frames = np.array([[0, 10], [10, 20], [20, 30], [30, 35]])  # last clip is partial
    ranges = segment_clip_ranges(4, 2)
    assert segment_frame_ranges(clip_frames, ranges).tolist() == [[0, 20], [20, 35]]
    ranges = segment_clip_ranges(2, 4)  # fewer clips than segments: one clip per segment
    assert segment_frame_ranges(clip_frames[:2], ranges).tolist() == [[0, 10], [10, 20]]


# -- loading ---------------------------------------------------------------------------------


def test_load_bags_reads_labelled_videos_and_keeps_the_mapping(tmp_path):
    rng = np.random.default_rng(1)
    videos = (random_videos(rng, 3, 0, "n") + random_videos(rng, 3, 1, "a")
              + random_videos(rng, 2, None, "u"))
    write_store(tmp_path / "s", videos, provenance={"extract_config": {"clip_len": CLIP}})
    data = load_bags([tmp_path / "s"], num_segments=5)
    assert len(data) == 6 and data.skipped_unlabelled == 2
    assert data.segments.shape == (6, 5, 8) and data.segments.dtype == torch.float32
    assert data.class_counts() == (3, 3)
    assert data.identity == FeatureIdentity.from_dict(IDENTITY)
    assert data.extract_config == {"clip_len": CLIP}
    by_id = {video_id: (label, feats) for video_id, label, feats in videos}
    for row, bag in enumerate(data.bags):
        label, feats = by_id[bag.video_id]
        assert bag.label == label == int(data.labels[row])
        expected, ranges = resample_segments(feats.astype(np.float32), 5)
        length = int(data.lengths[row])
        assert length == min(len(feats), 5) == len(expected)
        np.testing.assert_allclose(data.segments[row, :length].numpy(), expected, rtol=1e-6)
        assert torch.all(data.segments[row, length:] == 0)  # padding
        assert data.mask(torch.tensor([row]))[0].tolist() == [i < length for i in range(5)]
        assert bag.clip_ranges.tolist() == ranges.tolist()
        assert bag.segment_frames[0, 0] == 0 and bag.segment_frames[-1, 1] == len(feats) * CLIP


def test_load_bags_combines_stores(tmp_path):
    rng = np.random.default_rng(2)
    write_store(tmp_path / "a", random_videos(rng, 2, 0, "n"))
    write_store(tmp_path / "b", random_videos(rng, 2, 1, "a"))
    data = load_bags([tmp_path / "a", tmp_path / "b"], 4)
    assert data.class_counts() == (2, 2) and len(data.stores) == 2


def test_no_anomalous_video_is_an_error(tmp_path):
    rng = np.random.default_rng(3)
    write_store(tmp_path / "s", random_videos(rng, 4, 0, "n") + random_videos(rng, 2, None, "u"))
    with pytest.raises(DataError, match="no anomalous"):
        load_bags([tmp_path / "s"], 4)


def test_no_normal_video_is_an_error(tmp_path):
    rng = np.random.default_rng(4)
    write_store(tmp_path / "s", random_videos(rng, 3, 1, "a"))
    with pytest.raises(DataError, match="no normal"):
        load_bags([tmp_path / "s"], 4)


def test_mismatched_feature_dims_across_stores(tmp_path):
    rng = np.random.default_rng(5)
    write_store(tmp_path / "a", random_videos(rng, 2, 0, "n") + random_videos(rng, 2, 1, "a"))
    other = {**IDENTITY, "feature_dim": 4}
    write_store(tmp_path / "b", random_videos(rng, 2, 1, "x", dim=4), identity=other)
    with pytest.raises(DataError, match="feature_dim: the first has 8, this one has 4"):
        load_bags([tmp_path / "a", tmp_path / "b"], 4)


def test_nan_features_are_an_error(tmp_path):
    rng = np.random.default_rng(6)
    videos = random_videos(rng, 2, 0, "n") + random_videos(rng, 2, 1, "a")
    root = write_store(tmp_path / "s", videos)
    shard = FeatureStore(root).shards[0]
    with h5py.File(shard, "r+") as handle:
        handle["a001/features"][2, 3] = np.nan
    with pytest.raises(DataError, match="a001.*NaN"):
        load_bags([root], 4)


def test_single_video_store_is_an_error(tmp_path):
    rng = np.random.default_rng(7)
    write_store(tmp_path / "a", random_videos(rng, 2, 0, "n") + random_videos(rng, 2, 1, "a"))
    write_store(tmp_path / "b", random_videos(rng, 1, 1, "x"))
    with pytest.raises(DataError, match="single video"):
        load_bags([tmp_path / "a", tmp_path / "b"], 4)


def test_duplicate_video_ids_across_stores(tmp_path):
    rng = np.random.default_rng(8)
    write_store(tmp_path / "a", random_videos(rng, 2, 0, "n") + random_videos(rng, 2, 1, "a"))
    write_store(tmp_path / "b", random_videos(rng, 2, 0, "n"))
    with pytest.raises(DataError, match="'n000' is in both"):
        load_bags([tmp_path / "a", tmp_path / "b"], 4)


# -- split and sampler -----------------------------------------------------------------------


def test_stratified_split_sizes_and_disjointness():
    labels = [0] * 10 + [1] * 5
    train, val = stratified_split(labels, 0.2, seed=0)
    y = np.asarray(labels)
    assert (y[val] == 0).sum() == 2 and (y[val] == 1).sum() == 1
    assert (y[train] == 0).sum() == 8 and (y[train] == 1).sum() == 4
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(15))


def test_stratified_split_keeps_both_classes_in_validation():
    train, val = stratified_split([0, 0, 1, 1], 0.05, seed=3)
    assert sorted(np.asarray([0, 0, 1, 1])[val].tolist()) == [0, 1] and len(train) == 2
    # a class of one video stays in training
    train, val = stratified_split([0, 0, 0, 1], 0.5, seed=3)
    assert 3 in train.tolist() and len(val) == 2  # round(0.5 * 3) = 2 normal, 0 anomalous


def test_stratified_split_is_deterministic_and_seeded():
    labels = [0] * 30 + [1] * 20
    a = stratified_split(labels, 0.2, seed=11)
    b = stratified_split(torch.tensor(labels), 0.2, seed=11)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    others = [stratified_split(labels, 0.2, seed=s)[1] for s in range(1, 6)]
    assert any(not np.array_equal(a[1], v) for v in others)


def test_balanced_sampler_counts():
    labels = [0] * 10 + [1] * 3
    sampler = BalancedBatchSampler(labels, batch_size=4, seed=0)
    batches = sampler.epoch(0)
    assert len(sampler) == len(batches) == 5  # ceil(max(10, 3) / 2)
    y = np.asarray(labels)
    for batch in batches:
        assert batch.shape == (4,) and y[batch.numpy()].tolist() == [0, 0, 1, 1]
    drawn = torch.cat(batches).numpy()
    normal_counts = np.bincount(drawn[y[drawn] == 0], minlength=13)[:10]
    assert normal_counts.tolist() == [1] * 10  # the larger class: every bag once
    anomalous_counts = np.bincount(drawn[y[drawn] == 1], minlength=13)[10:]
    assert anomalous_counts.sum() == 10 and set(anomalous_counts.tolist()) <= {3, 4}


def test_balanced_sampler_is_deterministic_per_epoch_and_uses_indices():
    labels = [1, 0, 1, 0, 0, 0, 1]
    indices = [100, 101, 102, 103, 104, 105, 106]
    a = BalancedBatchSampler(labels, 4, seed=5, indices=indices)
    b = BalancedBatchSampler(labels, 4, seed=5, indices=indices)
    assert all(torch.equal(x, y) for x, y in zip(a.epoch(3), b.epoch(3)))
    assert any(not torch.equal(x, y) for x, y in zip(a.epoch(0), a.epoch(1)))
    assert set(torch.cat(a.epoch(0)).tolist()) <= set(indices)
    with pytest.raises(ValueError, match="even"):
        BalancedBatchSampler(labels, 3, seed=0)
    with pytest.raises(ValueError, match="each class"):
        BalancedBatchSampler([0, 0], 2, seed=0)


def test_missing_store_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such feature store"):
        load_bags([tmp_path / "nope"], 4)


def test_sampler_steps_per_epoch_override():
    from memtsm.train.data import BalancedBatchSampler

    labels = [0, 0, 0, 1, 1]
    sampler = BalancedBatchSampler(labels, batch_size=4, seed=0, steps_per_epoch=7)
    batches = sampler.epoch(0)
    assert len(sampler) == len(batches) == 7
    for batch in batches:
        assert [labels[i] for i in batch.tolist()] == [0, 0, 1, 1]
    assert len(BalancedBatchSampler(labels, batch_size=4, seed=0)) == 2


def test_grouped_split_keeps_the_crops_of_a_video_together():
    from memtsm.train.data import stratified_split

    videos = [f"n{i}" for i in range(6)] + [f"a{i}" for i in range(4)]
    groups = [v for v in videos for _ in range(5)]  # 5 crops each
    labels = [0 if v.startswith("n") else 1 for v in groups]
    for seed in range(5):
        train_idx, val_idx = stratified_split(labels, 0.34, seed, groups)
        assert sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(50))
        train_videos = {groups[i] for i in train_idx}
        val_videos = {groups[i] for i in val_idx}
        assert not train_videos & val_videos
        assert len([v for v in val_videos if v.startswith("n")]) == 2  # round(0.34 * 6)
        assert len([v for v in val_videos if v.startswith("a")]) == 1  # round(0.34 * 4)
    with pytest.raises(ValueError, match="different labels"):
        stratified_split([0, 1], 0.5, 0, ["v", "v"])
