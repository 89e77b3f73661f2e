"""Small data for the command-line tests: a store of random bags and a tiny checkpoint on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memtsm.extract.store import FeatureStoreWriter, VideoRecord
from memtsm.train.config import ScorerOptions, TrainConfig
from memtsm.train.loop import train

DIM = 32
CLIP = 16
IDENTITY = {"feature_dim": DIM, "layout": "synthetic", "feature_spec": {"clip_len": CLIP},
            "dtype": "float32"}
TINY_SCORER = {"channels": 16, "mem_size": 8, "head_hidden": 8, "se_window": 3,
               "mil_hidden": (16, 8)}


def write_bags(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """Labelled bags of 12-30 clips of noise; anomalous ones hold a few shifted clips."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=DIM).astype(np.float32)
    direction /= np.linalg.norm(direction)
    with FeatureStoreWriter(root, IDENTITY, {"extract_config": {"synthetic": True}}) as writer:
        for i, label in enumerate([0] * per_class + [1] * per_class):
            clips = int(rng.integers(12, 31))
            features = rng.normal(size=(clips, DIM)).astype(np.float32)
            if label:
                features[2:6] += 8 * direction
            starts = np.arange(clips) * CLIP
            writer.add(VideoRecord(
                video_id=f"v{i:03d}", features=features,
                clip_frames=np.stack([starts, starts + CLIP], axis=1), fps=30.0,
                num_frames=clips * CLIP, label=label, class_name="Anomaly" if label else "Normal"))
    return root


def tiny_train_flags() -> list[str]:
    """``memtsm train`` flags of a run that takes a second or two."""
    return ["--channels", "16", "--mem-size", "8", "--batch-size", "8", "--lr", "0.01",
            "--steps-per-epoch", "3", "--val-fraction", "0.25", "--device", "cpu"]


def train_tiny(store: Path, out: Path, epochs: int = 2) -> Path:
    """Train on ``store`` with the library; return ``best.pt``."""
    config = TrainConfig(features=(str(store),), out=str(out), epochs=epochs, batch_size=8,
                         steps_per_epoch=3,
                         lr=1e-2, val_fraction=0.25, device="cpu",
                         scorer=ScorerOptions.from_dict(TINY_SCORER))
    return train(config).best_checkpoint
