"""Video ids that never collide, and labels whose rule is visible (extract log, store, info)."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest
from _videos import moving_frames, write_video
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.extract import ExtractConfig, FeatureSpec, FeatureStore, extract
from memtsm.extract.external import find_feature_files, import_features
from memtsm.extract.sources import (
    discover_videos,
    infer_label,
    read_labels_csv,
    resolve_label,
    video_key,
)

SMALL = ExtractConfig(spec=FeatureSpec(long_side=64))
LEGACY = Path(__file__).parents[1] / "data" / "legacy" / "store-v0.1.0"


def _warnings(caplog, logger="memtsm.extract.sources"):
    return [r for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]


def test_one_file_passed_twice_is_one_video(tmp_path, caplog):
    folder = tmp_path / "videos"
    folder.mkdir()
    clip = write_video(folder / "clip", moving_frames(16), codec="h264")
    (folder / "link.mp4").symlink_to(clip)
    with caplog.at_level(logging.INFO, logger="memtsm.extract.sources"):
        assert [(s.video_id, s.path) for s in discover_videos([clip, clip])] == [("clip", clip)]
        # the folder and a file inside it, and a link to that file: still one video
        sources = discover_videos([folder, clip])
    assert [(s.video_id, s.path) for s in sources] == [("clip", clip)]
    assert not _warnings(caplog)


def test_two_containers_with_one_stem_keep_their_extension(tmp_path, caplog):
    folder = tmp_path / "videos" / "Assault"
    folder.mkdir(parents=True)
    avi = write_video(folder / "clip.avi", moving_frames(16, seed=1), codec="mjpeg")
    mkv = write_video(folder / "clip.mkv", moving_frames(20, seed=2), codec="h264")
    alone = write_video(folder / "other", moving_frames(16, seed=3), codec="h264")
    out = tmp_path / "features"
    with caplog.at_level(logging.INFO):
        summary = extract([tmp_path / "videos", avi], out, SMALL)  # avi also passed directly
    assert summary.stored == ["Assault/clip.avi", "Assault/clip.mkv", "Assault/other"]
    assert not summary.failures
    store = FeatureStore(out)
    assert store.read("Assault/clip.avi").source == str(avi)
    assert store.read("Assault/clip.mkv").num_frames == 20 and str(mkv).endswith(".mkv")
    assert store.read("Assault/other").source == str(alone)
    (warning,) = _warnings(caplog)  # once, naming both files
    assert str(avi) in warning.getMessage() and str(mkv) in warning.getMessage()
    # the same inputs give the same ids (a rerun skips them all)
    assert [s.video_id for s in discover_videos([tmp_path / "videos"])] == summary.stored


def test_ids_still_equal_take_parent_folders_then_a_number(tmp_path, caplog):
    paths = []
    for parent in ("a", "b"):
        (tmp_path / parent).mkdir()
        paths.append(write_video(tmp_path / parent / "cam", moving_frames(16), codec="h264"))
    with caplog.at_level(logging.WARNING):
        sources = discover_videos(paths)
    assert [(s.video_id, s.path) for s in sources] == [("a/cam.mp4", paths[0]),
                                                        ("b/cam.mp4", paths[1])]
    assert len(_warnings(caplog)) == 1
    # a new id that is already another video's: a number, in input order, still no failure
    other = tmp_path / "tree" / "a" / "cam.mp4.avi"  # id a/cam.mp4 inside tree/
    other.parent.mkdir(parents=True)
    shutil.copy(paths[0], other)
    sources = discover_videos([tmp_path / "tree", *paths])
    assert [(s.video_id, s.path) for s in sources] == [
        ("a/cam.mp4", other), ("a/cam.mp4~2", paths[0]), ("b/cam.mp4", paths[1])]
    assert sources == discover_videos([tmp_path / "tree", *paths])  # deterministic


def test_annotations_and_label_csv_still_match_ids_that_kept_their_extension(tmp_path):
    assert video_key("Assault/Assault018_x264") == video_key("Assault/Assault018_x264.avi") \
        == "Assault018_x264"
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,class\nclip,0,Normal\n")
    overrides = read_labels_csv(labels)
    for video_id in ("cams/clip", "cams/clip.avi", "cams/clip.mkv"):
        assert resolve_label(video_id, overrides).rule == "labels-csv"
    assert resolve_label("Fighting/Fighting001_x264.avi").class_name == "Fighting"


def test_feature_files_with_one_stem_are_all_imported(shared_data, tmp_path, caplog):
    ucf = shared_data / "ucf_crime"
    source = ucf / "c3d_vantage" / "Fighting" / "Fighting006_x264.csv.gz"
    inputs = tmp_path / "files" / "Fighting"
    inputs.mkdir(parents=True)
    shutil.copy(source, inputs / source.name)
    (inputs / "Fighting006_x264.csv").write_bytes(gzip.decompress(source.read_bytes()))
    found = find_feature_files([tmp_path / "files", inputs / source.name], "csv")
    assert [video_id for video_id, _ in found] == ["Fighting/Fighting006_x264.csv",
                                                   "Fighting/Fighting006_x264.csv.gz"]
    with caplog.at_level(logging.WARNING):
        summary = import_features([tmp_path / "files"], tmp_path / "store", "csv",
                                  frame_counts=ucf / "meta" / "Train_Annotation.txt")
    assert not summary.failures and len(summary.imported) == 2
    store = FeatureStore(tmp_path / "store")
    first, second = (store.read(video_id) for video_id in summary.imported)
    assert first.extra["num_frames_source"] == "frame-counts"  # still matched as the video
    assert first.num_frames == second.num_frames and first.class_name == "Fighting"
    assert (first.features == second.features).all()


@pytest.mark.parametrize(("video_id", "expected"), [
    ("Assault/Assault018_x264", (1, "Assault", "class-folder")),
    ("Anomaly-Videos-Part-1/Abuse/Abuse001_x264", (1, "Abuse", "class-folder")),
    ("Normal_Videos_event/Normal_Videos_event_001", (0, "Normal", "normal-name")),
    ("Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264", (0, "Normal", "normal-name")),
    ("Assault018_x264", (1, "Assault", "ucf-name")),
    ("train/Explosion001_x264", (1, "Explosion", "ucf-name")),
    ("Running/Running003", (1, "Running", "class-folder")),
    ("anomalies/cam1", (1, "anomalies", "class-folder")),
    ("Fighting/x", (1, "Fighting", "class-folder")),
    # no evidence of an anomaly: unlabelled, not "class sub dir, label 1"
    ("my footage/sub dir/Explosion 001 (copy)", (None, "", "none")),
    ("cameras/clip1", (None, "", "none")),
    ("video001", (None, "", "none")),
])
def test_label_rules(video_id, expected):
    label = infer_label(video_id)
    assert (label.label, label.class_name, label.rule) == expected


def test_extract_logs_a_label_summary_and_info_shows_the_rules(tmp_path, caplog):
    root = tmp_path / "my footage"
    for rel, seed in (("Assault/Assault001_x264", 0), ("Assault/Assault002_x264", 1),
                      ("Normal/cam", 2), ("sub dir/Explosion 001 (copy)", 3)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / rel, moving_frames(16, seed=seed), codec="h264")
    out = tmp_path / "features"
    with caplog.at_level(logging.INFO, logger="memtsm.extract.runner"):
        extract([root], out, SMALL)
    summaries = [r.getMessage() for r in caplog.records
                 if r.name == "memtsm.extract.runner" and r.getMessage().startswith("labels of")]
    assert summaries == ["labels of 4 videos: anomalous Assault 2 (rule class-folder); normal 1 "
                         "(rule normal-name); unlabelled 1 (no rule matched: sub dir/Explosion "
                         "001 (copy); set them with --labels)"]
    store = FeatureStore(out)
    assert store.entry("Normal/cam").label_rule == "normal-name"
    assert store.read("sub dir/Explosion 001 (copy)").label is None
    assert store.read("Assault/Assault001_x264").label_rule == "class-folder"
    info = CliRunner().invoke(app, ["features", "info", str(out), "--videos"])
    assert info.exit_code == 0, info.output
    assert "label rules: anomalous Assault 2 (rule class-folder); normal 1" in info.output
    assert "rule=normal-name" in info.output and "rule=none" in info.output


def test_info_of_a_store_without_recorded_rules():
    store = FeatureStore(LEGACY)
    assert {e.label_rule for e in store.entries} == {""}
    assert store.read("Fighting/Fighting001_x264").label_rule == ""
    info = CliRunner().invoke(app, ["features", "info", str(LEGACY), "--videos"])
    assert info.exit_code == 0, info.output
    assert "(rule not recorded)" in info.output and "rule=not recorded" in info.output
