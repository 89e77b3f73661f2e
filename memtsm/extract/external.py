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

Parsing is strict, so a damaged file fails instead of giving wrong values: text files hold plain
ASCII decimal numbers within the float32 range of the store, every line ends with a line end
(LF or CRLF), and anything else (garbage, NaN/inf, a row of another length, a blank
line or header amid the data, non-ASCII bytes, a truncated or corrupt file) raises
``ValueError("<file>:<line>: ...")`` naming the line; ``.npy`` errors name the file and, for a
bad value, the row.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

import numpy as np

from memtsm.constants import CLIP_FRAMES
from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.sources import (
    VideoLabel,
    read_frame_counts,
    read_labels_csv,
    resolve_label,
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
        for folder, files in walk_tree(root):
            for name in files:
                if not name.lower().endswith(FORMAT_SUFFIXES[fmt]):
                    continue
                path = folder / name
                rel = PurePosixPath(path.relative_to(root).as_posix())
                add(str(rel.with_name(_strip_format_suffix(rel.name, fmt))), path)
    return sorted(found.items())


# ----------------------------------------------------------------------------------- readers

#: Largest magnitude a feature value may have: the store keeps float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Largest segment width (frames) accepted on the first line of a CSV.
MAX_SEGMENT_WIDTH = 10**9
#: A plain decimal number, the only value syntax accepted in text files.
_NUMBER_RE = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE_RE = re.compile(rb"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: Bytes a row may hold, per separator (``None``: runs of spaces and tabs, as in Sultani's
#: files). Python's ``float`` applied to tokens made of these accepts exactly ``_NUMBER_RE``.
_ROW_BYTES = {None: b"0123456789.eE+- \t", b",": b"0123456789.eE+- \t,"}
#: A CSV's first line: a positive integer (``17``, ``17.0``), trailing empty cells allowed.
_WIDTH_RE = re.compile(rb"[ \t]*0*([1-9][0-9]{0,9})(?:\.0*)?[ \t]*(?:,[ \t]*)*")
_BLANKS = b" \t"
_UTF8_BOM = b"\xef\xbb\xbf"
_DECOMPRESS_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _shown(text: bytes) -> str:
    """``text`` quoted for an error message (ASCII, escapes as in Python, at most 40 bytes)."""
    return repr(text[:40])[1:]


def _content_lines(path: Path, handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    r"""Non-blank lines of a text feature file with their 1-based numbers, line ends removed.

    Lines end with ``\n`` or ``\r\n``; a UTF-8 byte-order mark before the first line is
    skipped. Blank lines (spaces and tabs only) are allowed at the end of the file only.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a blank line inside the data, a last line
            without a line end (a truncated file), or data that cannot be decompressed.
    """
    blank_at: int | None = None
    line_no = 0
    raw_lines = iter(handle)
    while True:
        try:
            raw = next(raw_lines, None)
        except _DECOMPRESS_ERRORS as exc:
            raise ValueError(f"{path}:{line_no + 1}: cannot decompress: {exc}") from None
        if raw is None:
            return
        line_no += 1
        if line_no == 1:
            raw = raw.removeprefix(_UTF8_BOM)
        ended = raw.endswith(b"\n")
        line = raw.removesuffix(b"\n").removesuffix(b"\r")
        if not line.strip(_BLANKS):
            blank_at = blank_at or line_no
            continue
        if blank_at is not None:
            raise ValueError(f"{path}:{blank_at}: blank line amid the data (allowed only at "
                             "the end)")
        if not ended:
            raise ValueError(f"{path}:{line_no}: the last line has no line end, the file looks "
                             "truncated (end it with a newline if it is complete)")
        yield line_no, line


def _split_values(line: bytes, sep: bytes | None) -> list[bytes]:
    if sep is None:
        return re.split(rb"[ \t]+", line.strip(_BLANKS))
    return [token.strip(_BLANKS) for token in line.split(sep)]


def _bad_value(path: Path, line_no: int, tokens: list[bytes]) -> ValueError:
    """The error for the first token of a line that is not a plain decimal number."""
    for position, token in enumerate(tokens, start=1):
        if _NUMBER_RE.fullmatch(token):
            continue
        where = f"{path}:{line_no}"
        if not token:
            return ValueError(f"{where}: empty value (value {position}; a doubled or trailing "
                              "separator?)")
        foreign = next((byte for byte in token if byte >= 0x80), None)
        if foreign is not None:
            return ValueError(f"{where}: non-ASCII byte 0x{foreign:02x} in value {position} "
                              f"({_shown(token)}); feature files hold ASCII numbers only "
                              "(binary data or another encoding?)")
        if _NON_FINITE_RE.fullmatch(token):
            return ValueError(f"{where}: NaN or inf value (value {position}): "
                              f"{_shown(token)}")
        return ValueError(f"{where}: not a number (value {position}): {_shown(token)}")
    return ValueError(f"{path}:{line_no}: malformed row")  # not reached


def _floats(tokens: list[bytes]) -> list[float] | None:
    """``float`` of every token, or ``None`` when one is not a number."""
    try:
        return [float(token) for token in tokens]
    except ValueError:
        return None


def _parse_row(path: Path, line_no: int, line: bytes, sep: bytes | None,
               width: int | None) -> np.ndarray:
    """One row of decimal numbers, exactly as written (``float``: correctly rounded)."""
    tokens = line.split() if sep is None else line.split(sep)
    values = None if line.translate(None, _ROW_BYTES[sep]) else _floats(tokens)
    if values is None:
        raise _bad_value(path, line_no, _split_values(line, sep))
    if width is not None and len(tokens) != width:
        raise ValueError(f"{path}:{line_no}: expected {width} values, got {len(tokens)}")
    row = np.array(values, dtype=np.float64)
    out_of_range = np.flatnonzero(~(np.abs(row) <= FLOAT32_MAX))
    if out_of_range.size:
        position = int(out_of_range[0])
        raise ValueError(f"{path}:{line_no}: value {position + 1} "
                         f"({_shown(tokens[position].strip(_BLANKS))}) is outside the float32 "
                         f"range of the store (|x| <= {FLOAT32_MAX:.4g})")
    return row


def _parse_rows(path: Path, lines: Iterator[tuple[int, bytes]], sep: bytes | None,
                first_line: int) -> np.ndarray:
    """Rows of equal length; ``first_line`` is where the first row is expected."""
    rows: list[np.ndarray] = []
    for line_no, line in lines:
        rows.append(_parse_row(path, line_no, line, sep, rows[0].size if rows else None))
    if not rows:
        raise ValueError(f"{path}:{first_line}: no feature rows")
    return np.stack(rows)


def read_sultani_txt(path: Path | str) -> np.ndarray:
    """Read a Sultani-style C3D text file.

    Rows are plain decimal numbers (``0.0123``, ``-1.5e-05``) separated by spaces or tabs;
    ``nan``, ``inf``, ``1_000`` and non-ASCII digits are refused, as is a last line without a
    line end (a truncated file).

    Returns:
        ``float64 [S, D]``: one row per segment (32 x 4096 officially), exactly as written.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for anything malformed (a non-number, a row of
            another length, NaN/inf, a value beyond float32, a blank line inside the data,
            non-ASCII bytes, a missing last line end).
    """
    path = Path(path)
    with open(path, "rb") as handle:
        return _parse_rows(path, _content_lines(path, handle), None, 1)


def read_segment_csv(path: Path | str) -> tuple[int, np.ndarray]:
    """Read a CSV (optionally ``.gz``) whose first line is the segment width in frames.

    Row ``i`` of the features (0-based) is line ``i + 2`` of the file. Values are plain decimal
    numbers separated by commas (spaces and tabs around them allowed); the width is an integer
    from 1 to :data:`MAX_SEGMENT_WIDTH` (``17`` or ``17.0``, trailing empty cells allowed).

    Returns:
        ``(width, features float64 [S, D])``, exactly as written.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a bad width, anything malformed in a row (as
            :func:`read_sultani_txt`), or compressed data that is truncated or corrupt.
    """
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        lines = _content_lines(path, handle)
        line_no, first = next(lines, (1, b""))
        match = _WIDTH_RE.fullmatch(first)
        width = int(match[1]) if match else 0
        if not 1 <= width <= MAX_SEGMENT_WIDTH:
            raise ValueError(f"{path}:{line_no}: first line must be the segment width in frames "
                             f"(an integer from 1 to {MAX_SEGMENT_WIDTH}), got "
                             f"{_shown(first)}")
        return width, _parse_rows(path, lines, b",", line_no + 1)


def read_npy(path: Path | str) -> np.ndarray:
    """Read ``[T, D]`` or ``[T, crops, D]`` features (crops averaged) as ``float64 [T, D]``.

    Raises:
        ValueError: ``"<file>: ..."`` for a file that is not a ``.npy`` array (truncated, random
            bytes, ``.npz``, pickled objects), another shape or dtype, and ``"<file>: row <i>:
            ..."`` (``i`` 0-based) for NaN/inf or a value beyond float32.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            np.lib.format.read_magic(handle)
            handle.seek(0)
            array = np.load(handle, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array: {exc}") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{path}: expected a real numeric array, got dtype {array.dtype}")
    if array.ndim == 3 and array.size:
        array = array.astype(np.float64).mean(axis=1)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{path}: expected features [T, D] or [T, crops, D] with no empty "
                         f"axis, got shape {array.shape}")
    array = array.astype(np.float64)
    bad = ~(np.abs(array) <= FLOAT32_MAX)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        value = float(array[row][bad[row]][0])
        if not np.isfinite(value):
            raise ValueError(f"{path}: row {row}: NaN or inf value")
        raise ValueError(f"{path}: row {row}: value {value:.4g} is outside the float32 range "
                         f"of the store (|x| <= {FLOAT32_MAX:.4g})")
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
