"""Finding videos under the inputs, giving them unique ids, and labelling them.

A video id is the input's path relative to the input root, without extension, with ``/``
separators (``Assault/Assault018_x264``); a single file given directly has its stem as id, and a
frame folder given directly has its folder name. Ids are unique within one run.

Label rule (UCF-Crime convention): a path component or file name starting with ``Normal`` means
normal (label 0, class ``Normal``); otherwise the class is the video's parent folder (label 1), or,
for a video with no folder, the leading letters of a UCF-Crime style name (``Assault018_x264`` ->
``Assault``). Anything else has no label. A ``video,label[,class]`` CSV overrides the rule.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def natural_key(name: str) -> tuple:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (other files are ignored)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def validate_video_id(video_id: str) -> str:
    """Check that a video id is a safe relative POSIX path and return it.

    Raises:
        ValueError: empty, absolute, containing ``.``/``..`` components, backslashes or NULs.
    """
    if not video_id or "\x00" in video_id or "\\" in video_id:
        raise ValueError(f"invalid video id {video_id!r}")
    path = PurePosixPath(video_id)
    if path.is_absolute() or any(part in ("", ".", "..") for part in video_id.split("/")):
        raise ValueError(f"invalid video id {video_id!r}: must be a relative path without . or ..")
    return video_id


VIDEO_SUFFIXES = frozenset({
    ".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".ts",
    ".3gp", ".mts",
})
NORMAL_PREFIX = "normal"
NORMAL_CLASS = "Normal"
_UCF_NAME = re.compile(r"^(?P<cls>[A-Za-z]+?)_?\d+(_x264)?$")


@dataclass(frozen=True)
class VideoSource:
    """One video to process: a file, or a folder of frame images."""

    video_id: str
    path: Path
    is_frame_folder: bool


@dataclass(frozen=True)
class VideoLabel:
    """Video-level label: 1 anomaly, 0 normal, ``None`` unknown."""

    label: int | None
    class_name: str = ""


def strip_video_suffix(name: str) -> str:
    """Drop a known video extension (``a/x.mp4`` -> ``a/x``); other dots are kept."""
    suffix = PurePosixPath(name).suffix
    return name[: -len(suffix)] if suffix and suffix.lower() in VIDEO_SUFFIXES else name


def video_key(name: str) -> str:
    """Matching key of a video name or id: last path component, video extension stripped.

    ``Assault/Assault018_x264`` and ``Assault018_x264.mp4`` both give ``Assault018_x264`` (how
    annotation and frame-count files name the videos of a store). Only known video extensions
    (:data:`VIDEO_SUFFIXES`) are stripped, so ids containing dots keep them.
    """
    return PurePosixPath(strip_video_suffix(name.replace("\\", "/"))).name


def read_frame_counts(path: Path | str) -> dict[str, int]:
    """Read ``Class/Name.mp4 n_frames ...`` lines (UCF-Crime ``meta/*_Annotation.txt``).

    Args:
        path: text file, one video per line; tokens after the frame count are ignored.

    Returns:
        :func:`video_key` of each video (``Arson022_x264``) -> its frame count.

    Raises:
        ValueError: ``"<file>:<line>: ..."`` for a malformed line or a repeated video.
    """
    path = Path(path)
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8", newline=None) as handle:
        lines = [line.rstrip("\n") for line in handle]  # not splitlines(): \x1e is no line end
    for line_no, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 2:
            raise ValueError(f"{path}:{line_no}: expected 'video n_frames ...', got {line!r}")
        if not re.fullmatch(r"[+-]?[0-9]+", tokens[1]):
            raise ValueError(f"{path}:{line_no}: frame count must be an integer, got "
                             f"{tokens[1]!r}")
        count = int(tokens[1])
        if count <= 0:
            raise ValueError(f"{path}:{line_no}: frame count must be positive, got {count}")
        key = video_key(tokens[0])
        if not key:
            raise ValueError(f"{path}:{line_no}: empty video name")
        if key in counts:
            raise ValueError(f"{path}:{line_no}: video {key!r} is listed twice")
        counts[key] = count
    return counts


def walk_tree(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """Every folder under ``root`` (``root`` first, then depth first by name) with its file names.

    The one folder walk of memtsm (video discovery and feature import): symbolic links to
    folders are followed, in or out of the tree (a split is often a folder of links to the data),
    but each real folder is visited once, so a link loop or a second link to the same folder
    adds nothing. Hidden entries (``.git``, macOS ``._clip.mp4`` companions) are skipped. Names
    are sorted.
    """
    seen = {os.path.realpath(root)}
    for folder, subdirs, files in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(subdirs):
            real = os.path.realpath(os.path.join(folder, name))
            if name.startswith(".") or real in seen:
                continue
            seen.add(real)
            kept.append(name)
        subdirs[:] = kept
        yield Path(folder), sorted(f for f in files if not f.startswith("."))


def _holds_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())


def _relative_id(path: Path, root: Path, strip_suffix: bool) -> str:
    rel = PurePosixPath(path.relative_to(root).as_posix())
    if strip_suffix:
        rel = rel.with_suffix("")
    return validate_video_id(str(rel))


def discover_videos(inputs: list[Path]) -> list[VideoSource]:
    """List the videos under ``inputs`` (files, video folders searched recursively, frame folders).

    Folders are walked by :func:`walk_tree` (symbolic links followed, no loops). Returns sources
    sorted by id.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: two inputs map to the same id.
    """
    found: dict[str, VideoSource] = {}

    def add(source: VideoSource) -> None:
        other = found.get(source.video_id)
        if other is not None:
            raise ValueError(f"two inputs map to video id {source.video_id!r}: {other.path} and "
                             f"{source.path}; pass their common parent folder instead")
        found[source.video_id] = source

    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_file():
            add(VideoSource(validate_video_id(path.stem or path.name), path, False))
            continue
        if _holds_images(path):
            add(VideoSource(validate_video_id(path.resolve().name), path, True))
            continue
        for folder, files in walk_tree(path):
            if folder != path and any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
                add(VideoSource(_relative_id(folder, path, False), folder, True))
            for name in files:
                file = folder / name
                if file.suffix.lower() in VIDEO_SUFFIXES:
                    add(VideoSource(_relative_id(file, path, True), file, False))
    return sorted(found.values(), key=lambda s: s.video_id)


def read_video_list(path: Path) -> list[str]:
    """Video ids from a list file, one path per line (``Abuse/Abuse001_x264.mp4``).

    This is the format of UCF-Crime's ``Anomaly_Train.txt`` / ``Anomaly_Test.txt``; blank and
    ``#`` lines are skipped.

    Raises:
        ValueError: an unsafe path, naming the file and line.
    """
    ids = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        name = line.strip().replace("\\", "/")
        if not name or name.startswith("#"):
            continue
        try:
            ids.append(validate_video_id(strip_video_suffix(name)))
        except ValueError as exc:
            raise ValueError(f"{path}:{line_no}: {exc}") from None
    return ids


def infer_label(video_id: str) -> VideoLabel:
    """Label by the UCF-Crime path convention (see the module docstring)."""
    parts = PurePosixPath(video_id).parts
    if any(part.lower().startswith(NORMAL_PREFIX) for part in parts):
        return VideoLabel(0, NORMAL_CLASS)
    if len(parts) >= 2:
        return VideoLabel(1, parts[-2])
    match = _UCF_NAME.match(parts[-1])
    if match:
        return VideoLabel(1, match["cls"])
    return VideoLabel(None, "")


def read_labels_csv(path: Path) -> dict[str, VideoLabel]:
    """Read ``video,label[,class]`` rows (a header row is allowed).

    ``video`` is a video id, or a file name whose stem is matched against the ids' last
    component. Raises ``ValueError`` naming the file and line for malformed rows.
    """
    labels: dict[str, VideoLabel] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if line_no == 1 and row[0].strip().lower() in ("video", "video_id", "id", "name"):
                continue
            if len(row) not in (2, 3):
                raise ValueError(f"{path}:{line_no}: expected 'video,label[,class]', got {row!r}")
            video, label_text = row[0].strip(), row[1].strip()
            if label_text not in ("0", "1"):
                raise ValueError(f"{path}:{line_no}: label must be 0 or 1, got {label_text!r}")
            if not video:
                raise ValueError(f"{path}:{line_no}: empty video name")
            key = strip_video_suffix(video.replace("\\", "/"))
            try:
                validate_video_id(key)
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from None
            if key in labels:
                raise ValueError(f"{path}:{line_no}: video {video!r} is listed twice")
            class_name = row[2].strip() if len(row) == 3 else ""
            label = int(label_text)
            labels[key] = VideoLabel(label, class_name or (NORMAL_CLASS if label == 0 else ""))
    return labels


def resolve_label(video_id: str, overrides: dict[str, VideoLabel] | None = None) -> VideoLabel:
    """Label from ``overrides`` (by id, else by last id component), else :func:`infer_label`."""
    if overrides:
        if video_id in overrides:
            return overrides[video_id]
        name = PurePosixPath(video_id).name
        if name in overrides:
            return overrides[name]
    return infer_label(video_id)


def source_bytes(source: VideoSource) -> int:
    """Size on disk of a video file, or of a frame folder's images (the work it takes)."""
    if source.is_frame_folder:
        return sum(p.stat().st_size for p in image_files(source.path))
    return source.path.stat().st_size if source.path.is_file() else 0


def shard_sources(sources: list[VideoSource], num_shards: int, shard_index: int
                  ) -> list[VideoSource]:
    """The part ``shard_index`` of ``num_shards`` disjoint parts, balanced by bytes.

    Deterministic for the same list whatever the order given: videos are taken largest first
    (ties by id), each to the part with the fewest bytes so far (ties to the lowest index).
    Every worker computes the same split, so together they cover every video exactly once.
    Returns the part sorted by id.
    """
    if num_shards == 1:
        return sorted(sources, key=lambda s: s.video_id)
    loads = [0] * num_shards
    mine: list[VideoSource] = []
    sized = sorted(((source_bytes(s), s) for s in sources), key=lambda p: (-p[0], p[1].video_id))
    for size, source in sized:
        part = min(range(num_shards), key=lambda i: (loads[i], i))
        loads[part] += size
        if part == shard_index:
            mine.append(source)
    return sorted(mine, key=lambda s: s.video_id)
