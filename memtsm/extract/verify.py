"""``memtsm features verify``: check that a feature store is complete, consistent and intact.

Every shard is opened and every video group read back in full. Datasets are written with HDF5's
Fletcher-32 checksums, so a flipped bit in stored features is detected on read; a truncated shard
fails to open. Problems are reported per shard (the other shards stay usable) and per video.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from memtsm.extract.store import INDEX_NAME, completed_shards


@dataclass
class VerifyReport:
    """What :func:`verify_store` found."""

    root: Path
    shards: int = 0
    videos: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _video_groups(handle: h5py.File) -> Iterator[tuple[str, h5py.Group]]:
    found: list[tuple[str, h5py.Group]] = []
    handle.visititems(lambda name, obj: found.append((name, obj))
                      if isinstance(obj, h5py.Group) and "features" in obj else None)
    yield from found


def _check_video(name: str, group: h5py.Group, dim: int | None) -> list[str]:
    problems = []
    attrs = group.attrs
    if attrs.get("video_id") != name:
        problems.append(f"video_id attribute {attrs.get('video_id')!r} != group path")
    if "clip_frames" not in group:
        return problems + ["no clip_frames dataset"]
    try:
        features = group["features"][()]
        clip_frames = group["clip_frames"][()]
    except OSError as exc:  # Fletcher-32 checksum mismatch, unreadable chunk
        return problems + [f"data cannot be read back ({exc})"]
    if features.ndim != 2 or features.shape[0] == 0:
        return problems + [f"features shape {features.shape} is not [T>0, D]"]
    if dim is not None and features.shape[1] != dim:
        problems.append(f"feature dim {features.shape[1]} != store's {dim}")
    if not np.isfinite(features.astype(np.float32)).all():
        problems.append("features contain NaN or inf")
    if clip_frames.shape != (features.shape[0], 2):
        return problems + [f"clip_frames shape {clip_frames.shape} != ({features.shape[0]}, 2)"]
    num_frames = int(attrs.get("num_frames", -1))
    if np.any(clip_frames[:, 1] <= clip_frames[:, 0]) or clip_frames[0, 0] != 0 \
            or clip_frames[-1, 1] != num_frames or np.any(np.diff(clip_frames[:, 0]) <= 0):
        problems.append(f"clip_frames do not tile [0, num_frames={num_frames})")
    return problems


def verify_store(root: Path | str) -> VerifyReport:
    """Check every shard, video, identity and the index of the store at ``root``."""
    root = Path(root)
    report = VerifyReport(root=root)
    if not root.is_dir():
        report.problems.append(f"{root}: no such store directory")
        return report
    shards = completed_shards(root)
    report.shards = len(shards)
    if not shards:
        report.problems.append(f"{root}: no completed shard")
    identity: dict[str, Any] | None = None
    seen: dict[str, str] = {}
    contents: set[tuple[str, str]] = set()
    for shard in shards:
        try:
            handle = h5py.File(shard, "r")
        except OSError as exc:
            report.problems.append(f"{shard.name}: cannot be opened, truncated or not HDF5 ({exc})")
            continue
        with handle:
            try:
                this = json.loads(handle.attrs["identity"])
            except (KeyError, ValueError) as exc:
                report.problems.append(f"{shard.name}: no readable identity attribute ({exc})")
                continue
            if identity is None:
                identity = this
            elif this != identity:
                report.problems.append(f"{shard.name}: identity differs from {shards[0].name}")
            dim = this.get("feature_dim")
            for name, group in _video_groups(handle):
                report.videos += 1
                contents.add((name, shard.name))
                if name in seen:
                    report.problems.append(f"{shard.name}: {name} is also in {seen[name]}")
                seen[name] = shard.name
                report.problems.extend(f"{shard.name}: {name}: {problem}"
                                       for problem in _check_video(name, group, dim))
    index = root / INDEX_NAME
    if index.is_file() and shards:
        try:
            listed = {(e["video_id"], e["shard"]) for e in map(json.loads, filter(
                str.strip, index.read_text(encoding="utf-8").splitlines()))}
        except (ValueError, KeyError, TypeError) as exc:
            report.problems.append(f"{INDEX_NAME}: unreadable ({exc}); it is rebuilt on open")
        else:
            if listed != contents:
                extra, missing = len(listed - contents), len(contents - listed)
                report.problems.append(f"{INDEX_NAME}: does not match the shards ({extra} listed "
                                       f"but absent, {missing} stored but unlisted); it is "
                                       "rebuilt on open")
    return report
