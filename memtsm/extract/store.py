"""Sharded HDF5 feature store: writer (crash-safe) and reader.

Layout of a store directory::

    store.json          identity + provenance of the store (human-readable copy of root attrs)
    shard-00000.h5      completed shards (a shard is written as *.h5.tmp and renamed when done)
    index.jsonl         one line per video: {"video_id", "shard", "num_clips", "label", ...}
    failures.jsonl      videos that could not be processed, with the reason (written by callers)

Inside a shard every video is an HDF5 group at the path given by its id (``Assault/Assault018``)
holding ``features [T, D]`` and ``clip_frames [T, 2]`` (``[start, end)`` frame indices, 0-based,
end exclusive) plus attributes ``video_id``, ``fps``, ``num_frames``, ``width``, ``height``,
``source``, ``label`` (absent when unknown), ``class_name``, ``label_rule`` (the rule of
:mod:`memtsm.extract.sources` that gave the label; absent in stores written before it was
recorded, read as ``""``) and ``last_clip_partial``. Root
attributes hold the store's identity (``identity`` JSON: what makes features interchangeable)
and provenance (versions, configs). Any group with a ``features`` dataset is one video, so the
store is readable with plain h5py.

Only the completed shards are the source of truth: the index is rebuilt from them whenever it does
not match, and temporary shards left by an interrupted run are discarded.

Length: over 500 lines because the writer, the reader and the index share the on-disk
format's private helpers (group completeness, index lock); split, those would become public.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from memtsm.constants import DEFAULT_SHARD_BYTES, STORE_FORMAT_VERSION
from memtsm.extract.identity import FeatureIdentity, describe_diff
from memtsm.extract.sources import validate_video_id
from memtsm.runtime.files import atomic_write_text

INDEX_NAME = "index.jsonl"
STORE_META_NAME = "store.json"
FAILURES_NAME = "failures.jsonl"
DEFAULT_SHARD_PREFIX = "shard"
_SHARD_RE = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5,})\.h5$")
_RESERVED_ATTRS = ("video_id", "fps", "num_frames", "width", "height", "source", "label",
                   "class_name", "label_rule", "last_clip_partial")
#: What a failed read of a damaged shard says to do.
VERIFY_HINT = "run `memtsm features verify {root}` to check the whole store"


@dataclass(frozen=True)
class Failure:
    """An input that could not be stored: one line of ``failures.jsonl``."""

    video_id: str
    source: str
    error: str

    def to_json(self) -> str:
        """The ``failures.jsonl`` line (without the newline)."""
        return json.dumps(asdict(self), ensure_ascii=False)


class StoreError(Exception):
    """The store is missing, inconsistent, or incompatible with the requested write."""


class ShardReadError(StoreError, OSError):
    """A shard or one of its videos cannot be read back (damaged, truncated, checksum failure).

    Also an :class:`OSError`, as the h5py error it replaces was, so callers that handled read
    failures as ``OSError`` still do. The message names the shard file and the video and says to
    run ``memtsm features verify``.
    """


@dataclass(frozen=True)
class VideoRecord:
    """Features of one video, as stored.

    Attributes:
        features: ``[T, D]`` one vector per clip.
        clip_frames: ``int64 [T, 2]`` ``[start, end)`` frame indices of each clip.
    """

    video_id: str
    features: np.ndarray
    clip_frames: np.ndarray
    fps: float
    num_frames: int
    width: int = 0
    height: int = 0
    source: str = ""
    label: int | None = None
    class_name: str = ""
    last_clip_partial: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    label_rule: str = ""

    def __post_init__(self) -> None:
        validate_video_id(self.video_id)
        if self.features.ndim != 2:
            raise ValueError(f"{self.video_id}: features must be [T, D], got {self.features.shape}")
        if self.clip_frames.shape != (self.features.shape[0], 2):
            raise ValueError(f"{self.video_id}: clip_frames {self.clip_frames.shape} does not "
                             f"match {self.features.shape[0]} clips")
        if self.features.shape[0] == 0:
            raise ValueError(f"{self.video_id}: no clips")
        if not np.isfinite(self.features).all():
            raise ValueError(f"{self.video_id}: features contain NaN or inf")
        if self.label not in (None, 0, 1):
            raise ValueError(f"{self.video_id}: label must be 0, 1 or None, got {self.label!r}")

    @property
    def num_clips(self) -> int:
        """Number of clips ``T``."""
        return int(self.features.shape[0])


@dataclass(frozen=True)
class VideoEntry:
    """One line of the index: where a video lives and what it is."""

    video_id: str
    shard: str
    num_clips: int
    num_frames: int
    label: int | None
    class_name: str
    label_rule: str = ""  # absent from indexes written before it was recorded

    def to_json(self) -> str:
        """Serialise as one JSON line."""
        return json.dumps(self.__dict__, ensure_ascii=False)


def _shard_number(name: str, prefix: str | None = None) -> int | None:
    match = _SHARD_RE.match(name)
    if match is None or (prefix is not None and match["prefix"] != prefix):
        return None
    return int(match["number"])


def completed_shards(root: Path) -> list[Path]:
    """Completed shard files of a store, sorted by name."""
    return sorted(p for p in Path(root).glob("*.h5") if _shard_number(p.name) is not None)


def _json_attr(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _read_entries(shard: Path) -> list[VideoEntry]:
    with h5py.File(shard, "r") as handle:
        return _entries_in(handle, shard.name)


def _entries_in(handle: h5py.File, shard_name: str) -> list[VideoEntry]:
    """Index entries of the video groups in an open shard."""
    entries: list[VideoEntry] = []

    def visit(_name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "features" in obj:
            attrs = obj.attrs
            entries.append(VideoEntry(
                video_id=str(attrs["video_id"]),
                shard=shard_name,
                num_clips=int(obj["features"].shape[0]),
                num_frames=int(attrs["num_frames"]),
                label=int(attrs["label"]) if "label" in attrs else None,
                class_name=str(attrs.get("class_name", "")),
                label_rule=str(attrs.get("label_rule", "")),
            ))

    handle.visititems(visit)
    return entries


def _locked_index(path: Path) -> int:
    """Open ``path`` for appending under an exclusive lock; return the descriptor.

    Parallel workers append to one index, and a reader may replace a stale index with a rebuilt
    file meanwhile: after taking the lock, the descriptor must still be the file at ``path``.
    Closing the descriptor releases the lock.
    """
    while True:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(path)):
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


def _index_finished_groups(handle: h5py.File, shard_name: str) -> list[VideoEntry]:
    """Delete the video groups an interrupt left unfinished; index entries of the others.

    A video group holds datasets (or nothing yet); it is finished once its ``video_id``
    attribute, written last, names it.
    """
    unfinished: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Group):
            return
        holds_data = any(isinstance(child, h5py.Dataset) for child in obj.values())
        if (holds_data or len(obj) == 0) and not (
                "features" in obj and "clip_frames" in obj and obj.attrs.get("video_id") == name):
            unfinished.append(name)

    handle.visititems(visit)
    for name in unfinished:
        del handle[name]
    return _entries_in(handle, shard_name)


def read_store_identity(root: Path) -> FeatureIdentity | None:
    """The identity of an existing store, or ``None`` when it has no completed shard yet."""
    shards = completed_shards(root)
    if not shards:
        return None
    try:
        handle = h5py.File(shards[0], "r")
    except OSError as exc:
        raise ShardReadError(f"{shards[0]}: cannot be opened, the shard is damaged "
                             f"({type(exc).__name__}: {exc}); "
                             f"{VERIFY_HINT.format(root=root)}") from exc
    with handle:
        return FeatureIdentity.from_dict(json.loads(handle.attrs["identity"]))


def failure_counts(root: Path | str) -> dict[str, int]:
    """Failures recorded by the last run(s): ``{"failures.jsonl": n, "failures-r1.jsonl": m}``.

    One file per parallel worker; files without failures are left out.
    """
    counts = {}
    for log in sorted(Path(root).glob("failures*.jsonl")):
        lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines:
            counts[log.name] = len(lines)
    return counts


class FeatureStoreWriter:
    """Append videos to a store, one temporary shard at a time.

    A shard is renamed from ``*.h5.tmp`` to ``*.h5`` (atomic on POSIX) when it reaches
    ``shard_bytes`` of features, after ``commit_seconds``, or on :meth:`close`. Killing the
    process loses at most the open shard; its videos are redone by the next run.

    Args:
        root: store directory (created if needed).
        identity: what makes the features interchangeable (a :class:`FeatureIdentity`, or its
            dict form). Appending with a different identity raises :class:`StoreError`.
        provenance: JSON-able dict recorded with every shard (versions, full configs).
        shard_prefix: file-name prefix, e.g. ``shard`` or ``shard-r1`` for rank 1.
    """

    def __init__(
        self,
        root: Path | str,
        identity: FeatureIdentity | dict[str, Any],
        provenance: dict[str, Any] | None = None,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        commit_seconds: float = math.inf,
        shard_prefix: str = DEFAULT_SHARD_PREFIX,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.identity = FeatureIdentity.from_dict(identity)
        self.provenance = json.loads(_json_attr(provenance or {}))
        self.shard_bytes = shard_bytes
        self.commit_seconds = commit_seconds
        self.shard_prefix = shard_prefix
        existing = read_store_identity(self.root)
        differences = existing.diff(self.identity) if existing is not None else {}
        if differences:
            raise StoreError(f"{self.root} holds features made with a different configuration "
                             f"({describe_diff(differences, 'store', 'run')}); write them to "
                             "another store directory")
        for stale in self.root.glob(f"{shard_prefix}-*.h5.tmp"):
            stale.unlink()
        self._done = {entry.video_id for entry in FeatureStore(self.root).entries} if existing \
            else set()
        self._handle: h5py.File | None = None
        self._tmp_path: Path | None = None
        self._open_bytes = 0
        self._opened_at = 0.0
        self._write_meta()

    @property
    def done_ids(self) -> set[str]:
        """Ids stored in completed shards or in the open shard."""
        return set(self._done)

    def _write_meta(self) -> None:
        meta = {"format_version": STORE_FORMAT_VERSION, "identity": self.identity.to_dict(),
                "provenance": self.provenance}
        atomic_write_text(self.root / STORE_META_NAME,
                          json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def _next_shard_path(self) -> Path:
        numbers = [_shard_number(p.name, self.shard_prefix) for p in self.root.glob("*.h5")]
        used = [n for n in numbers if n is not None]
        return self.root / f"{self.shard_prefix}-{(max(used) + 1) if used else 0:05d}.h5"

    def _open_shard(self) -> h5py.File:
        final = self._next_shard_path()
        self._tmp_path = final.with_name(final.name + ".tmp")
        handle = h5py.File(self._tmp_path, "w")
        handle.attrs["format_version"] = STORE_FORMAT_VERSION
        identity = self.identity.to_dict()
        handle.attrs["identity"] = _json_attr(identity)
        handle.attrs["provenance"] = _json_attr(self.provenance)
        for key, value in identity.items():
            handle.attrs[key] = value if isinstance(value, (int, float, str)) else _json_attr(value)
        self._handle = handle
        self._open_bytes = 0
        self._opened_at = time.monotonic()
        return handle

    def add(self, record: VideoRecord) -> None:
        """Store one video (in the open shard); a duplicate id raises :class:`StoreError`."""
        if record.video_id in self._done:
            raise StoreError(f"video id {record.video_id!r} is already in {self.root}")
        expected_dim = self.identity.feature_dim
        if record.features.shape[1] != expected_dim:
            raise StoreError(f"{record.video_id}: feature dim {record.features.shape[1]} != "
                             f"store's {expected_dim}")
        handle = self._handle or self._open_shard()
        dtype = np.dtype(self.identity.dtype)
        try:
            group = handle.create_group(record.video_id)
        except ValueError as exc:  # a group or dataset already uses this path
            raise StoreError(f"video id {record.video_id!r} collides with another id") from exc
        try:
            self._fill_group(group, record, dtype)
        except BaseException:
            # Never leave a partial group behind, even on Ctrl-C: the shard stays committable.
            del handle[record.video_id]
            raise
        self._done.add(record.video_id)
        self._open_bytes += record.features.size * dtype.itemsize
        if (self._open_bytes >= self.shard_bytes
                or time.monotonic() - self._opened_at >= self.commit_seconds):
            self.commit()

    @staticmethod
    def _fill_group(group: h5py.Group, record: VideoRecord, dtype: np.dtype) -> None:
        # Fletcher-32 checksums: a flipped bit is an error on read, never silent wrong features.
        group.create_dataset("features", data=record.features.astype(dtype), fletcher32=True)
        group.create_dataset("clip_frames", data=record.clip_frames.astype(np.int64),
                             fletcher32=True)
        attrs = {"fps": float(record.fps),
                 "num_frames": int(record.num_frames), "width": int(record.width),
                 "height": int(record.height), "source": record.source,
                 "class_name": record.class_name, "label_rule": record.label_rule,
                 "last_clip_partial": bool(record.last_clip_partial)}
        if record.label is not None:
            attrs["label"] = int(record.label)
        for key, value in record.extra.items():
            if key in _RESERVED_ATTRS:
                raise ValueError(f"extra attribute {key!r} is reserved")
            attrs[key] = value
        group.attrs.update(attrs)
        # Written last: a group whose video_id attribute names it is complete (see commit()).
        group.attrs["video_id"] = record.video_id

    def commit(self) -> Path | None:
        """Close the open shard, make it durable and visible; return its path (None if none)."""
        if self._handle is None or self._tmp_path is None:
            return None
        final = self._tmp_path.with_suffix("")
        # Interrupts (Ctrl-C) can land anywhere in add(): what the index lists is read back from
        # the shard itself, after dropping any group that was not finished (its id never
        # reached self._done: add() records it after the last write).
        lines = "".join(entry.to_json() + "\n"
                        for entry in _index_finished_groups(self._handle, final.name))
        self._handle.flush()
        self._handle.close()
        self._handle = None
        with open(self._tmp_path, "rb") as shard_file:
            os.fsync(shard_file.fileno())
        # Rename and index append under the index lock: a reader never rebuilds the index
        # between the two (which would list this shard twice).
        descriptor = _locked_index(self.root / INDEX_NAME)
        try:
            self._tmp_path.replace(final)
            os.write(descriptor, lines.encode("utf-8"))
        finally:
            os.close(descriptor)
        return final

    def discard(self) -> None:
        """Drop the open shard (its videos are forgotten)."""
        if self._handle is not None and self._tmp_path is not None:
            for entry in _entries_in(self._handle, ""):
                self._done.discard(entry.video_id)
            self._handle.close()
            self._tmp_path.unlink(missing_ok=True)
        self._handle = None

    def close(self) -> None:
        """Commit the open shard."""
        self.commit()

    def __enter__(self) -> FeatureStoreWriter:
        return self

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        # Commit what is complete even on an exception (each stored video is whole); a
        # KeyboardInterrupt commits too, so Ctrl-C keeps the work done so far.
        self.close()


class FeatureStore:
    """Read-only view of a store directory.

    Example:
        >>> store = FeatureStore("features/")                     # doctest: +SKIP
        >>> record = store.read(store.video_ids[0])               # doctest: +SKIP
        >>> record.features.shape                                 # doctest: +SKIP
        (23, 128)
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: no such feature store directory")
        self.shards = completed_shards(self.root)
        self.entries = self._load_index()
        self._by_id = {entry.video_id: entry for entry in self.entries}
        if len(self._by_id) != len(self.entries):
            ids = [e.video_id for e in self.entries]
            dup = next(video_id for video_id in ids if ids.count(video_id) > 1)
            raise StoreError(f"{self.root}: video id {dup!r} is stored more than once")

    def _load_index(self) -> list[VideoEntry]:
        index = self.root / INDEX_NAME
        shard_names = {p.name for p in self.shards}
        if index.is_file():
            try:
                entries = [VideoEntry(**json.loads(line)) for line in
                           index.read_text(encoding="utf-8").splitlines() if line.strip()]
            except (json.JSONDecodeError, TypeError):
                entries = None
            if entries is not None and {e.shard for e in entries} == shard_names:
                return entries
        # Index missing or stale (e.g. killed between rename and index append): rebuild, under
        # the index lock so that no worker's append lands in the replaced file.
        descriptor = _locked_index(index)
        try:
            self.shards = completed_shards(self.root)
            entries = [entry for shard in self.shards for entry in _read_entries(shard)]
            atomic_write_text(index, "".join(e.to_json() + "\n" for e in entries))
        finally:
            os.close(descriptor)
        return entries

    @property
    def identity(self) -> FeatureIdentity:
        """What makes the features interchangeable (spec, layout, dim, weights hash)."""
        identity = read_store_identity(self.root)
        if identity is None:
            raise StoreError(f"{self.root}: empty store (no completed shard)")
        return identity

    @property
    def meta(self) -> dict[str, Any]:
        """Identity and provenance (versions, configs) of the store."""
        meta_path = self.root / STORE_META_NAME
        if meta_path.is_file():
            return json.loads(meta_path.read_text(encoding="utf-8"))
        with h5py.File(self.shards[0], "r") as handle:
            return {"identity": json.loads(handle.attrs["identity"]),
                    "provenance": json.loads(handle.attrs["provenance"])}

    @property
    def feature_dim(self) -> int:
        """``D`` of every ``features [T, D]`` dataset."""
        return self.identity.feature_dim

    @property
    def video_ids(self) -> list[str]:
        """All video ids, in index order."""
        return [entry.video_id for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._by_id

    def entry(self, video_id: str) -> VideoEntry:
        """Index entry of one video."""
        try:
            return self._by_id[video_id]
        except KeyError:
            raise KeyError(f"video {video_id!r} is not in {self.root}") from None

    def read(self, video_id: str) -> VideoRecord:
        """Load one video's features and metadata.

        Raises:
            KeyError: ``video_id`` is not in the store.
            ShardReadError: the shard or the video's data cannot be read (damaged file); the
                message names both and points to ``memtsm features verify``.
        """
        entry = self.entry(video_id)
        with self._open_shard(entry.shard, video_id) as handle:
            return self._read_video(handle, entry.shard, video_id)

    def _open_shard(self, shard: str, video_id: str) -> h5py.File:
        try:
            return h5py.File(self.root / shard, "r")
        except OSError as exc:
            raise self._read_error(shard, video_id, "cannot be opened", exc) from exc

    def _read_video(self, handle: h5py.File, shard: str, video_id: str) -> VideoRecord:
        try:
            return _read_group(handle[video_id])
        except (OSError, KeyError, RuntimeError) as exc:  # checksum failure, lost group, ...
            raise self._read_error(shard, video_id, "cannot be read", exc) from exc

    def _read_error(self, shard: str, video_id: str, what: str, exc: BaseException
                    ) -> ShardReadError:
        return ShardReadError(
            f"{self.root / shard}: video {video_id!r} {what}, the shard is damaged "
            f"({type(exc).__name__}: {exc}); {VERIFY_HINT.format(root=self.root)}")

    def __iter__(self) -> Iterator[VideoRecord]:
        """Yield every video, one shard open at a time."""
        by_shard: dict[str, list[str]] = {}
        for entry in self.entries:
            by_shard.setdefault(entry.shard, []).append(entry.video_id)
        for shard, ids in by_shard.items():
            with self._open_shard(shard, ids[0]) as handle:
                for video_id in ids:
                    yield self._read_video(handle, shard, video_id)


def _read_group(group: h5py.Group) -> VideoRecord:
    attrs = dict(group.attrs)
    extra = {k: v for k, v in attrs.items() if k not in _RESERVED_ATTRS}
    return VideoRecord(
        video_id=str(attrs["video_id"]),
        features=group["features"][()],
        clip_frames=group["clip_frames"][()],
        fps=float(attrs["fps"]),
        num_frames=int(attrs["num_frames"]),
        width=int(attrs.get("width", 0)),
        height=int(attrs.get("height", 0)),
        source=str(attrs.get("source", "")),
        label=int(attrs["label"]) if "label" in attrs else None,
        class_name=str(attrs.get("class_name", "")),
        last_clip_partial=bool(attrs.get("last_clip_partial", False)),
        extra=extra,
        label_rule=str(attrs.get("label_rule", "")),
    )
