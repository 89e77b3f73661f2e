"""Scoring: whole-video = windowed (receptive field), stores, identity checks, train -> score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memtsm.extract.store import FeatureStoreWriter, VideoRecord
from memtsm.model import ScorerConfig, build_scorer
from memtsm.score.stored import IncompatibleFeaturesError, score_features, score_store
from memtsm.segments import resample_segments, segment_clip_ranges
from memtsm.train.checkpoint import Checkpoint, save_checkpoint
from memtsm.train.config import ScorerOptions, TrainConfig
from memtsm.train.loop import train

DIM = 16
CLIP = 8
IDENTITY = {"feature_dim": DIM, "layout": "max128", "feature_spec": {"clip_len": CLIP},
            "dtype": "float32"}


def scorer(kind="memtsm", seed=0):
    torch.manual_seed(seed)
    return build_scorer(ScorerConfig(feature_dim=DIM, kind=kind, channels=16, mem_size=8,
                                     head_hidden=8, se_window=5, mil_hidden=(8, 4))).eval()


def write_store(root, lengths, labels, identity=IDENTITY, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    direction = np.ones(identity["feature_dim"], np.float32) / np.sqrt(identity["feature_dim"])
    with FeatureStoreWriter(root, identity, {}) as writer:
        for i, (clips, label) in enumerate(zip(lengths, labels)):
            features = rng.normal(size=(clips, identity["feature_dim"])).astype(np.float32)
            if label == 1:
                features[clips // 2:clips // 2 + 4] += shift * direction
            starts = np.arange(clips) * CLIP
            writer.add(VideoRecord(
                video_id=f"cam/{i:02d}", features=features,
                clip_frames=np.stack([starts, starts + CLIP], axis=1), fps=25.0,
                num_frames=clips * CLIP + 3, label=label, class_name=""))
    return root


@pytest.mark.parametrize("kind", ["memtsm", "mil-mlp"])
def test_whole_video_equals_windows_with_receptive_field_context(kind):
    model = scorer(kind)
    features = np.random.default_rng(1).normal(size=(300, DIM)).astype(np.float32)
    whole = score_features(model, features)
    assert whole.scores.shape == (300,) and whole.recon_error.shape == (300,)
    for window in (5, 37, 299):
        windowed = score_features(model, features, window=window)
        np.testing.assert_allclose(windowed.scores, whole.scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(windowed.recon_error, whole.recon_error, rtol=0, atol=1e-5)


def test_context_shorter_than_the_receptive_field_would_differ():
    """The windowed equality above is not trivial: without context the scores change."""
    model = scorer()
    assert model.receptive_field > 0
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(120, DIM)).astype(np.float32))
    whole = score_features(model, x).scores
    with torch.no_grad():
        no_context = model(x[40:80].unsqueeze(0)).scores[0].numpy()
    assert np.abs(no_context - whole[40:80]).max() > 1e-4


def test_score_features_keeps_the_model_mode_and_accepts_tensors():
    model = scorer().train()
    x = torch.randn(30, DIM)
    a = score_features(model, x)
    assert model.training
    b = score_features(model, x.numpy())
    np.testing.assert_array_equal(a.scores, b.scores)  # eval mode: no dropout noise
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        score_features(model, np.zeros((0, DIM)))


def test_segment_scoring_maps_segments_back_to_clips():
    model = scorer()
    features = np.random.default_rng(3).normal(size=(40, DIM)).astype(np.float32)
    result = score_features(model, features, segments=8)
    assert result.scores.shape == (40,)
    segs, _ = resample_segments(features, 8)
    with torch.no_grad():
        expected = model(torch.from_numpy(segs)[None]).scores[0].numpy()
    for i, (a, b) in enumerate(segment_clip_ranges(40, 8)):
        np.testing.assert_allclose(result.scores[a:b], expected[i], rtol=1e-6)
    short = score_features(model, features[:3], segments=8)  # fewer clips: scored as they are
    assert short.scores.shape == (3,)


def make_checkpoint(model, identity=IDENTITY):
    return Checkpoint(scorer_config=model.config, state_dict=model.state_dict(),
                      feature_identity=identity, val_video_threshold=0.5)


def test_score_store_scores_every_video(tmp_path):
    root = write_store(tmp_path / "s", [5, 33, 12], [0, 1, None])
    model = scorer()
    path = save_checkpoint(tmp_path / "best.pt", make_checkpoint(model))
    results = score_store(path, [root], device="cpu")
    assert list(results) == ["cam/00", "cam/01", "cam/02"]
    video = results["cam/01"]
    assert video.scores.shape == video.recon_error.shape == (33,)
    assert video.clip_frames.shape == (33, 2) and video.clip_frames[1].tolist() == [CLIP, 2 * CLIP]
    assert video.num_frames == 33 * CLIP + 3 and video.label == 1
    assert results["cam/02"].label is None
    assert np.all((video.scores > 0) & (video.scores < 1))
    scores, _, _, _, _, _ = results["cam/00"]  # a tuple too
    assert scores.shape == (5,)


@pytest.mark.parametrize("key, value", [("layout", "pyramid640"),
                                        ("feature_spec", {"clip_len": 16}),
                                        ("feature_dim", 32)])
def test_score_store_refuses_other_features(tmp_path, key, value):
    identity = {**IDENTITY, key: value}
    root = write_store(tmp_path / "s", [6, 7], [0, 1], identity=identity)
    with pytest.raises(IncompatibleFeaturesError, match=key):
        score_store(make_checkpoint(scorer()), root, device="cpu")


def test_train_then_score_ranks_anomalous_clips_higher(tmp_path):
    lengths = [int(n) for n in np.random.default_rng(4).integers(12, 40, size=24)]
    labels = [0] * 12 + [1] * 12
    root = write_store(tmp_path / "s", lengths, labels, shift=8.0)
    result = train(TrainConfig(
        features=(str(root),), out=str(tmp_path / "run"), epochs=8, lr=1e-2, batch_size=8,
        steps_per_epoch=3,
        scorer=ScorerOptions(channels=16, mem_size=8, head_hidden=8, se_window=5)))
    results = score_store(result.best_checkpoint, root, device="cpu")
    anomalous_clips, normal_clips = [], []
    for video_id, video in results.items():
        i = int(video_id.split("/")[1])
        if labels[i] == 1:
            anomalous_clips.append(video.scores[lengths[i] // 2:lengths[i] // 2 + 4].mean())
        else:
            normal_clips.append(video.scores.mean())
    # every anomalous window scores above every normal video's mean clip score
    assert min(anomalous_clips) > max(normal_clips)
