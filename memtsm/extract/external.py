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

* ``rtfm`` (RTFM's I3D layout: one ``<Name>_i3d.npy`` per video, ``[T, crops, D]``, 10 crops x
  2048 for UCF-Crime and ShanghaiTech; the ``_i3d`` ending is dropped from the id) and
  ``crop-files`` (one ``[T, D]`` file per crop, ``<Name>__<k>.npy`` with ``k = 0..n-1``: UR-DMU
  and PEL4VAD's 10-crop I3D ``D = 1024``, XD-Violence's 5-crop I3D, VadCLIP's 10/5-crop CLIP
  ViT-B/16 ``D = 512``): one row per 16-frame snippet, mapped to frames as ``npy``.

Crops (``crops``, for ``rtfm`` and ``crop-files``): ``"mean"`` stores the mean over crops (one
bag per video: what RTFM's and VadCLIP's test code scores); ``"each"`` stores every crop as its
own video ``<id>__<k>`` (UR-DMU, PEL4VAD and VadCLIP train on every crop as a bag; RTFM feeds the
10 crops of a video together and averages their scores); ``"<k>"`` keeps crop ``k`` only
(VadCLIP's test lists name crop 0). The choice and the crop count are the store identity's
``crops`` field, which scoring ignores (a scorer trained on single crops scores crop means).
With ``"each"``, training's validation split keeps the crops of one video on one side
(:func:`memtsm.train.data.crop_groups`).

A second modality (``audio``: XD-Violence's VGGish ``<Name>__vggish.npy``, ``[T, 128]``) is
concatenated to every crop's rows (``feature_dim = D + 128``, ``audio`` in the identity's spec);
the two may differ by one snippet (the longer is cut), any other difference fails the video. To
keep it apart instead, import the audio files alone into their own store (``--format npy
--strip-id-suffix __vggish --feature-name vggish``).

A published list (``list_file``: RTFM/UR-DMU ``.list``, VadCLIP ``path,label`` CSV, see
:func:`~memtsm.extract.feature_files.read_feature_list`) selects the videos to import (matched by
file name, the authors' folders ignored) and may give their labels; a listed video without
files under the inputs is a failure named by the list's file and line.

Parsing is strict (:mod:`memtsm.extract.feature_files`): a damaged file fails with an error
naming the file and line instead of giving wrong values.

Length: over 500 lines because discovery, the per-format frame mappings, crops, audio, lists and
the resumable import loop share one notion of a video's id and files; the file readers are
already apart (:mod:`memtsm.extract.feature_files`). A split would be by published layout
(``rtfm``/``crop-files`` grouping) if it grows further.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from memtsm.constants import CLIP_FRAMES
from memtsm.extract.feature_files import (
    ListEntry,
    read_feature_list,
    read_npy,
    read_npy_array,
    read_segment_csv,
    read_sultani_txt,
)
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

logger = logging.getLogger(__name__)

FeatureFormat = Literal["sultani-txt", "csv", "npy", "rtfm", "crop-files"]
Normalize = Literal["none", "l2"]
FEATURE_FORMATS: tuple[str, ...] = ("sultani-txt", "csv", "npy", "rtfm", "crop-files")
NORMALIZE_CHOICES: tuple[str, ...] = ("none", "l2")
#: ``crops`` values besides a crop number (``"0"``, ``"1"``...).
CROP_CHOICES: tuple[str, ...] = ("mean", "each")
#: Formats whose files hold several crops of each video.
CROP_FORMATS: tuple[str, ...] = ("rtfm", "crop-files")
#: File-name endings searched in input folders, per format (longest first).
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "sultani-txt": (".txt",),
    "csv": (".csv.gz", ".csv"),
    "npy": (".npy",),
    "rtfm": (".npy",),
    "crop-files": (".npy",),
}
#: Id ending dropped by default, per format (RTFM names its files ``<Name>_i3d.npy``).
DEFAULT_ID_SUFFIX: dict[str, str] = {"rtfm": "_i3d"}
#: Name ending of XD-Violence's VGGish audio files (``<Name>__vggish.npy``).
AUDIO_SUFFIX = "__vggish"
#: ``<video>__<crop>`` of a per-crop file's id.
_CROP_ID_RE = re.compile(r"^(?P<video>.+)__(?P<crop>[0-9]+)$")
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
    unlisted: tuple[str, ...] = ()
    """Videos found under the inputs that the list does not name (not imported)."""


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
    """``[T, D]``, or ``[T, crops, D]`` for the crop formats."""
    clip_frames: np.ndarray
    num_frames: int
    num_frames_source: str
    last_clip_partial: bool
    audio_trimmed: bool = False


@dataclass(frozen=True)
class _Video:
    """The files of one video: one file, or one per crop (``files[k]`` is crop ``k``)."""

    video_id: str
    files: tuple[Path, ...]
    problem: str | None = None
    audio: Path | None = None
    entry: ListEntry | None = None
    list_source: str = ""


def _base_id(video_id: str, fmt: str) -> str:
    """The id without a format extension it kept to stay unique (``x.csv.gz`` -> ``x``)."""
    for suffix in FORMAT_SUFFIXES[fmt]:
        if video_id.lower().endswith(suffix) and len(video_id) > len(suffix):
            return video_id[: -len(suffix)]
    return video_id


def _strip_suffix(video_id: str, suffix: str) -> str:
    if suffix and video_id.endswith(suffix) and len(video_id) > len(suffix):
        return video_id[: -len(suffix)]
    return video_id


def parse_crops(crops: str) -> str | int:
    """``"mean"`` / ``"each"`` as they are, ``"3"`` -> crop ``3``.

    Raises:
        ValueError: anything else.
    """
    if crops in CROP_CHOICES:
        return crops
    if re.fullmatch(r"[0-9]{1,3}", crops):
        return int(crops)
    raise ValueError(f"--crops must be one of {', '.join(CROP_CHOICES)} or a crop number "
                     f"(0, 1, ...), got {crops!r}")


def group_videos(files: Sequence[tuple[str, Path]], fmt: str,
                 id_suffix: str = "") -> list[_Video]:
    """Group the files of :func:`find_feature_files` into videos (per-crop files by name).

    ``crop-files`` ids end in ``__<k>``; a video's crops must be ``0..n-1`` without a gap (a
    video that breaks this, or a file without the ending, is returned with its ``problem``).
    ``id_suffix`` is dropped from the end of every id.
    """
    videos: list[_Video] = []
    if fmt != "crop-files":
        seen: set[str] = set()
        for video_id, path in files:
            vid = _strip_suffix(video_id, id_suffix)
            problem = f"{path}: its id {vid!r} is also another file's" if vid in seen else None
            seen.add(vid)
            videos.append(_Video(vid, (path,), problem))
        return videos
    crops: dict[str, dict[int, Path]] = {}
    for video_id, path in files:
        match = _CROP_ID_RE.match(_base_id(video_id, fmt))
        if match is None:
            videos.append(_Video(video_id, (path,), f"{path}: a per-crop file must be named "
                                 "<video>__<crop>.npy (crop 0, 1, ...)"))
            continue
        vid = _strip_suffix(match["video"], id_suffix)
        crops.setdefault(vid, {})[int(match["crop"])] = path
    for vid, by_crop in sorted(crops.items()):
        paths = tuple(by_crop[k] for k in sorted(by_crop))
        missing = sorted(set(range(max(by_crop) + 1)) - set(by_crop))
        problem = (f"{paths[0].parent / vid}__<k>.npy: crop(s) {missing} missing (found "
                   f"{sorted(by_crop)})") if missing else None
        videos.append(_Video(vid, paths, problem))
    return sorted(videos, key=lambda v: v.video_id)


def _select_listed(videos: list[_Video], list_file: Path, fmt: str, id_suffix: str
                   ) -> tuple[list[_Video], list[str]]:
    """The videos the list names, with its entries; ``(videos, unlisted ids)``.

    A listed name without files becomes a video with a ``problem`` naming the list line.

    Raises:
        ValueError: a malformed list, or two videos under the inputs share a listed name.
    """
    entries = read_feature_list(list_file)
    by_name: dict[str, list[_Video]] = {}
    for video in videos:
        by_name.setdefault(PurePosixPath(video.video_id).name, []).append(video)
    chosen: dict[str, _Video] = {}
    for entry in entries:
        name = _strip_format_suffix(entry.name, fmt)
        if fmt == "crop-files":
            match = _CROP_ID_RE.match(name)
            name = match["video"] if match else name
        name = _strip_suffix(name, id_suffix)
        where = f"{list_file}:{entry.line}"
        if name in chosen:
            continue  # another crop of a listed video
        found = by_name.get(name, [])
        if len(found) > 1:
            raise ValueError(f"{where}: {entry.name!r} matches several videos under the "
                             f"inputs: {', '.join(v.video_id for v in found)}")
        if not found:
            chosen[name] = _Video(name, (), f"{where}: no feature file for {entry.name!r} "
                                  "under the inputs", entry=entry, list_source=where)
            continue
        video = found[0]
        chosen[name] = _Video(video.video_id, video.files, video.problem, entry=entry,
                              list_source=where)
    picked = {v.video_id for v in chosen.values()}
    unlisted = sorted(v.video_id for v in videos if v.video_id not in picked)
    return sorted(chosen.values(), key=lambda v: v.video_id), unlisted


def _per_clip(path: Path, n_clips: int, count: int | None, source: str, clip_len: int
              ) -> tuple[np.ndarray, int, bool]:
    """``(clip_frames, num_frames, last_clip_partial)`` of per-clip rows (the ``npy`` rule)."""
    if count is None:
        return fixed_width_frames(n_clips, clip_len, None), n_clips * clip_len, False
    if not (n_clips - 1) * clip_len < count < (n_clips + 1) * clip_len:
        raise ValueError(f"{path}: {n_clips} clips of {clip_len} frames do not match the "
                         f"video's {count} frames (per-clip features expected)")
    return fixed_width_frames(n_clips, clip_len, count), count, n_clips * clip_len > count


def _with_audio(features: np.ndarray, audio_path: Path) -> tuple[np.ndarray, bool]:
    """``features`` (``[T, D]`` or ``[T, C, D]``) with the audio rows appended to each crop.

    Returns:
        ``(features [T', ..., D + A], trimmed)``; ``T' = min(T, T_audio)`` when they differ by
        one snippet.

    Raises:
        ValueError: the audio file is bad, or its length differs by more than one snippet.
    """
    audio = read_npy_array(audio_path, (2,))
    length, audio_length = features.shape[0], audio.shape[0]
    if abs(length - audio_length) > 1:
        raise ValueError(f"{audio_path}: {audio_length} audio snippets for {length} visual "
                         "snippets (they may differ by one at most)")
    keep = min(length, audio_length)
    audio = audio[:keep]
    if features.ndim == 3:
        audio = np.broadcast_to(audio[:, None, :], (keep, features.shape[1], audio.shape[1]))
    return np.concatenate([features[:keep], audio], axis=-1), keep != length or keep != audio_length


def _read_crops(video: _Video, fmt: str) -> np.ndarray:
    """``[T, crops, D]`` of a video in a crop format.

    Raises:
        ValueError: a bad file, or crops of different shapes (naming the file).
    """
    if fmt == "rtfm":
        return read_npy_array(video.files[0], (3,))
    arrays = [read_npy_array(path, (2,)) for path in video.files]
    for path, array in zip(video.files[1:], arrays[1:]):
        if array.shape != arrays[0].shape:
            raise ValueError(f"{path}: shape {array.shape} differs from crop 0's "
                             f"{arrays[0].shape} ({video.files[0]})")
    return np.stack(arrays, axis=1)


def _parse_video(video: _Video, fmt: str, counts: dict[str, int] | None,
                 clip_len: int) -> _Parsed:
    path = video.files[0]
    # frame counts name the video, not the feature file (``x.csv.gz`` -> ``x``)
    count = counts.get(video_key(_base_id(video.video_id, fmt))) if counts is not None else None
    source = "frame-counts" if count is not None else "features"
    if fmt == "sultani-txt":
        features = read_sultani_txt(path)
        if counts is None:
            raise ValueError(f"{path}: segment features need frame counts (--frame-counts) to "
                             "map segments to frames")
        if count is None:
            raise ValueError(f"{path}: video {video_key(video.video_id)!r} is not in the frame "
                             "counts file")
        frames = sultani_segment_frames(count, features.shape[0], clip_len)
        return _Parsed(features, frames, count, source, False)
    if fmt == "csv":
        width, features = read_segment_csv(path)
        frames = _csv_segment_frames(path, features.shape[0], width, count)
        return _Parsed(features, frames, count if count is not None else int(frames[-1, 1]),
                       source, False)
    features = _read_crops(video, fmt) if fmt in CROP_FORMATS else read_npy(path)
    trimmed = False
    if video.audio is not None:
        features, trimmed = _with_audio(features, video.audio)
    frames, num_frames, partial = _per_clip(path, features.shape[0], count, source, clip_len)
    return _Parsed(features, frames, num_frames, source, partial, trimmed)


def _crop_views(video_id: str, features: np.ndarray, crops: str | int,
                path: Path) -> list[tuple[str, np.ndarray]]:
    """``(store id, [T, D])`` per record a video becomes under the crop choice."""
    if features.ndim == 2:
        return [(video_id, features)]
    if crops == "mean":
        return [(video_id, features.mean(axis=1))]
    if crops == "each":
        return [(f"{video_id}__{k}", features[:, k]) for k in range(features.shape[1])]
    assert isinstance(crops, int)
    if crops >= features.shape[1]:
        raise ValueError(f"{path}: crop {crops} asked for, the video has "
                         f"{features.shape[1]} crops")
    return [(video_id, features[:, crops])]


def _audio_files(audio_inputs: Sequence[Path | str]) -> dict[str, Path]:
    """Video id -> its ``<id>__vggish.npy`` file under ``audio_inputs``.

    Raises:
        ValueError: an audio file without the ``__vggish`` ending.
    """
    found = find_feature_files(audio_inputs, "npy")
    audio: dict[str, Path] = {}
    for audio_id, path in found:
        if not audio_id.endswith(AUDIO_SUFFIX):
            raise ValueError(f"{path}: audio files are named <video>{AUDIO_SUFFIX}.npy")
        audio[PurePosixPath(_strip_suffix(audio_id, AUDIO_SUFFIX)).name] = path
    return audio


# ------------------------------------------------------------------------------------ import


def import_features(inputs: Sequence[Path | str], out: Path | str, fmt: FeatureFormat,
                    frame_counts: Path | str | None = None, normalize: Normalize = "none",
                    labels_csv: Path | str | None = None, clip_len: int = CLIP_FRAMES,
                    feature_dim: int | None = None,
                    feature_name: str = "c3d", crops: str = "mean",
                    list_file: Path | str | None = None,
                    audio_inputs: Sequence[Path | str] = (),
                    strip_id_suffix: str | None = None) -> ImportSummary:
    """Import feature files into a feature store (resumable: stored ids are skipped).

    One bad file is reported (in the summary and as a ``{"video_id", "source", "error"}`` line
    appended to ``out/failures.jsonl``) and the others are imported; a file is parsed and checked
    completely before it is stored, so no partial video is written. ``out/import_config.json``
    records the resolved configuration.

    Args:
        inputs: files and folders (searched recursively for the format's extensions).
        out: store directory.
        fmt: one of :data:`FEATURE_FORMATS` (see the module docstring).
        frame_counts: ``Class/Name.mp4 n_frames ...`` file (UCF-Crime ``meta/*_Annotation.txt``);
            required by ``sultani-txt``.
        normalize: ``"l2"`` divides each segment by its norm (zero rows stay zero).
        labels_csv: ``video,label[,class]`` overrides of the label rule (and of the list's).
        clip_len: frames per clip of the original extractor (C3D and I3D: 16).
        feature_dim: expected ``D``; by default the store's, else the first readable file's.
        feature_name: what the features are (``c3d``, ``i3d``...). With ``normalize``,
            ``clip_len``, the audio modality and the crop view it is the store's identity
            (layout ``imported:<name>``), so features of one kind imported from different file
            formats (e.g. Sultani txt for the test set, CSV for the training set) can be trained
            and evaluated together; the file format is recorded as provenance.
        crops: ``"mean"``, ``"each"`` or a crop number, for the crop formats (see the module
            docstring).
        list_file: a published list naming the videos to import (and maybe their labels).
        audio_inputs: files or folders of ``<Name>__vggish.npy`` audio features to concatenate.
        strip_id_suffix: ending dropped from ids (default :data:`DEFAULT_ID_SUFFIX`).

    Returns:
        Imported, skipped, failed and (with a list) unlisted ids.

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
    crop_choice = parse_crops(crops)
    if crop_choice != "mean" and fmt not in CROP_FORMATS:
        raise ValueError(f"--crops {crops}: only the crop formats ({', '.join(CROP_FORMATS)}) "
                         f"have crops; {fmt} files are averaged over any crops they hold")
    if audio_inputs and fmt in ("sultani-txt", "csv"):
        raise ValueError(f"--audio: audio snippets can only be joined to per-clip features "
                         f"(npy, rtfm, crop-files), not to {fmt} segments")
    id_suffix = DEFAULT_ID_SUFFIX.get(fmt, "") if strip_id_suffix is None else strip_id_suffix
    from memtsm import __version__

    out = Path(out)
    videos = group_videos(find_feature_files(inputs, fmt), fmt, id_suffix)
    unlisted: list[str] = []
    if list_file is not None:
        videos, unlisted = _select_listed(videos, Path(list_file), fmt, id_suffix)
        if unlisted:
            logger.info("%d video(s) under the inputs are not in %s and were left out",
                        len(unlisted), list_file)
    audio = _audio_files(audio_inputs) if audio_inputs else None
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
        "crops": crops,
        "list_file": str(Path(list_file).resolve()) if list_file is not None else None,
        "audio_inputs": [str(Path(p).resolve()) for p in audio_inputs],
        "strip_id_suffix": id_suffix,
        "memtsm_version": __version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / IMPORT_CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")
    existing = read_store_identity(out)
    dim = feature_dim if feature_dim is not None else \
        (existing.feature_dim if existing is not None else None)
    crop_count: int | None = None
    if existing is not None and existing.crops is not None:
        crop_count = existing.crops.get("count")
    provenance = {"memtsm_version": __version__, "import": config}
    crop_use = crop_choice if isinstance(crop_choice, str) else f"crop {crop_choice}"

    def identity(feature_dim: int, count: int | None) -> FeatureIdentity:
        view = {"count": count, "use": crop_use} if fmt in CROP_FORMATS else None
        return FeatureIdentity.of_import(feature_name, normalize, clip_len, feature_dim,
                                         crops=view, audio="vggish" if audio else None)

    imported: list[str] = []
    skipped: list[str] = []
    failures: list[Failure] = []
    writer: FeatureStoreWriter | None = None
    with contextlib.ExitStack() as stack, \
            open(out / FAILURES_NAME, "a", encoding="utf-8") as failure_log:

        def fail(video_id: str, path: Path | str, error: str) -> None:
            failure = Failure(video_id, str(path), error)
            failures.append(failure)
            failure_log.write(failure.to_json() + "\n")
            failure_log.flush()

        done: set[str] = set()
        if existing is not None and dim is not None:
            # refuse a different configuration before anything, even if every id is stored
            writer = stack.enter_context(FeatureStoreWriter(out, identity(dim, crop_count),
                                                            provenance))
            done = set(FeatureStore(out).video_ids)
        for video in videos:
            path: Path | str = video.files[0] if video.files else video.list_source
            stored_as = _record_ids(video.video_id, crop_choice, crop_count)
            if video.files and stored_as is not None and set(stored_as) <= done:
                skipped.append(video.video_id)
                continue
            try:
                if video.problem is not None:
                    raise ValueError(video.problem)
                if audio is not None:
                    name = PurePosixPath(video.video_id).name
                    if name not in audio:
                        raise ValueError(f"{path}: no audio file {name}{AUDIO_SUFFIX}.npy under "
                                         "the audio inputs")
                    video = dataclasses.replace(video, audio=audio[name])
                parsed = _parse_video(video, fmt, counts, clip_len)
                count = parsed.features.shape[1] if parsed.features.ndim == 3 else None
                if crop_count is not None and count != crop_count:
                    raise ValueError(f"{path}: {count} crops, the store's videos have "
                                     f"{crop_count}")
                views = _crop_views(video.video_id, parsed.features, crop_choice, Path(path))
                label = _label_of(video, _base_id(video.video_id, fmt), overrides)
                records = []
                for record_id, features in views:
                    if dim is not None and features.shape[1] != dim:
                        raise ValueError(f"{path}: feature dim {features.shape[1]} != {dim}")
                    if normalize == "l2":
                        features = l2_normalize(features)
                    records.append(VideoRecord(
                        video_id=record_id, features=features.astype(np.float32),
                        clip_frames=parsed.clip_frames, fps=0.0,  # unknown: not in the files
                        num_frames=parsed.num_frames,
                        source=str(path), label=label.label, class_name=label.class_name,
                        last_clip_partial=parsed.last_clip_partial,
                        extra={"num_frames_source": parsed.num_frames_source,
                               "import_format": fmt,
                               **({"audio_trimmed": True} if parsed.audio_trimmed else {})},
                        label_rule=label.rule))
                if writer is None:
                    dim, crop_count = records[0].features.shape[1], count
                    writer = stack.enter_context(FeatureStoreWriter(
                        out, identity(dim, crop_count), provenance))
                for record in records:
                    if record.video_id not in done:
                        writer.add(record)
            except _READ_ERRORS as exc:
                if isinstance(exc, StoreError) and writer is None:
                    raise
                message = str(exc)
                fail(video.video_id, path,
                     message if str(path) in message else f"{path}: {message}")
                continue
            imported.append(video.video_id)
    return ImportSummary(out, tuple(imported), tuple(skipped), tuple(failures),
                         tuple(unlisted))


def _record_ids(video_id: str, crops: str | int, count: int | None) -> list[str] | None:
    """The store ids a video becomes; ``None`` for ``each`` before the crop count is known."""
    if crops == "each":
        return [f"{video_id}__{k}" for k in range(count)] if count else None
    return [video_id]


def _label_of(video: _Video, base_id: str, overrides: dict[str, VideoLabel]) -> VideoLabel:
    """``--labels`` override, else the list's label, else the label rule of the id."""
    by_rule = resolve_label(base_id, overrides)
    if by_rule.rule == "labels-csv" or video.entry is None or video.entry.label is None:
        return by_rule
    class_name = video.entry.class_name or (by_rule.class_name if by_rule.label is not None
                                            else "")
    return VideoLabel(video.entry.label, class_name, "list")
