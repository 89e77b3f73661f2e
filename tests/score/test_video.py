"""`memtsm score` / `score_video`: raw video -> per-segment scores, plots and reports."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from _videos import moving_frames, write_video
from typer.testing import CliRunner

from memtsm import score_video
from memtsm.cli import app
from memtsm.extract import ExtractConfig, FeatureSpec, extract
from memtsm.train.config import ScorerOptions, TrainConfig
from memtsm.train.loop import train

SEGMENT_KEYS = {"index", "start_frame", "end_frame", "start_time", "end_time", "score",
                "recon_error", "flagged"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small scorer trained on XFeat features of generated videos (fast motion = anomaly)."""
    root = tmp_path_factory.mktemp("score")
    videos = root / "videos"
    for i in range(4):
        for folder, name, speed in (("Normal", f"Normal_{i}", 1), ("Running", f"Running{i}", 6)):
            (videos / folder).mkdir(parents=True, exist_ok=True)
            write_video(videos / folder / name, moving_frames(40, seed=i, speed=speed))
    store = root / "features"
    extract([videos], store, ExtractConfig(spec=FeatureSpec(long_side=64)))
    run = train(TrainConfig(features=(str(store),), out=str(root / "run"), epochs=2,
                            steps=6, val_fraction=0.25, scorer=ScorerOptions(channels=32),
                            device="cpu"))
    test_video = write_video(root / "probe", moving_frames(70, seed=9, speed=4))
    return run.best_checkpoint, test_video, root


def test_score_video_api_segments_match_the_video(trained):
    checkpoint, video, _ = trained
    report = score_video(video, checkpoint)
    assert report.num_frames == 70 and report.fps == pytest.approx(25)
    assert [(s.start_frame, s.end_frame) for s in report.segments] == [
        (0, 16), (16, 32), (32, 48), (48, 64), (64, 70)]
    last = report.segments[-1]
    assert last.start_time == pytest.approx(64 / 25) and last.end_time == pytest.approx(70 / 25)
    assert all(0 < s.score < 1 and s.recon_error >= 0 for s in report.segments)
    assert all(s.flagged == (s.score >= report.val_video_threshold) for s in report.segments)
    again = score_video(video, checkpoint)
    assert [s.score for s in again.segments] == [s.score for s in report.segments]


def test_cli_outputs_equal_the_api(trained):
    checkpoint, video, root = trained
    out = root / "cli"
    out.mkdir(exist_ok=True)
    result = CliRunner().invoke(app, [
        "score", str(video), "--checkpoint", str(checkpoint), "--json", str(out / "s.json"),
        "--csv", str(out / "s.csv"), "--plot", str(out / "s.png"),
        "--report", str(out / "s.html")])
    assert result.exit_code == 0, result.output
    assert "probe" in result.output and "recon error" in result.output
    document = json.loads((out / "s.json").read_text())
    [entry] = document["videos"]
    assert {"video", "source", "fps", "num_frames", "val_video_threshold", "threshold",
            "segments"} <= set(entry)
    assert entry["threshold"] == entry["val_video_threshold"]  # deprecated alias
    assert all(set(s) == SEGMENT_KEYS for s in entry["segments"])
    api = score_video(video, checkpoint)
    np.testing.assert_allclose([s["score"] for s in entry["segments"]],
                               [s.score for s in api.segments], atol=1e-6)
    rows = list(csv.DictReader((out / "s.csv").open()))
    assert len(rows) == 5 and rows[0]["video"] == "probe"
    assert (out / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "s.html").read_text()
    assert html.count("data:image/png;base64,") >= 2  # the plot and thumbnails, inlined
    assert "http://" not in html and "https://" not in html  # opens without a network


def test_bad_video_is_reported_and_the_rest_scored(trained):
    checkpoint, video, root = trained
    folder = root / "batch"
    folder.mkdir(exist_ok=True)
    write_video(folder / "good", moving_frames(20))
    (folder / "bad.mp4").write_bytes(b"not a video")
    result = CliRunner().invoke(app, ["score", str(folder), "--checkpoint", str(checkpoint),
                                      "--json", str(root / "batch.json"), "--quiet"])
    assert result.exit_code == 1
    document = json.loads((root / "batch.json").read_text())
    assert [v["video"] for v in document["videos"]] == ["good"]
    assert "bad.mp4" in document["failures"]["bad"]


def test_checkpoint_of_imported_features_cannot_score_raw_video(trained, shared_data, tmp_path):
    from memtsm.extract.external import import_features

    _, video, _ = trained
    ucf = shared_data / "ucf_crime"
    store = tmp_path / "c3d"
    import_features([ucf / "c3d_sultani"], store, "sultani-txt",
                    frame_counts=ucf / "meta" / "Test_Annotation.txt")
    run = train(TrainConfig(features=(str(store),), out=str(tmp_path / "run"), epochs=1,
                            steps=2, val_fraction=0.5, scorer=ScorerOptions(channels=16),
                            device="cpu"))
    result = CliRunner().invoke(app, ["score", str(video), "--checkpoint",
                                      str(run.best_checkpoint)])
    assert result.exit_code == 2
    assert "cannot compute from raw video" in result.output


def test_nothing_to_score_is_an_error_naming_the_input(trained, tmp_path):
    checkpoint, _, _ = trained
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no videos or frame folders found under {empty}"):
        score_video(empty, checkpoint)
    result = CliRunner().invoke(app, ["score", str(empty), "--checkpoint", str(checkpoint)])
    assert result.exit_code == 2
    assert "no videos or frame folders found" in result.output


def test_ranges_read_the_same_in_table_html_and_json(trained, tmp_path):
    checkpoint, video, _ = trained
    result = CliRunner().invoke(app, [
        "score", str(video), "--checkpoint", str(checkpoint), "--json", str(tmp_path / "s.json"),
        "--report", str(tmp_path / "s.html")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    segments = json.loads((tmp_path / "s.json").read_text())["videos"][0]["segments"]
    first, last = segments[0], segments[-1]
    assert (first["start_frame"], first["end_frame"], last["end_frame"]) == (0, 16, 70)
    assert "[0, 16)" in result.output and "[64, 70)" in result.output  # end exclusive, as JSON
    assert "0-15" not in result.output
    assert "[start, end)" in result.output
    html = (tmp_path / "s.html").read_text()
    assert "frames [0, 16)" in html or "frames [64, 70)" in html
    assert "not ground truth" in html


def test_plot_legend_names_the_flagged_shading(trained):
    from memtsm.score.report import FLAGGED_LABEL, _figure

    checkpoint, video, _ = trained
    report = score_video(video, checkpoint)
    flagged = dataclasses.replace(report, segments=tuple(
        dataclasses.replace(s, flagged=i == 2) for i, s in enumerate(report.segments)))
    legend = [t.get_text() for t in _figure(flagged).axes[0].get_legend().get_texts()]
    assert FLAGGED_LABEL in legend
    calm = dataclasses.replace(report, segments=tuple(
        dataclasses.replace(s, flagged=False) for s in report.segments))
    legend = [t.get_text() for t in _figure(calm).axes[0].get_legend().get_texts()]
    assert FLAGGED_LABEL not in legend  # no shading, no entry
