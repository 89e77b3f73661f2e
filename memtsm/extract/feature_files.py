"""Strict readers of external feature files: Sultani et al.'s text files, CSV, NumPy arrays, lists.

Parsing is strict, so a damaged file fails instead of giving wrong values: text files hold plain
ASCII decimal numbers within the float32 range of the store, every line ends with a line end
(LF or CRLF), and anything else (garbage, NaN/inf, a row of another length, a blank
line or header amid the data, non-ASCII bytes, a truncated or corrupt file) raises
``ValueError("<file>:<line>: ...")`` naming the line; ``.npy`` errors name the file and, for a
bad value, the row; published feature lists (:func:`read_feature_list`) name file and line.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

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


def read_npy_array(path: Path | str, ndims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Read a ``.npy`` feature array as ``float64``, ``[T, D]`` or ``[T, crops, D]``.

    Args:
        path: the file.
        ndims: the ranks accepted (``(2,)``: one crop per file, ``(3,)``: crops inside).

    Raises:
        ValueError: ``"<file>: ..."`` for a file that is not a ``.npy`` array (truncated, random
            bytes, ``.npz``, pickled objects), another rank or dtype, an empty axis, and
            ``"<file>: row <i>: ..."`` (``i`` 0-based) for NaN/inf or a value beyond float32.
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
    if array.ndim not in ndims or array.size == 0:
        shapes = " or ".join({2: "[T, D]", 3: "[T, crops, D]"}[n] for n in ndims)
        raise ValueError(f"{path}: expected features {shapes} with no empty axis, got shape "
                         f"{array.shape}")
    array = array.astype(np.float64)
    bad = ~(np.abs(array) <= FLOAT32_MAX)
    if bad.any():
        rows = bad.reshape(bad.shape[0], -1)
        row = int(np.flatnonzero(rows.any(axis=1))[0])
        value = float(array[row][bad[row]][0])
        if not np.isfinite(value):
            raise ValueError(f"{path}: row {row}: NaN or inf value")
        raise ValueError(f"{path}: row {row}: value {value:.4g} is outside the float32 range "
                         f"of the store (|x| <= {FLOAT32_MAX:.4g})")
    return array


def read_npy(path: Path | str) -> np.ndarray:
    """Read ``[T, D]`` or ``[T, crops, D]`` features (crops averaged) as ``float64 [T, D]``.

    Raises:
        ValueError: as :func:`read_npy_array`.
    """
    array = read_npy_array(path)
    return array.mean(axis=1) if array.ndim == 3 else array


@dataclass(frozen=True)
class ListEntry:
    """One line of a published feature list.

    Attributes:
        line: 1-based line number in the list file.
        name: the file name the line gives (folders dropped: published lists hold the
            authors' absolute paths, POSIX or Windows).
        label: the label the line gives (``None``: the line gives none).
        class_name: the class the line gives (``""``: none).
    """

    line: int
    name: str
    label: int | None = None
    class_name: str = ""


#: Class names of normal videos in the label column of published lists (UCF-Crime's
#: ``Normal``, XD-Violence's ``A``).
NORMAL_LIST_CLASSES = ("Normal", "A")
_LIST_LABEL = re.compile(r"[01]")


def _list_file_name(text: str) -> str:
    return re.split(r"[\\/]", text)[-1]


def read_feature_list(path: Path | str) -> list[ListEntry]:
    """Read a published list of feature files.

    Two forms:

    * ``.list`` / text (RTFM, UR-DMU, PEL4VAD): one path per line, optionally followed by
      whitespace and a ``0``/``1`` label;
    * CSV with a ``path,label`` header (VadCLIP): the label is a class name, ``Normal`` or
      ``A`` (XD-Violence) for normal videos, anything else (``Abuse``, ``B1-0-0``) anomalous.

    Blank lines are allowed at the end only; ``#`` starts a comment line in text lists.

    Returns:
        The entries in file order.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a malformed line, a file listed twice, or an
            empty list.
    """
    path = Path(path)
    entries: list[ListEntry] = []
    seen: dict[str, int] = {}
    csv_form: bool | None = None
    blank_at: int | None = None
    with open(path, encoding="utf-8-sig", newline=None) as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n").strip()
            if not line:
                blank_at = blank_at or line_no
                continue
            if blank_at is not None:
                raise ValueError(f"{path}:{blank_at}: blank line amid the list (allowed only at "
                                 "the end)")
            if csv_form is None:
                csv_form = [cell.strip().lower() for cell in line.split(",")] == ["path", "label"]
                if csv_form:
                    continue
            if line.startswith("#") and not csv_form:
                continue
            if csv_form:
                cells = [cell.strip() for cell in line.split(",")]
                if len(cells) != 2 or not cells[0] or not cells[1]:
                    raise ValueError(f"{path}:{line_no}: expected 'path,label', got {line!r}")
                label = 0 if cells[1] in NORMAL_LIST_CLASSES else 1
                entry = ListEntry(line_no, _list_file_name(cells[0]), label,
                                  "Normal" if label == 0 else cells[1])
            else:
                tokens = line.split()
                if len(tokens) > 2 or (len(tokens) == 2 and not _LIST_LABEL.fullmatch(tokens[1])):
                    raise ValueError(f"{path}:{line_no}: expected 'path' or 'path 0|1', got "
                                     f"{line!r}")
                entry = ListEntry(line_no, _list_file_name(tokens[0]),
                                  int(tokens[1]) if len(tokens) == 2 else None)
            if not entry.name:
                raise ValueError(f"{path}:{line_no}: no file name in {line!r}")
            if entry.name in seen:
                raise ValueError(f"{path}:{line_no}: {entry.name!r} is listed twice (first on "
                                 f"line {seen[entry.name]})")
            seen[entry.name] = line_no
            entries.append(entry)
    if not entries:
        raise ValueError(f"{path}:1: the list names no feature file")
    return entries
