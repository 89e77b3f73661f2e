"""Fixtures of the live-scoring tests: a small trained checkpoint and test videos."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _videos import moving_frames, write_video  # noqa: E402


@pytest.fixture(scope="session")
def trained(tmp_path_factory, xfeat_weights):
    """``(best.pt, root)``: a small scorer trained on XFeat features of generated videos."""
    from memtsm.extract import ExtractConfig, FeatureSpec, extract
    from memtsm.train.config import ScorerOptions, TrainConfig
    from memtsm.train.loop import train

    root = tmp_path_factory.mktemp("watch")
    videos = root / "videos"
    for i in range(4):
        for folder, name, speed in (("Normal", f"Normal_{i}", 1), ("Running", f"Running{i}", 6)):
            (videos / folder).mkdir(parents=True, exist_ok=True)
            write_video(videos / folder / name, moving_frames(40, seed=i, speed=speed))
    store = root / "features"
    extract([videos], store, ExtractConfig(spec=FeatureSpec(long_side=64),
                                           xfeat_weights=str(xfeat_weights)))
    run = train(TrainConfig(features=(str(store),), out=str(root / "run"), epochs=2, steps=6,
                            val_fraction=0.25, scorer=ScorerOptions(channels=32), device="cpu"))
    return run.best_checkpoint, root


@pytest.fixture(scope="session")
def long_video(trained):
    """A 45-clip video (720 frames at 25 fps): longer than the scorer's two-sided reach."""
    _, root = trained
    return write_video(root / "long", moving_frames(715, seed=3, speed=3))
