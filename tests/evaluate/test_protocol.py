"""Frame-level evaluation: what it says about videos the annotation file does not list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from memtsm.evaluate import protocol
from memtsm.evaluate.annotations import load_annotations
from memtsm.evaluate.protocol import EvalConfig, evaluate
from memtsm.extract.store import FeatureStoreWriter, VideoRecord
from memtsm.model import ScorerConfig, build_scorer
from memtsm.train.checkpoint import Checkpoint, save_checkpoint

DIM, CLIP = 16, 16
IDENTITY = {"feature_dim": DIM, "layout": "synthetic", "feature_spec": {"clip_len": CLIP},
            "dtype": "float32"}
#: store id -> (label, frames): two videos of the official test annotation and a training-set
#: anomaly (Assault018, 361 frames) that it does not list.
VIDEOS = {"Explosion/Explosion008_x264": (1, 1748),
          "Testing_Normal_Videos_Anomaly/Normal_Videos_006_x264": (0, 450),
          "Assault/Assault018_x264": (1, 361),
          "Training_Normal_Videos_Anomaly/Normal_Videos_003_x264": (0, 320)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(root / "store", IDENTITY) as writer:
        for video_id, (label, frames) in VIDEOS.items():
            clips = frames // CLIP
            starts = np.arange(clips) * CLIP
            writer.add(VideoRecord(
                video_id=video_id, features=rng.normal(size=(clips, DIM)).astype(np.float32),
                clip_frames=np.stack([starts, starts + CLIP], axis=1), fps=30.0,
                num_frames=frames, label=label, class_name=video_id.split("/")[0]))
    torch.manual_seed(0)
    config = ScorerConfig(feature_dim=DIM, channels=16, mem_size=4, head_hidden=8, se_window=3)
    save_checkpoint(root / "best.pt", Checkpoint(
        scorer_config=config, state_dict=build_scorer(config).state_dict(),
        feature_identity=IDENTITY, val_video_threshold=0.5))
    return root


def test_anomalous_videos_without_annotation_rows_are_named(run, shared_data, caplog):
    annotations = (shared_data / "ucf_crime" / "meta"
                   / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    config = EvalConfig(checkpoint=str(run / "best.pt"), features=(str(run / "store"),),
                        annotations=str(annotations), device="cpu")
    with caplog.at_level("WARNING", logger="memtsm.evaluate.protocol"):
        result = evaluate(config)
    assert result.anomalous_without_annotation == {"Assault/Assault018_x264": 361}
    total = sum(frames for _, frames in VIDEOS.values())
    assert "1 video(s) labelled anomalous in the feature stores have no row" in caplog.text
    assert "Assault/Assault018_x264" in caplog.text
    assert f"affects 361 of the {total} frames" in caplog.text
    assert "Normal_Videos_003" not in caplog.text  # unannotated normal videos are as expected
    assert result.to_json_dict()["anomalous_without_annotation"] == {
        "Assault/Assault018_x264": 361}
    assert result.metrics.n_anomalous_frames == 1245 - 1005 + 1  # Assault018 counted normal

    from memtsm.cli import app

    out = CliRunner().invoke(app, ["evaluate", "-c", str(run / "best.pt"), "-f",
                                   str(run / "store"), "-a", str(annotations), "--device",
                                   "cpu", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "WARNING" in out.output and "Assault/Assault018_x264" in out.output


def test_format_errors_name_the_flag(tmp_path):
    path = tmp_path / "ann.txt"
    path.write_text("just some words\n")
    with pytest.raises(ValueError, match="pass --annotation-format \\(one of ucf-crime, ucsd"):
        load_annotations(path)
    with pytest.raises(ValueError, match="^--annotation-format: unknown annotation format"):
        load_annotations(path, format="xml")  # type: ignore[arg-type]


def test_threshold_text_has_no_doubled_brackets():
    for text in (protocol.__doc__, Path(protocol.__file__).read_text()):
        assert "during training)\nduring training" not in text
    depth = deepest = 0
    for char in protocol.__doc__:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
        assert depth >= 0
    assert depth == 0 and deepest == 1
