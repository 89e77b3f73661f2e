"""Import externally computed features (published C3D, CSV, NumPy) into a feature store.

Ids and labels follow the extraction rules of :mod:`memtsm.extract.sources`: the id is the file's
path relative to the input folder without its (possibly double, ``.csv.gz``) extension, a file
given directly has its name without extension as id, and labels come from
:func:`~memtsm.extract.sources.resolve_label` (``--labels`` CSV, else the UCF-Crime path rule).

Segment -> frame mapping (``clip_frames``, 0-based ``[start, end)``), per format:

* ``sultani-txt`` (rows = segments of 16-frame C3D clips; needs ``frame_counts``): with
  ``n_clips = n_frames // clip_len`` and ``S`` rows, segment ``i`` averages clips
  ``[b_i, b_{i+1})`` where ``b = round(linspace(0, n_clips - 1, S + 1))`` with MATLAB rounding
  (halves away from zero), which is ``round(linspace(1, n_clips, 33))`` of the authors'
  1-based MATLAB code; an empty range uses the single clip ``b_i``. This reading was checked
  against the published features: the rows that are exactly equal in the three short test videos
  (``Normal_Videos_006``, ``RoadAccidents002``, ``Explosion025``) are exactly the segments this
  rule maps to the same clip, while ``linspace(0, n_clips, 33)`` or numpy's half-to-even
  ``round`` predict other pairs. Segment ``i`` therefore covers frames
  ``[b_i * clip_len, max(b_{i+1}, b_i + 1) * clip_len)``, the frames its feature was computed
  from: a segment of a short video (``n_clips < S``) that reuses one clip is mapped to that clip
  and overlaps its neighbour (no zero-width segment; frame scores average overlapping segments).
  The last clip and the trailing ``n_frames % clip_len`` frames, which no row describes, are
  given to the last segment, which therefore ends at ``n_frames``.
* ``csv`` (first line: segment width ``w`` in frames): row ``i`` covers ``[i*w, (i+1)*w)``; with
  a frame count the ranges are clipped to it and the last row is extended to ``n_frames``
  (trailing frames take the last row's score); without one, ``num_frames = rows * w``.
* ``npy`` (``[T, D]`` or ``[T, crops, D]``, one row per clip): clip ``i`` covers
  ``[i*clip_len, (i+1)*clip_len)``; with a frame count the last clip is clipped or extended (by
  less than one clip) to ``n_frames``, anything else is refused; without one,
  ``num_frames = T * clip_len``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from memtsm.constants import CLIP_FRAMES
from memtsm.extract.sources import VideoLabel, read_labels_csv, resolve_label
from memtsm.extract.store import (
    FAILURES_NAME,
    FeatureStore,
    FeatureStoreWriter,
    StoreError,
    VideoRecord,
    read_store_identity,
    validate_video_id,
)
from memtsm.pipeline.annotations import read_frame_counts, video_key

FeatureFormat = Literal["sultani-txt", "csv", "npy"]
Normalize = Literal["none", "l2"]
FEATURE_FORMATS: tuple[str, ...] = ("sultani-txt", "csv", "npy")
NORMALIZE_CHOICES: tuple[str, ...] = ("none", "l2")
#: File-name endings searched in input folders, per format (longest first).
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "sultani-txt": (".txt",),
    "csv": (".csv.gz", ".csv"),
    "npy": (".npy",),
}
IMPORT_CONFIG_NAME = "import_config.json"
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, StoreError)


@dataclass(frozen=True)
class ImportFailure:
    """A file that could not be imported (also a line of ``failures.jsonl``)."""

    video_id: str
    source: str
    error: str


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_features` did.

    Attributes:
        out: the store directory.
        imported: ids added by this run.
        skipped: ids already in the store (left as they are).
        failures: files that failed, with the reason.
    """

    out: Path
    imported: tuple[str, ...]
    skipped: tuple[str, ...]
    failures: tuple[ImportFailure, ...]


# --------------------------------------------------------------------------------- discovery


def _strip_format_suffix(name: str, fmt: str) -> str:
    for suffix in FORMAT_SUFFIXES[fmt]:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return PurePosixPath(name).stem or name


def find_feature_files(inputs: Sequence[Path | str], fmt: FeatureFormat) -> list[tuple[str, Path]]:
    """List ``(video_id, path)`` of the feature files under ``inputs``, sorted by id.

    A file given directly is taken whatever its extension (id: its name without extension);
    folders are searched recursively (links to folders are not followed) for the format's
    extensions (:data:`FORMAT_SUFFIXES`), ids being relative paths without extension.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: unknown format, an invalid id, or two files with the same id.
    """
    if fmt not in FORMAT_SUFFIXES:
        raise ValueError(f"unknown feature format {fmt!r}; expected one of {FEATURE_FORMATS}")
    found: dict[str, Path] = {}

    def add(video_id: str, path: Path) -> None:
        validate_video_id(video_id)
        if video_id in found:
            raise ValueError(f"two inputs map to video id {video_id!r}: {found[video_id]} and "
                             f"{path}")
        found[video_id] = path

    for raw in inputs:
        root = Path(raw)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        if root.is_file():
            add(_strip_format_suffix(root.name, fmt), root)
            continue
        for folder, subdirs, files in os.walk(root, followlinks=False):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(FORMAT_SUFFIXES[fmt]):
                    continue
                path = Path(folder) / name
                rel = PurePosixPath(path.relative_to(root).as_posix())
                add(str(rel.with_name(_strip_format_suffix(rel.name, fmt))), path)
    return sorted(found.items())


# ----------------------------------------------------------------------------------- readers


def _float_row(tokens: list[str], path: Path, line_no: int, width: int | None) -> np.ndarray:
    if width is not None and len(tokens) != width:
        raise ValueError(f"{path}:{line_no}: expected {width} values, got {len(tokens)}")
    try:
        row = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next((t for t in tokens if not _is_float(t)), tokens[0] if tokens else "")
        raise ValueError(f"{path}:{line_no}: not a number: {bad[:40]!r}") from None
    if not np.isfinite(row).all():
        raise ValueError(f"{path}:{line_no}: NaN or inf value")
    return row


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbered_lines(path: Path, lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; blank lines are allowed only at the end."""
    blank_at: int | None = None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            blank_at = blank_at or line_no
            continue
        if blank_at is not None:
            raise ValueError(f"{path}:{blank_at}: blank line inside the data")
        yield line_no, line


def _rows(path: Path, lines: Iterator[tuple[int, str]], sep: str | None) -> np.ndarray:
    rows: list[np.ndarray] = []
    width: int | None = None
    for line_no, line in lines:
        tokens = line.split(sep) if sep else line.split()
        row = _float_row([t.strip() for t in tokens], path, line_no, width)
        width = row.size
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no feature rows")
    if width == 0:
        raise ValueError(f"{path}: empty feature rows")
    return np.stack(rows)


def read_sultani_txt(path: Path | str) -> np.ndarray:
    """Read a Sultani-style C3D text file.

    Returns:
        ``float64 [S, D]``: one whitespace-separated row per segment (32 x 4096 officially).

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a non-number, a row of another length, NaN/inf.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        return _rows(path, _numbered_lines(path, handle), None)


def read_segment_csv(path: Path | str) -> tuple[int, np.ndarray]:
    """Read a CSV (optionally ``.gz``) whose first line is the segment width in frames.

    Returns:
        ``(width, features float64 [S, D])``.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a bad width, a non-number, a row of another
            length, NaN/inf.
    """
    path = Path(path)
    is_gzip = path.name.lower().endswith(".gz")
    with (gzip.open(path, "rt", encoding="utf-8") if is_gzip
          else open(path, encoding="utf-8")) as handle:
        lines = _numbered_lines(path, handle)
        try:
            line_no, first = next(lines)
        except StopIteration:
            raise ValueError(f"{path}: empty file") from None
        text = first.strip().rstrip(",").strip()
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (np.isfinite(value) and value == int(value) and value >= 1):
            raise ValueError(f"{path}:{line_no}: first line must be the segment width in frames "
                             f"(a positive integer), got {text[:40]!r}")
        return int(value), _rows(path, lines, ",")


def read_npy(path: Path | str) -> np.ndarray:
    """Read ``[T, D]`` or ``[T, crops, D]`` features (crops averaged) as ``float64 [T, D]``.

    Raises:
        ValueError: ``"<file>: ..."`` for another shape, a non-numeric array, NaN/inf.
    """
    path = Path(path)
    array = np.load(path, allow_pickle=False)
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number) \
            or np.iscomplexobj(array):
        raise ValueError(f"{path}: expected a real numeric array")
    if array.ndim == 3:
        array = array.astype(np.float64).mean(axis=1)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{path}: expected features [T, D] or [T, crops, D], got shape "
                         f"{array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: NaN or inf values")
    return array


# -------------------------------------------------------------------------- frame mappings


def sultani_segment_clips(n_clips: int, n_segments: int) -> np.ndarray:
    """Clips averaged into each segment by the UCF-Crime (Sultani et al.) 32-segment scheme.

    ``b = round(linspace(0, n_clips - 1, n_segments + 1))`` with halves rounded away from zero
    (MATLAB ``round``), computed in integers; segment ``i`` is clips ``[b_i, b_{i+1})``, or the
    single clip ``b_i`` when that is empty. The last clip is in no segment unless the last
    segment is a single clip (as in the authors' code).

    Returns:
        ``int64 [n_segments, 2]`` half-open clip-index ranges (never empty).
    """
    if n_clips < 1 or n_segments < 1:
        raise ValueError(f"need n_clips >= 1 and n_segments >= 1, got {n_clips}, {n_segments}")
    i = np.arange(n_segments + 1, dtype=np.int64)
    bounds = (2 * i * (n_clips - 1) + n_segments) // (2 * n_segments)
    starts = bounds[:-1]
    ends = np.maximum(bounds[1:], starts + 1)
    return np.stack([starts, ends], axis=1)


def sultani_segment_frames(num_frames: int, n_segments: int, clip_len: int) -> np.ndarray:
    """Frames of each segment of Sultani-style features (see the module docstring).

    Returns:
        ``int64 [n_segments, 2]`` ``[start, end)``; the last segment ends at ``num_frames``.
    """
    n_clips = num_frames // clip_len
    if n_clips < 1:
        raise ValueError(f"the video has {num_frames} frames, fewer than one {clip_len}-frame "
                         "clip")
    frames = sultani_segment_clips(n_clips, n_segments) * clip_len
    frames[-1, 1] = num_frames
    return frames


def fixed_width_frames(n_rows: int, width: int, num_frames: int | None) -> np.ndarray:
    """``[i*width, (i+1)*width)`` per row; with ``num_frames`` clipped and the last row extended.

    Raises:
        ValueError: a row would start at or after ``num_frames``.
    """
    starts = np.arange(n_rows, dtype=np.int64) * width
    frames = np.stack([starts, starts + width], axis=1)
    if num_frames is not None:
        if starts[-1] >= num_frames:
            raise ValueError(f"{n_rows} rows of {width} frames do not fit the video's "
                             f"{num_frames} frames (row {n_rows - 1} starts at frame "
                             f"{starts[-1]})")
        frames[:, 1] = np.minimum(frames[:, 1], num_frames)
        frames[-1, 1] = num_frames
    return frames


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """``x / ||x||`` per row; all-zero rows stay zero."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)


@dataclass(frozen=True)
class _Parsed:
    features: np.ndarray
    clip_frames: np.ndarray
    num_frames: int
    num_frames_source: str
    last_clip_partial: bool


def _parse_file(path: Path, video_id: str, fmt: str, counts: dict[str, int] | None,
                clip_len: int) -> _Parsed:
    count = counts.get(video_key(video_id)) if counts is not None else None
    source = "frame-counts" if count is not None else "features"
    if fmt == "sultani-txt":
        features = read_sultani_txt(path)
        if counts is None:
            raise ValueError(f"{path}: segment features need frame counts (--frame-counts) to "
                             "map segments to frames")
        if count is None:
            raise ValueError(f"{path}: video {video_key(video_id)!r} is not in the frame counts "
                             "file")
        frames = sultani_segment_frames(count, features.shape[0], clip_len)
        return _Parsed(features, frames, count, source, False)
    if fmt == "csv":
        width, features = read_segment_csv(path)
        frames = fixed_width_frames(features.shape[0], width, count)
        return _Parsed(features, frames, count if count is not None else int(frames[-1, 1]),
                       source, False)
    features = read_npy(path)
    n_clips = features.shape[0]
    if count is None:
        return _Parsed(features, fixed_width_frames(n_clips, clip_len, None),
                       n_clips * clip_len, source, False)
    if not (n_clips - 1) * clip_len < count < (n_clips + 1) * clip_len:
        raise ValueError(f"{path}: {n_clips} clips of {clip_len} frames do not match the "
                         f"video's {count} frames (per-clip features expected)")
    return _Parsed(features, fixed_width_frames(n_clips, clip_len, count), count, source,
                   n_clips * clip_len > count)


# ------------------------------------------------------------------------------------ import


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def import_features(inputs: Sequence[Path | str], out: Path | str, fmt: FeatureFormat,
                    frame_counts: Path | str | None = None, normalize: Normalize = "none",
                    labels_csv: Path | str | None = None, clip_len: int = CLIP_FRAMES,
                    feature_dim: int | None = None,
                    feature_name: str = "c3d") -> ImportSummary:
    """Import feature files into a feature store (resumable: stored ids are skipped).

    One bad file is reported (in the summary and as a ``{"video_id", "source", "error"}`` line
    appended to ``out/failures.jsonl``) and the others are imported; a file is parsed and checked
    completely before it is stored, so no partial video is written. ``out/import_config.json``
    records the resolved configuration.

    Args:
        inputs: files and folders (searched recursively for the format's extensions).
        out: store directory.
        fmt: ``"sultani-txt"``, ``"csv"`` or ``"npy"`` (see the module docstring).
        frame_counts: ``Class/Name.mp4 n_frames ...`` file (UCF-Crime ``meta/*_Annotation.txt``);
            required by ``sultani-txt``.
        normalize: ``"l2"`` divides each segment by its norm (zero rows stay zero).
        labels_csv: ``video,label[,class]`` overrides of the label rule.
        clip_len: frames per clip of the original extractor (C3D: 16).
        feature_dim: expected ``D``; by default the store's, else the first readable file's.
        feature_name: what the features are (``c3d``, ``i3d``...). With ``normalize`` and
            ``clip_len`` it is the store's identity (layout ``imported:<name>``), so features of
            one kind imported from different file formats (e.g. Sultani txt for the test set,
            CSV for the training set) can be trained and evaluated together; the file format is
            recorded as provenance.

    Returns:
        Imported, skipped and failed ids.

    Raises:
        FileNotFoundError, ValueError: bad inputs or options (before anything is written).
        StoreError: ``out`` holds features with another identity.
    """
    if fmt not in FEATURE_FORMATS:
        raise ValueError(f"unknown feature format {fmt!r}; expected one of {FEATURE_FORMATS}")
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"unknown normalize {normalize!r}; expected one of {NORMALIZE_CHOICES}")
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    from memtsm import __version__

    out = Path(out)
    files = find_feature_files(inputs, fmt)
    counts = read_frame_counts(frame_counts) if frame_counts is not None else None
    overrides: dict[str, VideoLabel] = read_labels_csv(Path(labels_csv)) if labels_csv else {}
    config = {
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "out": str(out.resolve()),
        "format": fmt,
        "feature_name": feature_name,
        "frame_counts": str(Path(frame_counts).resolve()) if frame_counts is not None else None,
        "normalize": normalize,
        "labels_csv": str(Path(labels_csv).resolve()) if labels_csv else None,
        "clip_len": clip_len,
        "memtsm_version": __version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / IMPORT_CONFIG_NAME, config)
    existing = read_store_identity(out)
    dim = feature_dim if feature_dim is not None else \
        (int(existing["feature_dim"]) if existing and "feature_dim" in existing else None)
    provenance = {"memtsm_version": __version__, "import": config}

    def identity(feature_dim: int) -> dict[str, Any]:
        return {"feature_dim": feature_dim, "layout": f"imported:{feature_name}",
                "dtype": "float32",
                "feature_spec": {"feature_name": feature_name, "normalize": normalize,
                                 "clip_len": clip_len}}

    imported: list[str] = []
    skipped: list[str] = []
    failures: list[ImportFailure] = []
    writer: FeatureStoreWriter | None = None
    with contextlib.ExitStack() as stack, \
            open(out / FAILURES_NAME, "a", encoding="utf-8") as failure_log:

        def fail(video_id: str, path: Path, error: str) -> None:
            failure = ImportFailure(video_id, str(path), error)
            failures.append(failure)
            failure_log.write(json.dumps(failure.__dict__, ensure_ascii=False) + "\n")
            failure_log.flush()

        done: set[str] = set()
        if existing is not None and dim is not None:
            # refuse a different configuration before anything, even if every id is stored
            writer = stack.enter_context(FeatureStoreWriter(out, identity(dim), provenance))
            done = set(FeatureStore(out).video_ids)
        for video_id, path in files:
            if video_id in done:
                skipped.append(video_id)
                continue
            try:
                parsed = _parse_file(path, video_id, fmt, counts, clip_len)
                features = parsed.features
                if dim is not None and features.shape[1] != dim:
                    raise ValueError(f"{path}: feature dim {features.shape[1]} != {dim}")
                if normalize == "l2":
                    features = l2_normalize(features)
                label = resolve_label(video_id, overrides)
                record = VideoRecord(
                    video_id=video_id, features=features.astype(np.float32),
                    clip_frames=parsed.clip_frames, fps=0.0,  # unknown: not in the files
                    num_frames=parsed.num_frames,
                    source=str(path), label=label.label, class_name=label.class_name,
                    last_clip_partial=parsed.last_clip_partial,
                    extra={"num_frames_source": parsed.num_frames_source,
                           "import_format": fmt})
                if writer is None:
                    dim = features.shape[1]
                    writer = stack.enter_context(FeatureStoreWriter(out, identity(dim),
                                                                    provenance))
                writer.add(record)
            except _READ_ERRORS as exc:
                if isinstance(exc, StoreError) and writer is None:
                    raise
                message = str(exc)
                fail(video_id, path, message if str(path) in message else f"{path}: {message}")
                continue
            imported.append(video_id)
    return ImportSummary(out, tuple(imported), tuple(skipped), tuple(failures))
