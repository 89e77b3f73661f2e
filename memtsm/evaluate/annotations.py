"""Frame-level ground truth: parsers for anomaly annotation files and per-frame labels.

Every parser returns a :class:`FrameAnnotations`: for each annotated video, its anomalous
intervals as 0-based, half-open ``[start, end)`` frame ranges (frame 0 is the first decoded
frame), plus the video's class and frame count where the file gives them. A video listed with no
interval is annotated as entirely normal; a video that is not listed at all is also treated as
normal by :func:`frame_labels` (the caller decides whether that is acceptable, see
:func:`match_videos`).

Supported files (all malformed lines raise ``ValueError("<file>:<line>: ...")``):

* UCF-Crime ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: ``name class s1 e1 s2 e2``
  (``-1 -1`` for no event), and the same with the frame count after the name
  (``Class/Name.mp4 n_frames class s1 e1 s2 e2``, ``meta/Test_Annotation.txt``).
* UCSD ``.m`` ground truth (``TestVideoFile{end+1}.gt_frame = [61:180];``).
* CSV ``video,start_frame,end_frame[,class]``, one row per anomalous interval.
* XD-Violence ``annotations.txt``: ``name s1 e1 s2 e2 ...``, frame pairs read as 0-based and
  half-open (``gt[s:e] = 1`` in the published evaluation code of UR-DMU and VadCLIP); normal test
  videos (``..._label_A``) have no line.
* ShanghaiTech ``test_frame_mask/``: one ``<video>.npy`` per test video, a 0/1 value per frame;
  the mask's length is the video's frame count.

Annotation frame numbers follow the UCF-Crime files: frame ``k`` of an annotation is the
``k``-th decoded frame counting from 1, and ``start..end`` is inclusive, so an interval becomes
``[start - 1, end)``. This is what the official UCF-Crime evaluation does (MATLAB
``GT(start:end) = 1``). The often quoted 84,182 anomalous test frames come instead from reading
the numbers as 0-based and half-open (Python ``gt[start:end] = 1``), 156 frames fewer (one per
interval); :func:`parse_ucf_crime` offers that reading as ``convention="0-based-half-open"``.

Video names are matched to feature-store ids by exact id, or by :func:`video_key` (the last
path component with a video extension stripped): ``Assault018_x264.mp4`` matches the store id
``Assault/Assault018_x264``.

Length: over 500 lines because the parsers share the interval, clipping and matching
rules that make their ground truth agree; apart they could drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from memtsm.extract.sources import read_frame_counts, video_key

UcfConvention = Literal["1-based-inclusive", "0-based-half-open"]
AnnotationFormat = Literal["auto", "ucf-crime", "ucsd", "csv", "xd-violence", "shanghaitech"]
UCF_CONVENTIONS: tuple[str, ...] = ("1-based-inclusive", "0-based-half-open")
ANNOTATION_FORMATS: tuple[str, ...] = ("auto", "ucf-crime", "ucsd", "csv", "xd-violence",
                                       "shanghaitech")
#: Default UCSD id scheme: the n-th video of the ``.m`` file (counting from 1) is ``01``, ``02``...
#: (the folder names of ``ucsd_ped2/testing``); use ``"Test{:03d}"`` for the original layout.
UCSD_DEFAULT_NAME_FORMAT = "{:02d}"

Interval = tuple[int, int]


@dataclass(frozen=True)
class FrameAnnotations:
    """Anomalous frame intervals of annotated videos (treat as read-only).

    Attributes:
        intervals: video name -> sorted 0-based half-open ``[start, end)`` intervals
            (empty tuple: annotated, no anomaly).
        classes: video name -> class name, where the file gives one.
        num_frames: video name -> frame count, where known (intervals are clipped to it).
        source: file the annotations were read from (for messages).
    """

    intervals: dict[str, tuple[Interval, ...]]
    classes: dict[str, str] = field(default_factory=dict)
    num_frames: dict[str, int] = field(default_factory=dict)
    source: str = ""
    _by_key: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys: dict[str, list[str]] = {}
        for name, spans in self.intervals.items():
            keys.setdefault(video_key(name), []).append(name)
            count = self.num_frames.get(name)
            if count is not None and count <= 0:
                raise ValueError(f"{self.source}: {name}: frame count must be positive")
            for start, end in spans:
                if not 0 <= start < end:
                    raise ValueError(f"{self.source}: {name}: invalid interval [{start}, {end})")
                if count is not None and end > count:
                    raise ValueError(f"{self.source}: {name}: interval [{start}, {end}) runs past "
                                     f"the video's {count} frames")
        object.__setattr__(self, "_by_key", keys)

    @property
    def videos(self) -> list[str]:
        """Annotated video names, in file order."""
        return list(self.intervals)

    def __len__(self) -> int:
        return len(self.intervals)

    def find(self, video: str) -> str | None:
        """Annotation name of ``video`` (exact name, else by :func:`video_key`), or ``None``.

        A match by key also needs compatible folders: one name's folders must end the other's
        (``Assault018_x264.mp4`` ~ ``Assault/Assault018_x264``, ``Abuse/x`` ~ ``Videos/Abuse/x``),
        so ``training/05`` never takes the ground truth of ``testing/05``.

        Raises:
            ValueError: several annotated names share ``video``'s key and none equals it.
        """
        if video in self.intervals:
            return video
        names = [name for name in self._by_key.get(video_key(video), [])
                 if _folders_compatible(name, video)]
        if len(names) > 1:
            raise ValueError(f"{self.source}: {video!r} matches several annotated videos "
                             f"{names}; use the full name")
        return names[0] if names else None

    def anomalous_frame_count(self) -> int:
        """Number of anomalous frames over all videos (overlapping intervals counted once)."""
        return sum(int(_union_length(spans)) for spans in self.intervals.values())


def _folders(name: str) -> tuple[str, ...]:
    return PurePosixPath(name.replace("\\", "/")).parts[:-1]


def _folders_compatible(a: str, b: str) -> bool:
    """Whether the folder parts of two names agree: the shorter one ends the longer one."""
    fa, fb = _folders(a), _folders(b)
    shorter, longer = sorted((fa, fb), key=len)
    return not shorter or longer[len(longer) - len(shorter):] == shorter


def _union_length(spans: Sequence[Interval]) -> int:
    total, reach = 0, -1
    for start, end in sorted(spans):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def frame_labels(annotations: FrameAnnotations, video: str, num_frames: int) -> np.ndarray:
    """Per-frame ground truth of one video.

    Args:
        annotations: parsed annotations.
        video: annotation name or store id (matched as in :meth:`FrameAnnotations.find`).
        num_frames: frames of the video as decoded; intervals are clipped to it.

    Returns:
        ``int8 [num_frames]``, 1 for anomalous frames; all zeros for a video without intervals
        or not annotated at all.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    labels = np.zeros(num_frames, dtype=np.int8)
    name = annotations.find(video)
    if name is not None:
        for start, end in annotations.intervals[name]:
            labels[min(start, num_frames):min(end, num_frames)] = 1
    return labels


def match_videos(annotations: FrameAnnotations,
                 video_ids: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Pair store video ids with annotated videos.

    An id matches an annotation of the same name, else the annotation with the same
    :func:`video_key`. Store ids without annotation are not in the mapping (normal by
    :func:`frame_labels`).

    Args:
        annotations: parsed annotations.
        video_ids: ids of the feature store.

    Returns:
        ``(mapping, annotated_but_missing)``: store id -> annotation name, and the annotated
        names no store id matches (sorted).

    Raises:
        ValueError: several store ids match one annotated video by key only (e.g.
            ``training/01`` and ``testing/01``); use full ids in the annotation names.
    """
    claims: dict[str, list[str]] = {}
    exact: dict[str, str] = {}
    for video_id in video_ids:
        if video_id in annotations.intervals:
            exact[video_id] = video_id
            continue
        name = annotations.find(video_id)
        if name is not None:
            claims.setdefault(name, []).append(video_id)
    mapping = dict(exact)
    for name, ids in claims.items():
        if name in exact:
            continue
        if len(ids) > 1:
            raise ValueError(f"{annotations.source}: annotated video {name!r} matches several "
                             f"store ids {sorted(ids)}; name the videos by their full ids")
        mapping[ids[0]] = name
    matched = set(mapping.values())
    missing = sorted(name for name in annotations.intervals if name not in matched)
    return mapping, missing


def clip_to_frame_counts(annotations: FrameAnnotations,
                         frame_counts: Mapping[str, int]) -> FrameAnnotations:
    """Record frame counts and clip interval ends that run past them.

    Args:
        annotations: parsed annotations.
        frame_counts: video name or :func:`video_key` -> frame count (as from
            :func:`read_frame_counts`); videos missing from it are left as they are.

    Raises:
        ValueError: an interval starts at or after the end of its video.
    """
    intervals: dict[str, tuple[Interval, ...]] = {}
    counts = dict(annotations.num_frames)
    by_key = {video_key(name): int(count) for name, count in frame_counts.items()}
    for name, spans in annotations.intervals.items():
        count = by_key.get(video_key(name), counts.get(name))
        if count is None:
            intervals[name] = spans
            continue
        for start, _ in spans:
            if start >= count:
                raise ValueError(f"{annotations.source}: {name}: an interval starts at frame "
                                 f"{start} (0-based) but the video has {count} frames")
        intervals[name] = tuple((start, min(end, count)) for start, end in spans)
        counts[name] = count
    return FrameAnnotations(intervals, dict(annotations.classes), counts, annotations.source)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without end-of-line) of a text file."""
    with open(path, encoding="utf-8", newline=None) as handle:
        for line_no, line in enumerate(handle, start=1):
            yield line_no, line.rstrip("\n")


def _int(text: str, path: Path, line_no: int, what: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"{path}:{line_no}: {what} must be an integer, got {text!r}")
    return int(text)


def _one_based_interval(start: int, end: int, path: Path, line_no: int) -> Interval:
    if start < 1 or end < start:
        raise ValueError(f"{path}:{line_no}: invalid frame range {start}..{end} (1-based, "
                         "inclusive: need 1 <= start <= end)")
    return start - 1, end


def _within_video(span: Interval, count: int | None, start: int, end: int, path: Path,
                  line_no: int) -> Interval:
    """``span`` clipped to a video of ``count`` frames (unknown: as is); ``start..end`` as written.

    Raises:
        ValueError: the interval starts after the video's last frame.
    """
    if count is None:
        return span
    if span[0] >= count:
        raise ValueError(f"{path}:{line_no}: interval {start}..{end} starts after the video's "
                         f"last frame ({count} frames)")
    return span[0], min(span[1], count)


def _resolve_counts(frame_counts: Mapping[str, int] | Path | str | None) -> dict[str, int]:
    if frame_counts is None:
        return {}
    if isinstance(frame_counts, (str, Path)):
        return read_frame_counts(frame_counts)
    return {video_key(name): int(count) for name, count in frame_counts.items()}


def parse_ucf_crime(path: Path | str,
                    frame_counts: Mapping[str, int] | Path | str | None = None,
                    convention: UcfConvention = "1-based-inclusive") -> FrameAnnotations:
    """Parse the UCF-Crime temporal annotation.

    Lines are ``name class s1 e1 s2 e2`` (``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``,
    any whitespace) or ``name n_frames class s1 e1 s2 e2`` (``meta/Test_Annotation.txt``, which
    carries the frame count). ``-1 -1`` marks no event. With the default convention frame ``k``
    is the ``k``-th decoded frame counting from 1 and ``s..e`` is inclusive -> ``[s - 1, e)``;
    ``"0-based-half-open"`` reads ``[s, e)`` instead (see the module docstring).

    Args:
        path: annotation file.
        frame_counts: frame counts (``read_frame_counts`` output, a mapping by name, or the
            path of a ``Class/Name.mp4 n_frames`` file); interval ends past a video's last
            frame are clipped to it (five official test videos run 1-2 frames past).
        convention: how the numbers are read.

    Returns:
        The annotations, keyed by the name as written (``Abuse028_x264.mp4``).

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a malformed line, a repeated video, or an
            interval starting after the end of its video.
    """
    if convention not in UCF_CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {UCF_CONVENTIONS}")
    path = Path(path)
    counts = _resolve_counts(frame_counts)
    intervals: dict[str, tuple[Interval, ...]] = {}
    classes: dict[str, str] = {}
    num_frames: dict[str, int] = {}
    seen: dict[str, int] = {}
    for line_no, line in _lines(path):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) == 7:
            name, count_text, class_name, *numbers = tokens
            count: int | None = _int(count_text, path, line_no, "frame count")
            if count is not None and count <= 0:
                raise ValueError(f"{path}:{line_no}: frame count must be positive, got {count}")
        elif len(tokens) == 6:
            name, class_name, *numbers = tokens
            count = None
        else:
            raise ValueError(f"{path}:{line_no}: expected 'name class start1 end1 start2 end2' "
                             f"(6 fields, or 7 with the frame count), got {len(tokens)} fields")
        key = video_key(name)
        if key in seen:
            raise ValueError(f"{path}:{line_no}: video {name!r} is listed twice (first on line "
                             f"{seen[key]})")
        seen[key] = line_no
        count = counts.get(key, count)
        values = [_int(text, path, line_no, "frame number") for text in numbers]
        spans: list[Interval] = []
        for start, end in zip(values[0::2], values[1::2]):
            if start == -1 and end == -1:
                continue
            if convention == "1-based-inclusive":
                span = _one_based_interval(start, end, path, line_no)
            else:
                if start < 0 or end <= start:
                    raise ValueError(f"{path}:{line_no}: invalid frame range [{start}, {end})")
                span = (start, end)
            spans.append(_within_video(span, count, start, end, path, line_no))
        intervals[name] = tuple(sorted(spans))
        classes[name] = class_name
        if count is not None:
            num_frames[name] = count
    return FrameAnnotations(intervals, classes, num_frames, str(path))


_UCSD_LINE = re.compile(
    r"^\s*TestVideoFile\s*\{\s*(?P<index>end\s*\+\s*1|[0-9]+)\s*\}\s*\.\s*gt_frame\s*=\s*"
    r"\[(?P<body>[^\]]*)\]\s*;?\s*$")
_UCSD_IGNORED = re.compile(r"^\s*(%.*|TestVideoFile\s*=\s*\{\s*\}\s*;?\s*(%.*)?)?$")
_UCSD_RANGE = re.compile(r"^(?P<start>[0-9]+)(:(?P<end>[0-9]+))?$")


def parse_ucsd_m(path: Path | str, name_format: str = UCSD_DEFAULT_NAME_FORMAT,
                 frame_counts: Mapping[str, int] | Path | str | None = None) -> FrameAnnotations:
    """Parse UCSD ground truth in MATLAB form (``gt/UCSDped2.m``).

    Each ``TestVideoFile{end+1}.gt_frame = [a:b, c:d, k];`` line is the next test video; ranges
    are 1-based and inclusive (``[61:180]`` -> ``[60, 180)``); an explicit ``{n}`` index must be
    the next video's number. ``%`` comments, blank lines and ``TestVideoFile = {};`` are skipped.

    Args:
        path: the ``.m`` file.
        name_format: ``str.format`` pattern applied to the video's 1-based position to build its
            name: ``"{:02d}"`` (default) -> ``01``, ``02``... (folder names of
            ``ucsd_ped2/testing``); ``"Test{:03d}"`` -> ``Test001``; ``"testing/{:02d}"`` to
            match full store ids.
        frame_counts: optional frame counts by name; ends are clipped to them.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for any other line or an invalid range.
    """
    path = Path(path)
    intervals: dict[str, tuple[Interval, ...]] = {}
    for line_no, line in _lines(path):
        match = _UCSD_LINE.match(line)
        if match is None:
            if _UCSD_IGNORED.match(line):
                continue
            raise ValueError(f"{path}:{line_no}: expected "
                             f"'TestVideoFile{{end+1}}.gt_frame = [start:end, ...];', got {line!r}")
        position = len(intervals) + 1
        index = match["index"]
        if index[0].isdigit() and int(index) != position:
            raise ValueError(f"{path}:{line_no}: TestVideoFile{{{index}}} out of order "
                             f"(expected {{{position}}} or {{end+1}})")
        spans: list[Interval] = []
        body = match["body"].strip()
        for part in (p for p in re.split(r"[,\s]+", re.sub(r"\s*:\s*", ":", body)) if p):
            ranged = _UCSD_RANGE.match(part)
            if ranged is None:
                raise ValueError(f"{path}:{line_no}: invalid frame range {part!r}")
            start = int(ranged["start"])
            end = int(ranged["end"]) if ranged["end"] is not None else start
            spans.append(_one_based_interval(start, end, path, line_no))
        try:
            name = name_format.format(position)
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(f"invalid UCSD name format {name_format!r}: {exc}") from None
        intervals[name] = tuple(sorted(spans))
    annotations = FrameAnnotations(intervals, {}, {}, str(path))
    counts = _resolve_counts(frame_counts)
    return clip_to_frame_counts(annotations, counts) if counts else annotations


_CSV_HEADER_VIDEO = ("video", "video_id", "name", "id", "file")
_CSV_HEADER_START = ("start", "start_frame", "start frame")
_CSV_HEADER_END = ("end", "end_frame", "end frame")


def parse_csv(path: Path | str,
              frame_counts: Mapping[str, int] | Path | str | None = None) -> FrameAnnotations:
    """Parse ``video,start_frame,end_frame[,class]`` rows, one per anomalous interval.

    Frame numbers are 1-based and inclusive (as in UCF-Crime); ``video,-1,-1`` declares an
    annotated video without anomaly. A header row (``video,start_frame,end_frame[,class]``) is
    allowed as the first row, ``#`` starts a comment row. A video's class, when given, must be the
    same on all its rows.

    Args:
        path: CSV file.
        frame_counts: optional frame counts; interval ends past a video's end are clipped.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a malformed row.
    """
    path = Path(path)
    counts = _resolve_counts(frame_counts)
    spans: dict[str, list[Interval]] = {}
    classes: dict[str, str] = {}
    first_row = True
    for line_no, line in _lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if '"' in line:
            raise ValueError(f"{path}:{line_no}: quotes are not supported in annotation CSVs")
        fields = [cell.strip() for cell in line.split(",")]
        if first_row:
            first_row = False
            lowered = [cell.lower() for cell in fields]
            if (len(lowered) in (3, 4) and lowered[0] in _CSV_HEADER_VIDEO
                    and lowered[1] in _CSV_HEADER_START and lowered[2] in _CSV_HEADER_END
                    and (len(lowered) == 3 or lowered[3] in ("class", "class_name"))):
                continue
        if len(fields) not in (3, 4):
            raise ValueError(f"{path}:{line_no}: expected 'video,start_frame,end_frame[,class]', "
                             f"got {len(fields)} fields")
        name = fields[0]
        if not name:
            raise ValueError(f"{path}:{line_no}: empty video name")
        key = video_key(name)
        start = _int(fields[1], path, line_no, "start_frame")
        end = _int(fields[2], path, line_no, "end_frame")
        video_spans = spans.setdefault(name, [])
        if len(fields) == 4 and fields[3]:
            if classes.setdefault(name, fields[3]) != fields[3]:
                raise ValueError(f"{path}:{line_no}: class {fields[3]!r} differs from "
                                 f"{classes[name]!r} given before for {name!r}")
        if start == -1 and end == -1:
            continue
        span = _one_based_interval(start, end, path, line_no)
        video_spans.append(_within_video(span, counts.get(key), start, end, path, line_no))
    num_frames = {name: counts[video_key(name)] for name in spans if video_key(name) in counts}
    return FrameAnnotations({name: tuple(sorted(s)) for name, s in spans.items()}, classes,
                            num_frames, str(path))


#: ``..._label_B4-0-0`` of an XD-Violence name: its first class (``B4``).
_XD_CLASS = re.compile(r"_label_(?P<first>[A-Z][0-9]?)")


def parse_xd_violence(path: Path | str,
                      frame_counts: Mapping[str, int] | Path | str | None = None
                      ) -> FrameAnnotations:
    """Parse XD-Violence's ``annotations.txt``: ``name s1 e1 [s2 e2 ...]``.

    Frame numbers are 0-based and half-open (``[s, e)``), as the evaluation code that
    publishes XD-Violence results reads them (``gt[s:e] = 1``); ``s == e`` is an empty interval
    (dropped). The class is the first one named after ``_label_`` (``B4`` of
    ``..._label_B4-0-0``).

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for an odd count of numbers, a non-integer, a
            reversed pair, or a video listed twice.
    """
    path = Path(path)
    counts = _resolve_counts(frame_counts)
    intervals: dict[str, tuple[Interval, ...]] = {}
    classes: dict[str, str] = {}
    seen: dict[str, int] = {}
    for line_no, line in _lines(path):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        name, numbers = tokens[0], tokens[1:]
        if not numbers or len(numbers) % 2:
            raise ValueError(f"{path}:{line_no}: expected 'name start1 end1 [start2 end2 ...]' "
                             f"(pairs of frame numbers), got {len(numbers)} number(s)")
        if name in seen:
            raise ValueError(f"{path}:{line_no}: video {name!r} is listed twice (first on line "
                             f"{seen[name]})")
        seen[name] = line_no
        values = [_int(text, path, line_no, "frame number") for text in numbers]
        spans: list[Interval] = []
        for start, end in zip(values[0::2], values[1::2]):
            if start < 0 or end < start:
                raise ValueError(f"{path}:{line_no}: invalid frame range [{start}, {end}) "
                                 "(0-based, half-open: need 0 <= start <= end)")
            if start < end:
                spans.append(_within_video((start, end), counts.get(video_key(name)), start,
                                           end, path, line_no))
        intervals[name] = tuple(sorted(spans))
        match = _XD_CLASS.search(name)
        if match:
            classes[name] = match["first"]
    num_frames = {name: counts[video_key(name)] for name in intervals
                  if video_key(name) in counts}
    return FrameAnnotations(intervals, classes, num_frames, str(path))


def parse_shanghaitech_masks(folder: Path | str) -> FrameAnnotations:
    """Read ShanghaiTech's per-video frame masks (``test_frame_mask/<video>.npy``).

    Each mask is a 1-D array of 0/1 (any integer or bool dtype), one value per frame; its
    anomalous runs become the intervals and its length the video's frame count. A mask of
    zeros is a normal test video.

    Raises:
        ValueError: ``"<file>: ..."`` for a mask that is not a 1-D 0/1 array, or a folder
            without masks.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: ShanghaiTech ground truth is a folder of <video>.npy frame "
                         "masks (test_frame_mask/)")
    intervals: dict[str, tuple[Interval, ...]] = {}
    num_frames: dict[str, int] = {}
    for mask_path in sorted(folder.glob("*.npy")):
        try:
            mask = np.load(mask_path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{mask_path}: not a readable .npy frame mask: {exc}") from None
        if mask.ndim != 1 or mask.size == 0 or not (
                np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_):
            raise ValueError(f"{mask_path}: a frame mask is a non-empty 1-D integer array, got "
                             f"shape {mask.shape} dtype {mask.dtype}")
        if not np.isin(mask, (0, 1)).all():
            bad = int(np.flatnonzero(~np.isin(mask, (0, 1)))[0])
            raise ValueError(f"{mask_path}: frame {bad}: mask value {mask[bad]} is not 0 or 1")
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        intervals[mask_path.stem] = tuple((int(a), int(b)) for a, b in zip(starts, ends))
        num_frames[mask_path.stem] = int(mask.size)
    if not intervals:
        raise ValueError(f"{folder}: no <video>.npy frame mask in the folder")
    return FrameAnnotations(intervals, {}, num_frames, str(folder))


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "shanghaitech"
    suffix = path.suffix.lower()
    if suffix == ".m":
        return "ucsd"
    if suffix == ".csv":
        return "csv"
    for line_no, line in _lines(path):
        text = line.strip()
        if not text or text.startswith(("#", "%")):
            continue
        if text.startswith("TestVideoFile"):
            return "ucsd"
        if "," in text:
            return "csv"
        if len(text.split()) in (6, 7):
            return "ucf-crime"
        raise ValueError(f"{path}:{line_no}: cannot tell the annotation format from {line!r}; "
                         f"pass --annotation-format (one of {', '.join(ANNOTATION_FORMATS[1:])})")
    raise ValueError(f"{path}: empty annotation file")


def load_annotations(path: Path | str, format: AnnotationFormat = "auto",  # noqa: A002
                     frame_counts: Mapping[str, int] | Path | str | None = None,
                     ucsd_name_format: str = UCSD_DEFAULT_NAME_FORMAT,
                     convention: UcfConvention = "1-based-inclusive") -> FrameAnnotations:
    """Read an annotation file of any supported format.

    Args:
        path: annotation file.
        format: ``"auto"`` picks a folder as ShanghaiTech masks, else by extension (``.m``
            UCSD, ``.csv`` CSV), else by the first non-comment line (``TestVideoFile...`` UCSD,
            commas CSV, 6 or 7 fields UCF-Crime); XD-Violence files are named explicitly.
        frame_counts: frame counts used to clip interval ends (see :func:`read_frame_counts`).
        ucsd_name_format: id scheme of UCSD videos (see :func:`parse_ucsd_m`).
        convention: reading of UCF-Crime numbers (see :func:`parse_ucf_crime`).

    Raises:
        ValueError: unknown format, or a malformed line (``"<file>:<line>: ..."``).
    """
    path = Path(path)
    if format not in ANNOTATION_FORMATS:
        raise ValueError(f"--annotation-format: unknown annotation format {format!r}; expected "
                         f"one of {', '.join(ANNOTATION_FORMATS)}")
    chosen = _detect_format(path) if format == "auto" else format
    if chosen == "ucsd":
        return parse_ucsd_m(path, ucsd_name_format, frame_counts)
    if chosen == "csv":
        return parse_csv(path, frame_counts)
    if chosen == "xd-violence":
        return parse_xd_violence(path, frame_counts)
    if chosen == "shanghaitech":
        return parse_shanghaitech_masks(path)
    return parse_ucf_crime(path, frame_counts, convention)
