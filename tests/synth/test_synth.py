"""Synthetic surveillance videos: determinism, event windows, visibility, encoding, dataset."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from memtsm.synth import (
    EVENT_KINDS,
    KIND_CLASSES,
    TEMPORAL_ANNOTATION_FILE,
    TEST_NORMAL_DIR,
    TRAIN_NORMAL_DIR,
    SynthConfig,
    make_dataset,
    render_video,
    write_video,
)

SHORT = SynthConfig(min_frames=48, max_frames=64)
# One walker (the event actor, where the event has one) and no distractors: what changes inside
# the event window is the event.
SPARSE = SynthConfig(n_people=(1, 1), distractor_prob=0.0)
MOVING_KINDS = ("running", "fighting", "explosion", "scatter", "thrown_object")


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _fast_motion(frames: np.ndarray, threshold: int = 30) -> np.ndarray:
    """Per frame (without the first and last): share of pixels that differ from both neighbours.

    A pixel a fast mover passes over differs from the frame before and the frame after; the
    edges of slow walkers mostly do not.
    """
    x = frames.astype(np.int16)
    before = np.abs(x[1:-1] - x[:-2]).max(axis=-1)
    after = np.abs(x[1:-1] - x[2:]).max(axis=-1)
    return (np.minimum(before, after) > threshold).mean(axis=(1, 2))


def _foreground_box(frame: np.ndarray, background: np.ndarray) -> tuple[int, int]:
    """(width, height) of the pixels that differ from the background."""
    mask = np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=-1) > 20
    ys, xs = np.nonzero(mask)
    assert xs.size, "nothing in front of the background"
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_same_seed_same_video_and_different_seed_different_video():
    first = render_video(SHORT, "fighting", seed=11)
    again = render_video(SHORT, "fighting", seed=11)
    other = render_video(SHORT, "fighting", seed=12)
    assert first.frames.dtype == np.uint8 and first.frames.ndim == 4
    np.testing.assert_array_equal(first.frames, again.frames)
    assert first.event == again.event
    assert first.frames.shape != other.frames.shape or not np.array_equal(first.frames,
                                                                          other.frames)


def test_seed_defaults_to_the_config_seed():
    config = SynthConfig(min_frames=40, max_frames=40, seed=5)
    np.testing.assert_array_equal(render_video(config).frames, render_video(config, seed=5).frames)


def test_normal_video_has_no_event():
    video = render_video(SHORT, None, seed=3)
    assert video.event is None and video.kind is None
    assert video.class_name == "Normal"
    assert SHORT.min_frames <= video.num_frames <= SHORT.max_frames
    assert video.frames.shape[1:] == (SHORT.height, SHORT.width, 3)
    assert not video.labels.any()


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_anomalous_video_records_a_bounded_event(kind):
    for seed in (0, 1):
        video = render_video(SHORT, kind, seed=seed)
        assert video.kind == kind and video.class_name == KIND_CLASSES[kind]
        start, end = video.event
        assert 0 < start < end <= video.num_frames
        assert video.labels.sum() == end - start
        assert video.labels[start] == 1 and video.labels[start - 1] == 0


@pytest.mark.parametrize("kind", MOVING_KINDS)
def test_event_adds_fast_motion_inside_its_window(kind):
    for seed in (0, 1, 2):
        video = render_video(SPARSE, kind, seed=seed)
        energy = _fast_motion(video.frames)
        inside = video.labels[1:-1].astype(bool)
        ratio = energy[inside].mean() / max(energy[~inside].mean(), 1e-6)
        assert ratio > 1.5, f"{kind} seed {seed}: inside/outside fast motion {ratio:.2f}"


def test_event_is_the_difference_from_the_same_seed_normal_scene():
    # Scenes that share a seed share the walkers; with a group scattering on top, the event
    # window holds far more motion than the same frames of the normal video.
    normal = render_video(SHORT, None, seed=4)
    scatter = render_video(SHORT, "scatter", seed=4)
    assert normal.num_frames == scatter.num_frames
    np.testing.assert_array_equal(normal.background, scatter.background)
    start, end = scatter.event
    energy_event = _fast_motion(scatter.frames)[start - 1:end - 1].mean()
    energy_normal = _fast_motion(normal.frames)[start - 1:end - 1].mean()
    assert energy_event > 2 * energy_normal


@pytest.mark.parametrize("size", [(160, 120), (320, 240)])
def test_falling_person_turns_horizontal(size):
    width, height = size
    config = SynthConfig(width=width, height=height, n_people=(1, 1), distractor_prob=0.0,
                         noise=0.0, lighting_drift=0.0)
    for seed in (0, 1):
        video = render_video(config, "falling", seed=seed)
        start, end = video.event
        assert video.frames.shape[1:3] == (height, width)
        for t in range(start - 4, start):  # upright while walking in
            w, h = _foreground_box(video.frames[t], video.background)
            assert h > 1.5 * w, f"frame {t}: {w}x{h}"
        third = (end - start) // 3
        lying = [np.divide(*_foreground_box(video.frames[t], video.background))
                 for t in range(start + third, end - third)]
        assert np.median(lying) > 1.5, f"seed {seed}: width/height {np.median(lying):.2f}"
        # The fall itself moves many pixels: more than walking did just before it.
        diff = np.abs(np.diff(video.frames.astype(np.int16), axis=0)).max(axis=-1) > 20
        changed = diff.sum(axis=(1, 2))
        fall = changed[start:start + max(4, int(0.35 * config.fps))].mean()
        walk = changed[start - 10:start - 1].mean()
        assert fall > 1.5 * walk


def test_write_video_h264_round_trip(tmp_path):
    video = render_video(SHORT, "running", seed=2)
    path = write_video(video.frames, tmp_path / "clip", fps=SHORT.fps)
    assert path.suffix == ".mp4" and path.is_file()
    assert not list(tmp_path.glob(".*partial*"))
    decoded = _decode(path)
    assert decoded.shape == video.frames.shape
    error = np.abs(decoded.astype(np.int16) - video.frames.astype(np.int16)).mean()
    assert error < 8, error
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert round(float(stream.average_rate)) == SHORT.fps


def test_write_video_vp9_webm(tmp_path):
    video = render_video(SynthConfig(min_frames=32, max_frames=32), "explosion", seed=1)
    path = write_video(video.frames, tmp_path / "clip.webm", fps=25, codec="vp9")
    decoded = _decode(path)
    assert decoded.shape == video.frames.shape
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
    assert np.abs(decoded.astype(np.int16) - video.frames.astype(np.int16)).mean() < 10


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="codec"):
        write_video(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "a.mp4", codec="mpeg9")
    with pytest.raises(ValueError, match="even"):
        write_video(np.zeros((2, 15, 16, 3), np.uint8), tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="uint8"):
        write_video(np.zeros((2, 16, 16, 3), np.float32), tmp_path / "a.mp4")


def test_config_validation():
    with pytest.raises(ValueError, match="frame size"):
        SynthConfig(width=161)
    with pytest.raises(ValueError, match="min_frames"):
        SynthConfig(min_frames=100, max_frames=50)
    with pytest.raises(ValueError, match="n_people"):
        SynthConfig(n_people=(3, 2))
    with pytest.raises(ValueError, match="unknown event kind"):
        SynthConfig(event_kinds=("running", "juggling"))
    with pytest.raises(ValueError, match="unknown event kind"):
        render_video(SHORT, "juggling")


def _read_rows(path: Path, sep: str | None) -> list[list[str]]:
    return [line.split(sep) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_make_dataset_layout_and_annotations(tmp_path):
    config = SynthConfig(min_frames=40, max_frames=56)
    kinds = len(EVENT_KINDS)
    paths = make_dataset(tmp_path / "ds", n_train_normal=2, n_train_anomalous=kinds,
                         n_test_normal=3, n_test_anomalous=kinds + 1, config=config, seed=9)
    root = tmp_path / "ds"
    assert paths.root == root and paths.temporal_annotation == root / TEMPORAL_ANNOTATION_FILE
    assert len(paths.train_videos) == 2 + kinds and len(paths.test_videos) == 3 + kinds + 1
    for split, normal_dir in (("train", TRAIN_NORMAL_DIR), ("test", TEST_NORMAL_DIR)):
        videos = [v for v in paths.videos if v.split == split]
        assert {v.kind for v in videos} == set(EVENT_KINDS) | {None}  # every kind appears
        for v in videos:
            assert v.path.is_file()
            folder = normal_dir if v.kind is None else KIND_CLASSES[v.kind]
            prefix = "Normal_Videos" if v.kind is None else KIND_CLASSES[v.kind]
            assert v.path.parent == root / split / folder
            assert re.fullmatch(rf"{prefix}\d{{3}}_x264\.mp4", v.path.name), v.path.name
    names = [v.path.name for v in paths.videos]
    assert len(set(names)) == len(names)  # unique across splits

    # Official temporal annotation: test videos only, double-space separated.
    lines = paths.temporal_annotation.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(paths.test_videos)
    by_name = {v.path.name: v for v in paths.test_videos}
    for line in lines:
        fields = line.split("  ")
        assert len(fields) == 6, line
        name, class_name, s1, e1, s2, e2 = fields
        video = by_name.pop(name)
        assert class_name == video.class_name
        assert (s2, e2) == ("-1", "-1")
        if video.kind is None:
            assert class_name == "Normal" and (s1, e1) == ("-1", "-1")
        else:
            start, end = video.event
            assert (int(s1), int(e1)) == (start + 1, end)  # 1-based inclusive
    assert not by_name

    # Class/Name n_frames Class s1 e1 s2 e2, with the decoded frame counts.
    for path, split in ((paths.test_annotation, "test"), (paths.train_annotation, "train")):
        rows = _read_rows(path, None)
        videos = {v.relative_name: v for v in paths.videos if v.split == split}
        assert len(rows) == len(videos)
        for rel, count, class_name, s1, e1, s2, e2 in rows:
            video = videos.pop(rel)
            assert int(count) == video.num_frames == len(_decode(root / split / rel))
            assert class_name == video.class_name and (s2, e2) == ("-1", "-1")
            expected = (-1, -1) if video.event is None else (video.event[0] + 1, video.event[1])
            assert (int(s1), int(e1)) == expected
        assert not videos


def test_make_dataset_annotations_read_by_the_pipeline_parser(tmp_path):
    from memtsm.evaluate.annotations import frame_labels, parse_ucf_crime
    from memtsm.extract.sources import discover_videos, infer_label

    config = SynthConfig(min_frames=32, max_frames=40, event_kinds=("running", "explosion"))
    paths = make_dataset(tmp_path, n_train_normal=1, n_train_anomalous=2, n_test_normal=1,
                         n_test_anomalous=2, config=config, seed=1)
    annotations = parse_ucf_crime(paths.temporal_annotation, frame_counts=paths.test_annotation)
    for video in paths.test_videos:
        labels = frame_labels(annotations, video.path.stem, video.num_frames)
        expected = np.zeros(video.num_frames, np.int8)
        if video.event is not None:
            expected[video.event[0]:video.event[1]] = 1
        np.testing.assert_array_equal(labels, expected)
    sources = discover_videos([paths.root])
    assert len(sources) == len(paths.videos)
    labels = {Path(s.video_id).name: infer_label(s.video_id) for s in sources}
    for video in paths.videos:
        assert labels[video.path.stem].label == (0 if video.kind is None else 1)
        assert labels[video.path.stem].class_name == video.class_name


def test_make_dataset_is_deterministic_and_refuses_to_overwrite(tmp_path):
    config = SynthConfig(min_frames=32, max_frames=40)
    first = make_dataset(tmp_path / "a", 1, 1, 1, 1, config=config, seed=3)
    second = make_dataset(tmp_path / "b", 1, 1, 1, 1, config=config, seed=3)
    assert [(v.num_frames, v.event, v.kind) for v in first.videos] == \
        [(v.num_frames, v.event, v.kind) for v in second.videos]
    np.testing.assert_array_equal(_decode(first.videos[0].path), _decode(second.videos[0].path))
    with pytest.raises(FileExistsError):
        make_dataset(tmp_path / "a", 1, 1, 1, 1, config=config, seed=3)
    again = make_dataset(tmp_path / "a", 0, 1, 1, 0, config=config, seed=4, overwrite=True)
    assert len(list((tmp_path / "a").rglob("*.mp4"))) == len(again.videos) == 2


def test_write_video_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    import memtsm.synth.render

    video = render_video(SHORT, "running", seed=2)
    path = write_video(video.frames, tmp_path / "clip.mp4", fps=SHORT.fps)
    before = path.read_bytes()

    def fail(frames, partial, *args):
        partial.write_bytes(b"half a video")
        raise RuntimeError("encoder died")

    monkeypatch.setattr(memtsm.synth.render, "encode_frames", fail)
    with pytest.raises(RuntimeError, match="encoder died"):
        write_video(video.frames, path, fps=SHORT.fps)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, memtsm.synth\n"
            "heavy = [m for m in ('av', 'torch', 'h5py') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
