"""`memtsm demo --fast`: the whole pipeline runs and leaves every documented artefact."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memtsm.cli import app


def test_fast_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--fast", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["roc_auc"] <= 1.0 and summary["n_test_videos"] == 5
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["roc_auc"] == summary["roc_auc"]
    # from validation, stored in best.pt
    assert evaluation["val_video_threshold"] == summary["val_video_threshold"]
    scores = json.loads((out / "scores.json").read_text())
    [video] = scores["videos"]
    assert video["segments"][-1]["end_frame"] == video["num_frames"]
    for name in ("report.html", "scores.png", "run/best.pt", "run/metrics.jsonl",
                 "features/train/index.jsonl", "features/test/store.json", "curves/roc.png",
                 "videos/Temporal_Anomaly_Annotation_for_Testing_Videos.txt"):
        assert (out / name).is_file(), name
    assert "ROC-AUC" in result.output and "report.html" in result.output
