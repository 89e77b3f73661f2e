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

Parsing is strict (:mod:`memtsm.extract.feature_files`): a damaged file fails with an error
naming the file and line instead of giving wrong values.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from memtsm.constants import CLIP_FRAMES
from memtsm.extract.feature_files import read_npy, read_segment_csv, read_sultani_txt
from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.sources import (
    VideoLabel,
    read_frame_counts,
    read_labels_csv,
    resolve_label,
    unique_ids,
    video_key,
    walk_tree,
)
from memtsm.extract.store import (
    FAILURES_NAME,
    Failure,
    FeatureStore,
    FeatureStoreWriter,
    StoreError,
    VideoRecord,
    read_store_identity,
    validate_video_id,
)
from memtsm.runtime.files import atomic_write_text

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
    failures: tuple[Failure, ...]


# --------------------------------------------------------------------------------- discovery


def _strip_format_suffix(name: str, fmt: str) -> str:
    for suffix in FORMAT_SUFFIXES[fmt]:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return PurePosixPath(name).stem or name


def find_feature_files(inputs: Sequence[Path | str], fmt: FeatureFormat) -> list[tuple[str, Path]]:
    """List ``(video_id, path)`` of the feature files under ``inputs``, sorted by id.

    A file given directly is taken whatever its extension (id: its name without extension);
    folders are walked as in video discovery (:func:`memtsm.extract.sources.walk_tree`) for the
    format's extensions (:data:`FORMAT_SUFFIXES`), ids being relative paths without extension.

    Ids are unique by the rule of video discovery
    (:func:`memtsm.extract.sources.unique_ids`): the same file reached twice is imported once;
    distinct files whose ids would collide keep their extension (``x.csv`` and ``x.csv.gz``)
    and, if needed, their parent folders, logged once at WARNING.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: unknown format or an invalid id.
    """
    if fmt not in FORMAT_SUFFIXES:
        raise ValueError(f"unknown feature format {fmt!r}; expected one of {FEATURE_FORMATS}")
    candidates: list[tuple[str, str, Path]] = []

    def add(video_id: str, long_id: str, path: Path) -> None:
        candidates.append((validate_video_id(video_id), long_id, path))

    for raw in inputs:
        root = Path(raw)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        if root.is_file():
            add(_strip_format_suffix(root.name, fmt), root.name, root)
            continue
        for folder, files in walk_tree(root):
            for name in files:
                if not name.lower().endswith(FORMAT_SUFFIXES[fmt]):
                    continue
                path = folder / name
                rel = PurePosixPath(path.relative_to(root).as_posix())
                add(str(rel.with_name(_strip_format_suffix(rel.name, fmt))), str(rel), path)
    return sorted(unique_ids(candidates, "feature file"))


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


def _csv_segment_frames(path: Path, n_rows: int, width: int, num_frames: int | None
                        ) -> np.ndarray:
    """:func:`fixed_width_frames` of a CSV; a row past the video's end is named by its line.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` naming the first row that starts at or after
            ``num_frames`` (row ``i`` is line ``i + 2``, see :func:`read_segment_csv`).
    """
    if num_frames is not None:
        first_outside = -(-num_frames // width)
        if first_outside < n_rows:
            raise ValueError(f"{path}:{first_outside + 2}: this row starts at frame "
                             f"{first_outside * width}, past the video's {num_frames} frames: "
                             f"{n_rows} rows of {width} frames do not fit")
    return fixed_width_frames(n_rows, width, num_frames)


@dataclass(frozen=True)
class _Parsed:
    features: np.ndarray
    clip_frames: np.ndarray
    num_frames: int
    num_frames_source: str
    last_clip_partial: bool


def _base_id(video_id: str, fmt: str) -> str:
    """The id without a format extension it kept to stay unique (``x.csv.gz`` -> ``x``)."""
    for suffix in FORMAT_SUFFIXES[fmt]:
        if video_id.lower().endswith(suffix) and len(video_id) > len(suffix):
            return video_id[: -len(suffix)]
    return video_id


def _parse_file(path: Path, video_id: str, fmt: str, counts: dict[str, int] | None,
                clip_len: int) -> _Parsed:
    video_id = _base_id(video_id, fmt)  # frame counts name the video, not the feature file
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
        frames = _csv_segment_frames(path, features.shape[0], width, count)
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
    atomic_write_text(out / IMPORT_CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")
    existing = read_store_identity(out)
    dim = feature_dim if feature_dim is not None else \
        (existing.feature_dim if existing is not None else None)
    provenance = {"memtsm_version": __version__, "import": config}

    def identity(feature_dim: int) -> FeatureIdentity:
        return FeatureIdentity.of_import(feature_name, normalize, clip_len, feature_dim)

    imported: list[str] = []
    skipped: list[str] = []
    failures: list[Failure] = []
    writer: FeatureStoreWriter | None = None
    with contextlib.ExitStack() as stack, \
            open(out / FAILURES_NAME, "a", encoding="utf-8") as failure_log:

        def fail(video_id: str, path: Path, error: str) -> None:
            failure = Failure(video_id, str(path), error)
            failures.append(failure)
            failure_log.write(failure.to_json() + "\n")
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
                label = resolve_label(_base_id(video_id, fmt), overrides)
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
