"""The command line end to end on real C3D features: import -> train -> evaluate (JSON contract)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from memtsm.cli import app

JSON_KEYS = {"roc_auc", "pr_auc", "pr_auc_trapz", "f1", "precision", "recall", "threshold",
             "val_video_threshold",
             "n_videos", "n_frames", "videos"}
TEMPORAL = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def c3d_runs(tmp_path_factory, shared_data):
    """12 real training videos (6 normal, 6 anomalous) and the 10 official test videos."""
    ucf = shared_data / "ucf_crime"
    root = tmp_path_factory.mktemp("c3d")
    train_dir = root / "train_files"
    normal = sorted((ucf / "c3d_vantage" / "Training_Normal_Videos_Anaomaly").glob("*.csv.gz"))
    anomalous = sorted((ucf / "c3d_vantage" / "Fighting").glob("*.csv.gz"))
    for folder, files in (("Training_Normal_Videos_Anaomaly", normal[:6]),
                          ("Fighting", anomalous[:6])):
        (train_dir / folder).mkdir(parents=True)
        for file in files:
            shutil.copy(file, train_dir / folder / file.name)
    stores = {"train": root / "train", "test": root / "test"}
    result = run("import-features", train_dir, "--out", stores["train"], "--format", "csv",
                 "--frame-counts", ucf / "meta" / "Train_Annotation.txt", "--normalize", "l2")
    assert result.exit_code == 0, result.output
    result = run("import-features", ucf / "c3d_sultani", "--out", stores["test"], "--format",
                 "sultani-txt", "--frame-counts", ucf / "meta" / "Test_Annotation.txt",
                 "--normalize", "l2")
    assert result.exit_code == 0, result.output
    return stores, ucf, root


def test_train_then_evaluate_writes_the_documented_artefacts(c3d_runs):
    stores, ucf, root = c3d_runs
    run_dir = root / "run"
    result = run("train", "--features", stores["train"], "--out", run_dir, "--epochs", "2",
                 "--steps", "4", "--channels", "64", "--val-fraction", "0.34", "--quiet")
    assert result.exit_code == 0, result.output
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.pt", "curves.png"):
        assert (run_dir / name).is_file(), name
    checkpoint = torch.load(run_dir / "best.pt", weights_only=True)
    assert checkpoint["feature_identity"]["feature_dim"] == 4096
    assert checkpoint["scorer_config"]["channels"] == 64
    report = root / "eval.json"
    result = run("evaluate", "--checkpoint", run_dir / "best.pt", "--features", stores["test"],
                 "--annotations", ucf / "meta" / TEMPORAL,
                 "--frame-counts", ucf / "meta" / "Test_Annotation.txt", "--json", report,
                 "--plot-curves", root / "curves", "--quiet")
    assert result.exit_code == 0, result.output
    assert "frame ROC-AUC" in result.output
    data = json.loads(report.read_text())
    assert JSON_KEYS <= set(data)
    assert data["n_videos"] == 10 and data["n_frames"] == 12459
    assert data["val_video_threshold"] == data["threshold"] == pytest.approx(
        checkpoint["val_video_threshold"])
    video = data["videos"]["Explosion008_x264"]
    assert len(video["scores"]) == len(video["clip_frames"]) == 32
    assert video["clip_frames"][-1][1] == video["num_frames"]
    assert 0 <= data["roc_auc"] <= 1
    assert (root / "curves" / "roc.png").is_file() and (root / "curves" / "pr.png").is_file()


def test_evaluate_refuses_features_of_another_kind(c3d_runs, tmp_path):
    stores, ucf, root = c3d_runs
    run_dir = tmp_path / "run"
    assert run("train", "--features", stores["train"], "--out", run_dir, "--epochs", "1",
               "--steps", "2", "--channels", "32", "--val-fraction", "0.34",
               "--quiet").exit_code == 0
    other = tmp_path / "other"
    result = run("import-features", ucf / "c3d_sultani", "--out", other, "--format",
                 "sultani-txt", "--frame-counts", ucf / "meta" / "Test_Annotation.txt")
    assert result.exit_code == 0
    result = run("evaluate", "--checkpoint", run_dir / "best.pt", "--features", other,
                 "--annotations", ucf / "meta" / TEMPORAL)
    assert result.exit_code == 2
    assert "normalize" in result.output


def test_train_usage_errors_exit_2(c3d_runs, tmp_path):
    stores, _, _ = c3d_runs
    result = run("train", "--features", stores["train"], "--out", tmp_path / "r", "--lr", "-1")
    assert result.exit_code == 2 and "--lr" in result.output
    result = run("train", "--features", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert result.exit_code == 2
