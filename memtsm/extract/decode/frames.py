"""A folder of image files as one video (UCSD Ped2, ShanghaiTech and Avenue ship this way)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from memtsm.extract.decode.base import (
    DecodeError,
    FrameBatch,
    FrameFilter,
    VideoDecoder,
    VideoInfo,
    keep_all,
    wanted_batches,
)
from memtsm.extract.sources import image_files


def _check_numbering(folder: Path, files: list[Path]) -> None:
    """Numbered frames (``001.jpg``, ``frame_0002.png``) must run without gaps or repeats.

    A missing file would shift every later frame by one against the frame-level annotations, so
    it is an error rather than something to skip. Folders whose names are not all numbered are
    taken in natural order as they are.
    """
    numbers = [re.search(r"(\d+)$", file.stem) for file in files]
    if not all(numbers):
        return
    for (before, number_before), (after, number_after) in pairwise(
            zip(files, (int(m.group(1)) for m in numbers))):
        if number_after == number_before:
            raise DecodeError(folder, f"two files for frame number {number_after}: "
                              f"{before.name} and {after.name}")
        if number_after < number_before:
            raise DecodeError(folder, f"frame numbers restart at {after.name} after "
                              f"{before.name}: mixed numbering in one folder")
        if number_after != number_before + 1:
            gap = number_after - number_before - 1
            raise DecodeError(folder, f"frame numbers jump from {number_before} ({before.name}) "
                              f"to {number_after} ({after.name}): {gap} frame(s) missing")


class FrameFolderDecoder(VideoDecoder):
    """Frames are the folder's image files in natural sort order, at a given frame rate.

    Files that are not images (by suffix) are ignored; numbered frames must be consecutive.
    """

    backend = "frames"

    def __init__(self, path: Path, fps: float = 30.0, luma: bool = False) -> None:
        super().__init__(path)
        self.luma = luma
        if not self.path.is_dir():
            raise DecodeError(self.path, "not a folder of frames")
        self._files = image_files(self.path)
        if not self._files:
            raise DecodeError(self.path, "the folder holds no image files")
        _check_numbering(self.path, self._files)
        first = self._open(self._files[0])
        self._info = VideoInfo(
            path=self.path,
            fps=float(fps),
            num_frames=len(self._files),
            width=first.shape[1],
            height=first.shape[0],
            codec="images",
        )

    @property
    def info(self) -> VideoInfo:
        """Folder metadata: fps as given, frame count = number of image files."""
        return self._info

    def _open(self, file: Path) -> np.ndarray:
        try:
            with Image.open(file) as image:
                if self.luma:
                    return np.asarray(image.convert("L"))[:, :, None]
                return np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise DecodeError(file, f"unreadable image ({exc})") from exc

    def batches(self, batch_size: int, want: FrameFilter = keep_all) -> Iterator[FrameBatch]:
        """Yield wanted frames in natural file order (see :meth:`VideoDecoder.batches`)."""
        for batch in wanted_batches(self._listed(), want, batch_size):
            yield self._batch(batch)

    def _listed(self) -> Iterator[tuple[int, Path]]:
        for index, file in enumerate(self._files):
            self.frames_decoded = index + 1
            yield index, file

    def _batch(self, batch: list[tuple[int, Path]]) -> FrameBatch:
        size = (self._info.height, self._info.width, 1 if self.luma else 3)
        frames = []
        for _, file in batch:
            frame = self._open(file)
            if frame.shape != size:
                raise DecodeError(file, f"frame size {frame.shape[1]}x{frame.shape[0]} differs "
                                  f"from the first frame's {size[1]}x{size[0]}")
            frames.append(frame)
        index_tensor = torch.tensor([index for index, _ in batch], dtype=torch.int64)
        return FrameBatch(
            frames=torch.from_numpy(np.stack(frames)),
            indices=index_tensor,
            timestamps=index_tensor.to(torch.float64) / self._info.fps,
        )
