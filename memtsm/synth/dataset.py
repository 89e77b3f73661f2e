"""Writing a UCF-Crime style data set of rendered videos with the official annotation files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memtsm.runtime.files import atomic_write_text
from memtsm.synth.render import _CODECS, render_video, write_video
from memtsm.synth.scene import SynthConfig

TRAIN_NORMAL_DIR = "Training_Normal_Videos"
TEST_NORMAL_DIR = "Testing_Normal_Videos"
TEMPORAL_ANNOTATION_FILE = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
TEST_ANNOTATION_FILE = "Test_Annotation.txt"
TRAIN_ANNOTATION_FILE = "Train_Annotation.txt"


@dataclass(frozen=True)
class GeneratedVideo:
    """A video :func:`make_dataset` rendered and wrote, with its ground truth.

    Not to be confused with :class:`memtsm.extract.store.VideoRecord` (a video's stored features).

    Attributes:
        path: the video file.
        split: ``"train"`` or ``"test"``.
        class_name: ``Normal`` or the event class (``Running``...).
        kind: event kind, ``None`` for normal.
        num_frames: frame count.
        event: 0-based half-open ``(start, end)``, ``None`` for normal.
    """

    path: Path
    split: str
    class_name: str
    kind: str | None
    num_frames: int
    event: tuple[int, int] | None

    @property
    def relative_name(self) -> str:
        """``Class/Name.mp4`` (the folder within the split and the file name)."""
        return f"{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True)
class DatasetPaths:
    """What :func:`make_dataset` wrote.

    Attributes:
        root: the output folder.
        train_dir: ``root/train``.
        test_dir: ``root/test``.
        temporal_annotation: ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` (test videos,
            ``Name  Class  s1  e1  s2  e2``, 1-based inclusive frames, ``-1`` for none).
        test_annotation: ``Test_Annotation.txt`` (``Class/Name n_frames Class s1 e1 s2 e2``).
        train_annotation: ``Train_Annotation.txt`` (same format, training videos).
        videos: every video written, train first.
    """

    root: Path
    train_dir: Path
    test_dir: Path
    temporal_annotation: Path
    test_annotation: Path
    train_annotation: Path
    videos: tuple[GeneratedVideo, ...]

    @property
    def train_videos(self) -> tuple[GeneratedVideo, ...]:
        """Training videos."""
        return tuple(v for v in self.videos if v.split == "train")

    @property
    def test_videos(self) -> tuple[GeneratedVideo, ...]:
        """Test videos."""
        return tuple(v for v in self.videos if v.split == "test")


def _video_seed(seed: int, split: int, anomalous: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, split, anomalous, index]).generate_state(1)[0])


def _interval_fields(event: tuple[int, int] | None) -> str:
    """``s1 e1 s2 e2`` in the UCF-Crime convention (1-based inclusive), ``-1`` for none."""
    if event is None:
        return "-1 -1 -1 -1"
    return f"{event[0] + 1} {event[1]} -1 -1"


def make_dataset(out_dir: Path | str, n_train_normal: int = 8, n_train_anomalous: int = 12,
                 n_test_normal: int = 6, n_test_anomalous: int = 6,
                 config: SynthConfig | None = None, seed: int | None = None,
                 codec: str = "h264", overwrite: bool = False) -> DatasetPaths:
    """Render and write a UCF-Crime style dataset.

    Layout (``NNN`` numbers are unique per class across both splits)::

        out_dir/train/<Class>/<Class>NNN_x264.mp4                  anomalous, Class = Running...
        out_dir/train/Training_Normal_Videos/Normal_VideosNNN_x264.mp4
        out_dir/test/<Class>/<Class>NNN_x264.mp4
        out_dir/test/Testing_Normal_Videos/Normal_VideosNNN_x264.mp4
        out_dir/Temporal_Anomaly_Annotation_for_Testing_Videos.txt   Name  Class  s1  e1  s2  e2
        out_dir/Test_Annotation.txt    Class/Name n_frames Class s1 e1 s2 e2  (test videos)
        out_dir/Train_Annotation.txt   the same for the training videos

    Frame numbers in the annotation files follow UCF-Crime: frame ``k`` is the ``k``-th frame
    counting from 1 and ``s..e`` is inclusive, so an event ``[start, end)`` is written
    ``start + 1  end``; ``-1`` marks no interval. Anomalous videos cycle through
    ``config.event_kinds`` (separately in each split), so every kind appears once a split has
    as many anomalous videos as kinds.

    Args:
        out_dir: output folder.
        n_train_normal: normal training videos.
        n_train_anomalous: anomalous training videos.
        n_test_normal: normal test videos.
        n_test_anomalous: anomalous test videos.
        config: look of the videos (default :class:`SynthConfig`).
        seed: dataset seed (default ``config.seed``); each video's seed derives from it and the
            video's split, label and index.
        codec: ``"h264"`` (``.mp4``) or ``"vp9"`` (``.webm``).
        overwrite: replace ``train/``, ``test/`` and the annotation files if they exist.

    Returns:
        The paths written and the videos' frame counts and events.

    Raises:
        FileExistsError: ``out_dir`` already holds a dataset and ``overwrite`` is false.
    """
    import shutil

    config = SynthConfig() if config is None else config
    seed = config.seed if seed is None else int(seed)
    counts = (n_train_normal, n_train_anomalous, n_test_normal, n_test_anomalous)
    if min(counts) < 0:
        raise ValueError(f"video counts must be >= 0, got {counts}")
    if codec not in _CODECS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {tuple(_CODECS)}")
    root = Path(out_dir)
    train_dir, test_dir = root / "train", root / "test"
    annotation_files = (root / TEMPORAL_ANNOTATION_FILE, root / TEST_ANNOTATION_FILE,
                        root / TRAIN_ANNOTATION_FILE)
    existing = [p for p in (train_dir, test_dir, *annotation_files) if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{root} already holds a dataset ({existing[0].name}); pass "
                                  "overwrite=True to replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    suffix = _CODECS[codec][1]
    numbers: dict[str, int] = {}
    records: list[GeneratedVideo] = []
    plan = (("train", 0, train_dir, TRAIN_NORMAL_DIR, n_train_normal, n_train_anomalous),
            ("test", 1, test_dir, TEST_NORMAL_DIR, n_test_normal, n_test_anomalous))
    for split, split_code, split_dir, normal_dir, n_normal, n_anomalous in plan:
        jobs: list[tuple[str | None, int, int]] = [
            (config.event_kinds[i % len(config.event_kinds)], 1, i) for i in range(n_anomalous)]
        jobs += [(None, 0, i) for i in range(n_normal)]
        for kind, anomalous, index in jobs:
            video = render_video(config, kind, _video_seed(seed, split_code, anomalous, index))
            class_name = video.class_name
            prefix = "Normal_Videos" if kind is None else class_name
            numbers[prefix] = numbers.get(prefix, 0) + 1
            folder = normal_dir if kind is None else class_name
            path = split_dir / folder / f"{prefix}{numbers[prefix]:03d}_x264{suffix}"
            write_video(video.frames, path, config.fps, codec)
            records.append(GeneratedVideo(path, split, class_name, kind, video.num_frames,
                                          video.event))
    tests = [r for r in records if r.split == "test"]
    temporal = [f"{r.path.name}  {r.class_name}  " + "  ".join(_interval_fields(r.event).split())
                for r in tests]
    root.mkdir(parents=True, exist_ok=True)
    _write_lines(annotation_files[0], temporal)
    for path, split in ((annotation_files[1], "test"), (annotation_files[2], "train")):
        _write_lines(path, [f"{r.relative_name} {r.num_frames} {r.class_name} "
                            f"{_interval_fields(r.event)}" for r in records if r.split == split])
    return DatasetPaths(root=root, train_dir=train_dir, test_dir=test_dir,
                        temporal_annotation=annotation_files[0],
                        test_annotation=annotation_files[1],
                        train_annotation=annotation_files[2], videos=tuple(records))


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))
