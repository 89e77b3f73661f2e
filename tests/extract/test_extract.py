"""`memtsm extract` end to end: real decoders, real XFeat weights, real HDF5 files."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _signals import default_sigint
from _videos import moving_frames, write_video
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.extract import ExtractConfig, FeatureSpec, FeatureStore, extract
from memtsm.extract.verify import verify_store

SMALL = ["--long-side", "64", "--quiet"]


@pytest.fixture()
def video_tree(tmp_path):
    """UCF-Crime-like tree: class folders, a Normal folder, two videos named x in two folders."""
    root = tmp_path / "videos"
    for folder, name, seed, frames in (("Assault", "Assault001_x264", 0, 40),
                                       ("Assault", "x", 1, 20),
                                       ("Fighting", "x", 2, 33),
                                       ("Training_Normal_Videos", "Normal_Videos001_x264", 3, 16)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        write_video(root / folder / name, moving_frames(frames, seed=seed), codec="h264")
    return root


def run_cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def test_extract_tree_ids_labels_and_clip_frames(video_tree, tmp_path):
    out = tmp_path / "features"
    result = run_cli("extract", video_tree, "--out", out, *SMALL)
    assert result.exit_code == 0, result.output
    store = FeatureStore(out)
    assert store.video_ids == ["Assault/Assault001_x264", "Assault/x", "Fighting/x",
                               "Training_Normal_Videos/Normal_Videos001_x264"]
    first = store.read("Assault/Assault001_x264")
    assert first.features.shape == (3, 128) and first.features.dtype == np.float16
    np.testing.assert_array_equal(first.clip_frames, [[0, 16], [16, 32], [32, 40]])
    assert first.last_clip_partial and first.num_frames == 40 and first.fps == pytest.approx(25)
    assert (first.label, first.class_name) == (1, "Assault")
    normal = store.read("Training_Normal_Videos/Normal_Videos001_x264")
    assert (normal.label, normal.class_name, normal.num_clips) == (0, "Normal", 1)
    assert not normal.last_clip_partial
    meta = json.loads((out / "store.json").read_text())
    assert meta["identity"]["feature_dim"] == 128 and meta["identity"]["layout"] == "max128"
    assert meta["identity"]["xfeat_weights_sha256"].startswith("0f5187fd")
    assert meta["provenance"]["kornia_version"]
    assert json.loads((out / "extract_config.json").read_text())["spec"]["long_side"] == 64


def test_bad_video_is_reported_and_the_rest_stored(video_tree, tmp_path):
    (video_tree / "Assault" / "broken.mp4").write_bytes(b"\x00garbage" * 100)
    (video_tree / "Assault" / "empty.avi").write_bytes(b"")
    out = tmp_path / "features"
    result = run_cli("extract", video_tree, "--out", out, *SMALL)
    assert result.exit_code == 1
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(f["video_id"] for f in failures) == ["Assault/broken", "Assault/empty"]
    assert all(f["source"] in f["error"] for f in failures)
    assert len(FeatureStore(out)) == 4


def test_rerun_skips_stored_videos_and_resumes_after_interruption(video_tree, tmp_path):
    out = tmp_path / "features"
    config = ExtractConfig(spec=FeatureSpec(long_side=64), commit_seconds=1e-9)  # shard per video
    first = extract([video_tree], out, config)
    assert len(first.stored) == 4 and len(FeatureStore(out).shards) == 4
    # Simulate a crash that lost the last two shards and left a half-written temporary one.
    lost = FeatureStore(out).shards[2:]
    lost_ids = {e.video_id for e in FeatureStore(out).entries if e.shard in {p.name for p in lost}}
    for shard in lost:
        shard.unlink()
    (out / "shard-00002.h5.tmp").write_bytes(b"half-written")
    again = extract([video_tree], out, config)
    assert set(again.stored) == lost_ids and len(again.skipped) == 2
    assert not list(out.glob("*.tmp"))
    third = extract([video_tree], out, config)
    assert third.stored == [] and len(third.skipped) == 4
    ids = FeatureStore(out).video_ids
    assert sorted(ids) == sorted(first.stored) and len(ids) == len(set(ids))


def test_different_config_into_same_store_is_refused(video_tree, tmp_path):
    out = tmp_path / "features"
    assert run_cli("extract", video_tree / "Fighting", "--out", out, *SMALL).exit_code == 0
    result = run_cli("extract", video_tree / "Fighting", "--out", out, *SMALL, "--clip-len", "8")
    assert result.exit_code == 2
    assert "different configuration" in result.output


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("extract", tmp_path / "missing", "--out", tmp_path / "o").exit_code == 2
    assert run_cli("extract", tmp_path, "--out", tmp_path / "o", "--frame-stride", "0",
                   "--quiet").exit_code == 2


def test_frame_stride_and_labels_csv(video_tree, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,class\nFighting/x,0,Normal\n")
    out = tmp_path / "features"
    result = run_cli("extract", video_tree / "Fighting", video_tree / "Assault" / "x.mp4",
                     "--out", tmp_path / "both", "--frame-stride", "4", "--labels", labels,
                     *SMALL)
    # Two inputs -> id 'x' (the folder's video) and 'x' (the file): distinct files, so both are
    # stored, under ids that keep extension and parent folder; the labels CSV still matches.
    assert result.exit_code == 0, result.output
    both = FeatureStore(tmp_path / "both")
    assert both.video_ids == ["Assault/x.mp4", "Fighting/x.mp4"]
    assert both.entry("Fighting/x.mp4").label == 0 and both.entry("Assault/x.mp4").label == 1
    result = run_cli("extract", video_tree, "--out", out, "--frame-stride", "4",
                     "--labels", labels, *SMALL)
    assert result.exit_code == 0, result.output
    fighting = FeatureStore(out).read("Fighting/x")
    assert (fighting.label, fighting.class_name) == (0, "Normal")
    assert fighting.num_clips == 3


def test_real_ucf_clip_and_ped2_frames(ucf_videos, shared_data, tmp_path):
    out = tmp_path / "features"
    result = run_cli("extract", ucf_videos / "Assault018_x264.mp4",
                     shared_data / "ucsd_ped2" / "testing" / "02", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    store = FeatureStore(out)
    ucf = store.read("Assault018_x264")
    assert ucf.num_frames == 361 and ucf.num_clips == 23
    assert ucf.clip_frames[-1].tolist() == [352, 361]
    assert (ucf.width, ucf.height) == (320, 240)
    ped2 = store.read("02")
    assert ped2.num_frames == 180 and ped2.num_clips == 12 and ped2.label is None
    assert np.isfinite(ucf.features.astype(np.float32)).all()
    info = run_cli("features", "info", out, "--videos")
    assert info.exit_code == 0 and "Assault018_x264" in info.output and "videos: 2" in info.output


def _start_extract(root, out):
    cmd = [sys.executable, "-m", "memtsm", "extract", str(root), "--out", str(out),
           "--long-side", "64", "--commit-every", "0.001", "--quiet"]
    return subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def _stored_once(out) -> list[str]:
    """Ids in the store (every completed shard opens, no id twice), or [] before any shard."""
    if not list(out.glob("shard-*.h5")):
        return []
    store = FeatureStore(out)  # raises on an id stored twice
    assert verify_store(out).ok, verify_store(out).problems
    return store.video_ids


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_at_random_points_then_rerun_stores_every_video_once(tmp_path, seed):
    """SIGINT and SIGKILL at random moments (start-up, mid-video, mid-commit), then a rerun."""
    rng = random.Random(seed)
    root = tmp_path / "videos"
    root.mkdir()
    for i in range(8):
        write_video(root / f"Normal_{i}", moving_frames(48, seed=i), codec="h264")
    (root / "broken.mp4").write_bytes(b"\0" * 100)
    out = tmp_path / "features"
    stored = []
    for _ in range(3):
        proc = _start_extract(root, out)
        kill = rng.choice([signal.SIGINT, signal.SIGKILL])
        time.sleep(rng.uniform(0.5, 6.0))
        proc.send_signal(kill)
        _, stderr = proc.communicate(timeout=120)
        if kill == signal.SIGINT:  # Ctrl-C: commits the work done; 0/1 if it had finished
            assert proc.returncode in (0, 1, 130, -signal.SIGINT), stderr
        now = _stored_once(out)
        assert set(stored) <= set(now)  # nothing committed is ever lost
        stored = now
    proc = _start_extract(root, out)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # 1: the broken file failed, everything else stored
    assert sorted(_stored_once(out)) == [f"Normal_{i}" for i in range(8)]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video_id"] for f in failures] == ["broken"]
    assert not list(out.glob("*.tmp"))


def test_sigint_exits_130_and_keeps_what_was_done(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    for i in range(30):
        write_video(root / f"Normal_{i:02d}", moving_frames(48, seed=i), codec="h264")
    out = tmp_path / "features"
    proc = _start_extract(root, out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("shard-*.h5")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr.lower()
    done = _stored_once(out)
    assert 1 <= len(done) < 30


def test_video_list_selects_videos_and_reports_missing_ones(video_tree, tmp_path):
    listing = tmp_path / "Anomaly_Train.txt"
    listing.write_text("Assault/Assault001_x264.mp4\nFighting/x.mp4\nFighting/missing.mp4\n")
    out = tmp_path / "features"
    result = run_cli("extract", video_tree, "--out", out, "--video-list", listing, *SMALL)
    assert result.exit_code == 1
    assert FeatureStore(out).video_ids == ["Assault/Assault001_x264", "Fighting/x"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["video_id"] for f in failures] == ["Fighting/missing"]
    assert "listed but was not found" in failures[0]["error"]
