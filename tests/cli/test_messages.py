"""What the commands print (issue "first hour without surprises", item 16.7-16.11).

One line per epoch, one message per failure, a flag named in every user error (exit 2, no
traceback), the threshold named for what it is, and `score --fps` for frame folders.
"""

from __future__ import annotations

import json

import pytest
from _cli_data import tiny_train_flags, train_tiny, write_bags
from _videos import moving_frames, write_video
from typer.testing import CliRunner

from memtsm.cli import app


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_usage_error(result, *words):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.output.count("error: ") == 1, result.output
    for word in words:
        assert word in result.output, (word, result.output)


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    store = write_bags(root / "store")
    return store, train_tiny(store, root / "run")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """4 normal and 4 'running' videos, their XFeat store and a checkpoint trained on it."""
    from memtsm.extract import ExtractConfig, FeatureSpec, extract
    from memtsm.train.config import ScorerOptions, TrainConfig
    from memtsm.train.loop import train

    root = tmp_path_factory.mktemp("videos")
    for i in range(4):
        for folder, name, speed in (("Normal", f"Normal_{i}", 1), ("Running", f"Running{i}", 6)):
            (root / "videos" / folder).mkdir(parents=True, exist_ok=True)
            write_video(root / "videos" / folder / name, moving_frames(32, seed=i, speed=speed))
    extract([root / "videos"], root / "store", ExtractConfig(spec=FeatureSpec(long_side=64)))
    run_dir = train(TrainConfig(features=(str(root / "store"),), out=str(root / "run"),
                                epochs=1, steps=3, val_fraction=0.25, device="cpu",
                                scorer=ScorerOptions(channels=16, mem_size=8)))
    return root, run_dir.best_checkpoint


def frame_folder(path, frames=20):
    from PIL import Image

    path.mkdir(parents=True)
    for i, frame in enumerate(moving_frames(frames, seed=5)):
        Image.fromarray(frame).save(path / f"{i:03d}.png")
    return path


# -- 16.7: one line per epoch ------------------------------------------------------------------


def test_each_epoch_is_printed_once_and_yaml_stays_unless_a_flag_is_given(bags, tmp_path):
    store, _ = bags
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 2\nseed: 3\n")
    result = run("train", "-f", store, "-o", tmp_path / "run", "--config", config,
                 *tiny_train_flags())
    assert result.exit_code == 0, result.output
    for epoch in (1, 2):
        assert result.output.count(f"epoch {epoch}/2") == 1, result.output
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # the YAML's epochs, not the default shown by --help
    assert "seed: 3" in (tmp_path / "run" / "config.yaml").read_text()


# -- 16.8: score --fps -------------------------------------------------------------------------


def test_score_fps_is_the_frame_rate_of_frame_folders(videos, tmp_path):
    root, checkpoint = videos
    folder = frame_folder(tmp_path / "frames")
    out = tmp_path / "s.json"
    result = run("score", folder, "-c", checkpoint, "--fps", "10", "--json", out, "--quiet")
    assert result.exit_code == 0, result.output
    [video] = json.loads(out.read_text())["videos"]
    assert video["fps"] == 10.0


# -- 16.9: user errors name the flag, exit 2, no traceback -------------------------------------


def test_plot_curves_without_anomalous_frames_is_a_usage_error(bags, tmp_path):
    store, checkpoint = bags
    annotations = tmp_path / "gt.csv"
    annotations.write_text("video,start_frame,end_frame\nv000,-1,-1\n")
    result = run("evaluate", "-c", checkpoint, "-f", store, "-a", annotations,
                 "--plot-curves", tmp_path / "curves", "--quiet")
    assert_usage_error(result, f"--plot-curves {tmp_path / 'curves'}:", "anomalous frames")


def test_save_features_into_a_store_of_another_configuration(videos, bags):
    root, checkpoint = videos
    other, _ = bags
    result = run("score", root / "videos" / "Normal" / "Normal_0.mp4", "-c", checkpoint,
                 "--save-features", other, "--quiet")
    assert_usage_error(result, f"--save-features {other}:")


# -- 16.10: the threshold is named for what it is ------------------------------------------------


def test_threshold_is_the_video_level_validation_threshold(bags, videos, tmp_path):
    store, checkpoint = bags
    annotations = tmp_path / "gt.csv"
    annotations.write_text("video,start_frame,end_frame\nv008,1,64\n")
    result = run("evaluate", "-c", checkpoint, "-f", store, "-a", annotations, "--quiet")
    assert result.exit_code == 0, result.output
    assert "video-level validation threshold)" in result.output
    assert "((" not in result.output and "))" not in result.output
    result = run("train", "-f", store, "-o", tmp_path / "run", "--epochs", "1",
                 *tiny_train_flags(), "--quiet")
    assert result.exit_code == 0, result.output
    assert "video-level validation threshold" in result.output
    root, raw_checkpoint = videos
    result = run("score", root / "videos" / "Normal" / "Normal_0.mp4", "-c", raw_checkpoint)
    assert result.exit_code == 0, result.output
    assert "video-level validation threshold" in result.output


# -- 16.11: extract's summary ------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True])
def test_each_failure_is_printed_once(videos, tmp_path, quiet):
    root, _ = videos
    inputs = tmp_path / "in"
    (inputs / "Normal").mkdir(parents=True)
    (inputs / "Normal" / "broken.mp4").write_bytes(b"\x00garbage" * 100)
    write_video(inputs / "Normal" / "ok", moving_frames(16))
    result = run("extract", inputs, "-o", tmp_path / "store", "--long-side", "64",
                 *(["--quiet"] if quiet else []))
    assert result.exit_code == 1, result.output
    assert result.output.count("broken.mp4") == 1, result.output
    assert "failed 1" in result.output


def test_frame_folders_are_not_reported_as_decoded_by_pyav(tmp_path):
    folder = frame_folder(tmp_path / "Normal_frames")
    result = run("extract", folder, "-o", tmp_path / "store", "--long-side", "64",
                 "--decoder", "pyav", "--quiet")
    assert result.exit_code == 0, result.output
    assert "decoder pyav" not in result.output
    assert "frame folders read as images" in result.output
