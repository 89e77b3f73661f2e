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
           "VideoInfo", "keep_all", "wanted_batches"]

Item = TypeVar("Item")


class DecodeError(Exception):
    """A video cannot be decoded; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (before decoding).

    ``num_frames`` is the header's count and may be wrong or 0; the true count is
    :attr:`VideoDecoder.frames_decoded` after a full pass.
    """

    path: Path
    fps: float
    num_frames: int
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive sampled frames of one video.

    Attributes:
        frames: ``uint8 [N, H, W, C]`` on the decoder's device: ``C = 3`` RGB, or ``C = 1``
            luma (the Y plane, for backends opened with ``luma=True``).
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


class VideoDecoder(abc.ABC):
    """Decodes one video into :class:`FrameBatch` es.

    Use as a context manager, or call :meth:`close`. :meth:`batches` may be called once.
    """

    #: Backend name as in :class:`DecoderBackend`.
    backend: str = ""

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
