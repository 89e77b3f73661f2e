"""One decoder interface for every backend.

A decoder turns one video (a file, or a folder of frame images) into batches of RGB (or, when
asked and the backend can, luma-only) frames in display order, each frame with its exact 0-based
index and timestamp. Backends live in sibling modules and are imported only when chosen
(:func:`memtsm.extract.decode.open_video`), so DALI is never imported unless it is used.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from memtsm.extract.config import DecoderBackend

__all__ = ["DecodeError", "DecoderBackend", "FrameBatch", "FrameFilter", "VideoDecoder",
           "VideoInfo", "check_complete", "keep_all", "wanted_batches"]

Item = TypeVar("Item")

#: A video is truncated when more than this many frames (and this fraction of the declared count,
#: or this many seconds and this fraction of the declared duration) are missing.
TRUNCATION_FRAMES = 2
TRUNCATION_SECONDS = 1.0
TRUNCATION_FRACTION = 0.02


class DecodeError(Exception):
    """A video cannot be decoded; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (before decoding).

    ``num_frames`` is the header's count, 0 when the container has none (it is exact for MP4/MOV,
    whose index lists every frame); the true count is :attr:`VideoDecoder.frames_decoded` after a
    full pass. ``width`` and ``height`` are the displayed size, after ``rotation``.
    """

    path: Path
    fps: float
    num_frames: int
    width: int
    height: int
    codec: str
    duration: float = 0.0
    """Seconds of video the container declares (0 when unknown)."""
    rotation: int = 0
    """Degrees (a multiple of 90) the decoder turns frames counter-clockwise so they display
    upright, from the container's display matrix (phones record portrait video this way)."""


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive sampled frames of one video.

    Attributes:
        frames: ``uint8 [N, H, W, C]`` on the decoder's device: ``C = 3`` RGB, or ``C = 1``
            luma (the Y plane, for backends opened with ``luma=True``); or, from a decoder that
            prepares the network's input itself (a DALI stream given a network size), grey
            ``float32 [N, 1, h, w]`` in [0, 1].
        indices: ``int64 [N]`` 0-based display-order frame indices (CPU).
        timestamps: ``float64 [N]`` presentation times in seconds (CPU).
    """

    frames: torch.Tensor
    indices: torch.Tensor
    timestamps: torch.Tensor

    def __len__(self) -> int:
        return int(self.indices.shape[0])


FrameFilter = Callable[[int], bool]
"""Predicate on a 0-based frame index: ``True`` when the frame is wanted."""


def keep_all(_index: int) -> bool:
    """Frame filter that keeps every frame."""
    return True


def wanted_batches(items: Iterable[tuple[int, Item]], want: FrameFilter, batch_size: int
                   ) -> Iterator[list[tuple[int, Item]]]:
    """Group the wanted ``(frame index, item)`` pairs by ``batch_size`` (the last may be short).

    Every backend streams its own items (decoded frames, image files, DALI tensors) through this,
    and converts a batch only once it is complete, so unwanted frames are never converted.
    """
    batch: list[tuple[int, Item]] = []
    for index, item in items:
        if want(index):
            batch.append((index, item))
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def check_complete(info: VideoInfo, frames_decoded: int, last_frame_time: float | None) -> None:
    """Refuse a video whose decodable frames stop well short of what its container declares.

    A file cut off in the middle (a copy that did not finish, a camera that lost power) decodes
    to its first part without any FFmpeg error; storing that part would silently misalign the
    frame-level annotations. The small tolerance allows for edit lists and rounding.

    Args:
        info: the container's declarations.
        frames_decoded: frames actually decoded.
        last_frame_time: presentation time (seconds from the stream's start) of the last
            decoded frame, or None when unknown.

    Raises:
        DecodeError: naming what was declared and what was found.
    """
    if info.num_frames > 0:
        missing = info.num_frames - frames_decoded
        if missing > max(TRUNCATION_FRAMES, TRUNCATION_FRACTION * info.num_frames):
            raise DecodeError(info.path, f"truncated or corrupt: decoded {frames_decoded} of the "
                              f"{info.num_frames} frames the container declares")
    elif info.duration > 0 and last_frame_time is not None:
        covered = last_frame_time + 1.0 / info.fps
        if info.duration - covered > max(TRUNCATION_SECONDS, TRUNCATION_FRACTION * info.duration):
            raise DecodeError(info.path, f"truncated or corrupt: the frames end at {covered:.2f} s "
                              f"but the container declares {info.duration:.2f} s of video")


class VideoDecoder(abc.ABC):
    """Decodes one video into :class:`FrameBatch` es.

    Use as a context manager, or call :meth:`close`. :meth:`batches` may be called once.
    """

    #: Backend name as in :class:`DecoderBackend`.
    backend: str = ""
    #: Whether frames are luma-only ``[H, W, 1]`` (set by backends opened with ``luma=True``).
    luma: bool = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.frames_decoded = 0

    @property
    @abc.abstractmethod
    def info(self) -> VideoInfo:
        """Container metadata (header values)."""

    @property
    def device(self) -> torch.device:
        """Device the frames are delivered on."""
        return torch.device("cpu")

    @property
    def channels(self) -> int:
        """Channels of the delivered frames: 3 (RGB) or 1 (luma)."""
        return 1 if self.luma else 3

    @abc.abstractmethod
    def batches(self, batch_size: int, want: FrameFilter = keep_all) -> Iterator[FrameBatch]:
        """Yield wanted frames in display order, ``batch_size`` at a time (the last may be short).

        Every frame is decoded (and counted in :attr:`frames_decoded`), but only the frames for
        which ``want(index)`` is true are converted and yielded.

        Raises:
            DecodeError: the stream is corrupt or unreadable.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Release the underlying file or pipeline."""

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
