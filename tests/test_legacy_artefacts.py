"""Artefacts written by memtsm 0.1.0 before the restructure (tests/data/legacy) still load.

The files were written by commit ee25868 (the last layout with ``memtsm.pipeline``): a feature
store with XFeat's identity, and a checkpoint (format version 1, whose threshold key was
``threshold``) together with the scores it gives on a stored input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from memtsm.constants import XFEAT_WEIGHTS_SHA256
from memtsm.extract.config import FeatureSpec
from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.store import FeatureStore, FeatureStoreWriter, VideoRecord
from memtsm.score.stored import check_identity, score_features
from memtsm.train.checkpoint import build_model_from_checkpoint, load_checkpoint

LEGACY = Path(__file__).parent / "data" / "legacy"


def test_old_store_reads_and_matches_todays_identity(tmp_path):
    store = FeatureStore(LEGACY / "store-v0.1.0")
    assert sorted(store.video_ids) == ["Fighting/Fighting001_x264", "Normal/Normal_001"]
    record = store.read("Fighting/Fighting001_x264")
    assert record.features.shape == (6, 128) and record.label == 1
    today = FeatureIdentity.of_extraction(FeatureSpec(), 128, XFEAT_WEIGHTS_SHA256)
    assert store.identity == today and store.identity.diff(today) == {}
    # today's extraction appends to the old store (same identity), and the store stays whole
    copy = tmp_path / "store"
    shutil.copytree(LEGACY / "store-v0.1.0", copy)
    with FeatureStoreWriter(copy, today) as writer:
        writer.add(VideoRecord(video_id="new", features=np.ones((2, 128), np.float32),
                               clip_frames=np.array([[0, 16], [16, 32]]), fps=30.0,
                               num_frames=32))
    assert sorted(FeatureStore(copy).video_ids) == sorted(store.video_ids + ["new"])


def test_old_checkpoint_loads_with_its_threshold_and_scores():
    checkpoint = load_checkpoint(LEGACY / "best-v0.1.0.pt")
    raw = torch.load(LEGACY / "best-v0.1.0.pt", weights_only=True)
    assert raw["format_version"] == 1 and "threshold" in raw  # really the old format
    assert checkpoint.val_video_threshold == 0.4321 and checkpoint.epoch == 3
    assert checkpoint.feature_identity.is_extracted
    check_identity(checkpoint.feature_identity, FeatureStore(LEGACY / "store-v0.1.0").identity)
    model = build_model_from_checkpoint(checkpoint)
    features = np.load(LEGACY / "input-v0.1.0.npy")
    scores = score_features(model, features).scores
    np.testing.assert_allclose(scores, np.load(LEGACY / "expected-scores-v0.1.0.npy"), atol=1e-6)
