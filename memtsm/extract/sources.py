"""Finding videos under the inputs, giving them unique ids, and labelling them.

A video id is the input's path relative to the input root, without extension, with ``/``
separators (``Assault/Assault018_x264``); a single file given directly has its stem as id, and a
frame folder given directly has its folder name. Ids are unique within one run, by a rule that
never fails the run (:func:`discover_videos`): the same file reached twice (passed twice, given
directly and inside a folder, or through a link) is one video; distinct files whose ids would
be equal keep their extension in the id (``clip.avi``, ``clip.mkv``) and, if that is not
enough, as many parent folders as it takes (``Fighting/x.mp4``, ``Assault/x.mp4``). Same
inputs, same ids; the new ids are logged, once, as a warning.

Label rules, in order; the first that applies gives the label and is recorded with it
(:attr:`VideoLabel.rule`, one of :data:`LABEL_RULES`):

1. ``labels-csv``: a ``video,label[,class]`` row of ``--labels``;
2. ``normal-name``: a path component or file name starting with ``Normal`` (UCF-Crime's
   ``Normal_Videos_event/...``, ``Training_Normal_Videos/...``, ``Normal_Videos_003_x264``)
   means normal (label 0, class ``Normal``);
3. ``class-folder``: the video's parent folder is a UCF-Crime anomaly class
   (:data:`UCF_CRIME_CLASSES`, any case), says so (starts with ``Anomal`` or ``Abnormal``), or
   is the start of the file name followed by a digit, ``_``, ``-``, a space or nothing
   (``Running/Running003.mp4``): label 1, class the folder's name;
4. ``ucf-name``: the file name is UCF-Crime style, letters then digits then ``_x264``
   (``Assault018_x264`` -> ``Assault``), or a UCF-Crime class then digits (``Arson7``):
   label 1, class the leading letters;
5. ``none``: anything else has no label (``None``): training skips it, and the label summary
   logged at the start of ``extract`` lists it.

XD-Violence names (``Bad.Boys.1995__#01-11-55_01-12-40_label_B2-0-0``) follow ``xd-name``, tried
after ``ucf-name``: ``_label_A`` is normal, any other first class (``B1``...``B6``, ``G``)
anomalous with that class; ShanghaiTech ids (``01_0014``: anomalous, ``01_001``: normal, see
:data:`_SHANGHAITECH_NAME`) follow ``shanghaitech-name``, tried last. ``import-features
--list`` adds ``list``: the label column of a published feature list, taken after
``labels-csv`` and before the name rules (:mod:`memtsm.extract.external`).

Rules 3 and 4 are deliberately narrow: an arbitrary folder (``my footage/sub dir/Explosion 001
(copy).mp4``) is no evidence of an anomaly, so such a video is unlabelled rather than guessed
anomalous with class ``sub dir``; give it a label with ``--labels``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from memtsm.constants import NORMAL_CLASS

logger = logging.getLogger(__name__)

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
#: The 13 anomaly classes of UCF-Crime (Sultani et al., CVPR 2018).
UCF_CRIME_CLASSES = ("Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
                     "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing",
                     "Vandalism")
_UCF_CLASS_KEYS = frozenset(name.lower() for name in UCF_CRIME_CLASSES)
_UCF_NAME = re.compile(r"^(?P<cls>[A-Za-z]+?)_?\d+(?P<x264>_x264)?$")
#: Folder-name prefixes that say "anomalous" outright (``Anomaly/``, ``abnormal_clips/``).
_ANOMALY_FOLDERS = ("anomal", "abnormal")
#: Rules that can give a video its label (see the module docstring), in the order tried.
LABEL_RULES = ("labels-csv", "normal-name", "class-folder", "ucf-name", "none", "list", "xd-name",
               "shanghaitech-name")


@dataclass(frozen=True)
class VideoSource:
    """One video to process: a file, or a folder of frame images."""

    video_id: str
    path: Path
    is_frame_folder: bool


@dataclass(frozen=True)
class VideoLabel:
    """Video-level label: 1 anomaly, 0 normal, ``None`` unknown, and the rule that gave it.

    ``rule`` is one of :data:`LABEL_RULES`; ``""`` when not known (stores written before the
    rule was recorded).
    """

    label: int | None
    class_name: str = ""
    rule: str = ""


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


def _file_identity(path: Path) -> tuple[int, int] | str:
    """What makes two paths the same file or folder: device and inode (links, hard links)."""
    try:
        stat = path.stat()
    except OSError:
        return os.path.realpath(path)
    return (stat.st_dev, stat.st_ino)


def _folders_above(video_id: str, path: Path) -> tuple[str, ...]:
    """Names of the folders above the part of ``path`` that ``video_id`` already names."""
    parts = Path(os.path.abspath(path)).parts  # parts[0] is the anchor (``/``)
    return parts[1:max(1, len(parts) - len(video_id.split("/")))]


def unique_ids(candidates: Iterable[tuple[str, str, Path]], what: str = "video"
               ) -> list[tuple[str, Path]]:
    """Give distinct paths distinct ids, by the rule of the module docstring; never fails.

    Args:
        candidates: ``(id, id with extension, path)`` in input order. The same file (by device
            and inode) listed again is dropped. Distinct paths sharing an id all keep their
            extension (the second element) and, when that is not enough, all take as many of
            their parent folders as it takes to tell them apart (``Fighting/x.mp4``,
            ``Assault/x.mp4``). An id still equal to another after that (only when the new id
            is already someone else's) gets ``~2``, ``~3``... in input order.
        what: noun for the log (``video``, ``feature file``).

    Returns:
        ``(id, path)`` of each distinct path, in input order. The new ids are logged in one
        WARNING, the duplicates dropped in one INFO line.
    """
    kept: list[tuple[str, str, Path]] = []
    seen: dict[tuple[int, int] | str, Path] = {}
    duplicates: list[str] = []
    for video_id, long_id, path in candidates:
        key = _file_identity(path)
        if key in seen:
            duplicates.append(f"{path} (same file as {seen[key]})")
            continue
        seen[key] = path
        kept.append((video_id, long_id, path))
    if duplicates:
        logger.info("%d %s input(s) reached twice, taken once: %s", len(duplicates), what,
                    "; ".join(duplicates))
    groups: dict[str, list[int]] = {}
    for number, (video_id, _, _) in enumerate(kept):
        groups.setdefault(video_id, []).append(number)
    wanted = [video_id for video_id, _, _ in kept]
    for members in groups.values():
        if len(members) < 2:
            continue
        above = {i: _folders_above(kept[i][0], kept[i][2]) for i in members}
        depth = 0
        while True:
            names = {i: "/".join((*above[i][len(above[i]) - depth:], kept[i][1]))
                     if depth else kept[i][1] for i in members}
            if len(set(names.values())) == len(members) or \
                    depth >= max(len(folders) for folders in above.values()):
                break
            depth += 1
        for i in members:
            wanted[i] = names[i]
    counts = Counter(wanted)
    used = {name for name in wanted if counts[name] == 1}
    result: list[tuple[str, Path]] = []
    renamed: list[str] = []
    for (video_id, _, path), name in zip(kept, wanted):
        final = name
        if counts[name] > 1:
            number = 2
            while final in used:
                final, number = f"{name}~{number}", number + 1
            used.add(final)
        if final != video_id:
            renamed.append(f"{final} = {path}")
        result.append((validate_video_id(final), path))
    if renamed:
        logger.warning("%ss whose ids would be equal keep their extension, and parent folders "
                       "where needed (new ids: %s)", what, "; ".join(renamed))
    return result


def discover_videos(inputs: list[Path]) -> list[VideoSource]:
    """List the videos under ``inputs`` (files, video folders searched recursively, frame folders).

    Folders are walked by :func:`walk_tree` (symbolic links followed, no loops). Ids follow the
    rule of the module docstring and are always unique: the same file reached twice is one
    video (the first id it was reached by); distinct files whose ids would collide keep their
    extension (``clip.avi`` and ``clip.mkv``) and, if needed, their parent folders
    (:func:`unique_ids`; same inputs, same ids), logged once at WARNING. Returns sources sorted
    by id.

    Raises:
        FileNotFoundError: an input does not exist.
    """
    candidates: list[tuple[str, str, Path, bool]] = []

    def add(video_id: str, long_id: str, path: Path, is_frame_folder: bool) -> None:
        candidates.append((validate_video_id(video_id), long_id, path, is_frame_folder))

    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_file():
            add(path.stem or path.name, path.name, path, False)
            continue
        if _holds_images(path):
            name = path.resolve().name
            add(name, name, path, True)
            continue
        for folder, files in walk_tree(path):
            if folder != path and any(Path(f).suffix.lower() in IMAGE_SUFFIXES for f in files):
                folder_id = _relative_id(folder, path, False)
                add(folder_id, folder_id, folder, True)
            for name in files:
                file = folder / name
                if file.suffix.lower() in VIDEO_SUFFIXES:
                    add(_relative_id(file, path, True), _relative_id(file, path, False), file,
                        False)
    is_folder = {path: flag for _, _, path, flag in candidates}
    ids = unique_ids((video_id, long_id, path) for video_id, long_id, path, _ in candidates)
    return sorted((VideoSource(video_id, path, is_folder[path]) for video_id, path in ids),
                  key=lambda s: s.video_id)


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


#: XD-Violence names: ``<movie or v=id>__#<times>_label_<classes>``, ``A`` for normal, else
#: ``B1`` (fighting), ``B2`` (shooting), ``B4`` (riot), ``B5`` (abuse), ``B6`` (car accident),
#: ``G`` (explosion) first.
_XD_NAME = re.compile(r"__#.*_label_(?P<cls>A|B[1-6]|G)(?:-|$)")


#: ShanghaiTech ids ``<scene 01-13>_<clip>``: the original test videos (``01_0014``, four
#: digits) all hold anomalies, the training videos (``01_001``, three) none; the weakly
#: supervised split (Zhong et al. 2019) draws both of its sides from the two.
_SHANGHAITECH_NAME = re.compile(r"(?:0[1-9]|1[0-3])_(?P<clip>[0-9]{3,4})")


def _names_class_folder(folder: str, name: str) -> bool:
    """``Running/Running003`` or ``Assault/x``: the folder is the video's class (rule 3)."""
    if folder.lower() in _UCF_CLASS_KEYS or folder.lower().startswith(_ANOMALY_FOLDERS):
        return True
    rest = name[len(folder):] if name.lower().startswith(folder.lower()) else None
    return rest is not None and (rest == "" or rest[0].isdigit() or rest[0] in "_- ")


def infer_label(video_id: str) -> VideoLabel:
    """Label by the path rules 2-5 of the module docstring (``rule`` says which applied)."""
    parts = PurePosixPath(video_id).parts
    name = strip_video_suffix(parts[-1])
    if any(part.lower().startswith(NORMAL_PREFIX) for part in parts):
        return VideoLabel(0, NORMAL_CLASS, "normal-name")
    if len(parts) >= 2 and _names_class_folder(parts[-2], name):
        return VideoLabel(1, parts[-2], "class-folder")
    match = _UCF_NAME.match(name)
    if match and (match["x264"] or match["cls"].lower() in _UCF_CLASS_KEYS):
        return VideoLabel(1, match["cls"], "ucf-name")
    match = _XD_NAME.search(name)
    if match:
        normal = match["cls"] == "A"
        return VideoLabel(0 if normal else 1, NORMAL_CLASS if normal else match["cls"], "xd-name")
    match = _SHANGHAITECH_NAME.fullmatch(name)
    if match:
        anomalous = len(match["clip"]) == 4
        return VideoLabel(int(anomalous), "" if anomalous else NORMAL_CLASS, "shanghaitech-name")
    return VideoLabel(None, "", "none")


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
            labels[key] = VideoLabel(label, class_name or (NORMAL_CLASS if label == 0 else ""),
                                     "labels-csv")
    return labels


def resolve_label(video_id: str, overrides: dict[str, VideoLabel] | None = None) -> VideoLabel:
    """Label from ``overrides``, else :func:`infer_label`; ``rule`` says which rule gave it.

    An override matches by id, by id without a video extension (ids that kept theirs,
    ``clip.avi``), by last id component, or by that component without its extension.
    """
    if overrides:
        name = PurePosixPath(video_id).name
        for key in (video_id, strip_video_suffix(video_id), name, strip_video_suffix(name)):
            if key in overrides:
                return overrides[key]
    return infer_label(video_id)


def label_summary(labels: Mapping[str, VideoLabel]) -> str:
    """What the label rules decided, one part per (label, class, rule) with its count.

    Args:
        labels: video id -> its label.

    Returns:
        ``labels of 5 videos: anomalous Assault 2 (rule class-folder); normal 2 (rule
        normal-name); unlabelled 1 (no rule matched: a/b; set them with --labels)``.
    """
    counts = Counter((label.label, label.class_name, label.rule) for label in labels.values())
    order = {1: 0, 0: 1, None: 2}
    parts = []
    for (label, class_name, rule), count in sorted(
            counts.items(), key=lambda item: (order[item[0][0]], item[0][1], item[0][2])):
        if label is None:
            ids = [video_id for video_id, got in labels.items()
                   if got.label is None and got.rule == rule]
            shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            why = ("no rule matched" if rule == "none" else f"rule {rule or 'not recorded'}")
            parts.append(f"unlabelled {count} ({why}: {shown}; set them with --labels)")
            continue
        kind = "anomalous" if label == 1 else "normal"
        what = kind if class_name in ("", NORMAL_CLASS) and label == 0 else \
            f"{kind} {class_name or '(no class)'}"
        parts.append(f"{what} {count} (rule {rule or 'not recorded'})")
    return f"labels of {len(labels)} videos: " + "; ".join(parts)


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
