"""`--threads N` on the commands that compute: accepted, applied, logged, validated."""

from __future__ import annotations

import pytest
import torch
from _cli_data import tiny_train_flags, write_bags
from _videos import moving_frames, write_video
from typer.testing import CliRunner

from memtsm.cli import app

COMPUTING = ("extract", "import-features", "train", "sweep", "evaluate", "score", "demo")


@pytest.fixture(autouse=True)
def _restore_torch_threads(monkeypatch):
    previous = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(previous)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", COMPUTING)
def test_every_computing_command_has_threads(command):
    result = run(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "--threads" in result.output


def test_extract_with_one_thread(tmp_path):
    (tmp_path / "videos" / "Normal").mkdir(parents=True)
    write_video(tmp_path / "videos" / "Normal" / "Normal_0", moving_frames(20))
    result = run("extract", tmp_path / "videos", "--out", tmp_path / "store", "--device", "cpu",
                 "--long-side", "64", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "using 1 CPU threads (--threads)" in result.output
    assert "stored 1 videos" in result.output
    assert torch.get_num_threads() == 1


def test_train_with_threads_does_not_pass_it_to_the_train_config(tmp_path):
    store = write_bags(tmp_path / "store")
    result = run("train", "--features", store, "--out", tmp_path / "run", "--epochs", "1",
                 *tiny_train_flags(), "--threads", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("args, env, word", [
    (["--threads", "0"], {}, "--threads"),
    ([], {"OMP_NUM_THREADS": "lots"}, "OMP_NUM_THREADS"),
])
def test_a_bad_thread_count_is_a_usage_error(tmp_path, args, env, word, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "v", moving_frames(4))
    result = run("extract", tmp_path / "videos", "--out", tmp_path / "store", *args)
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and word in result.output
