"""CPU decoding with PyAV (FFmpeg): any container and codec FFmpeg reads."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from memtsm.extract.decode.base import (
    DecodeError,
    FrameBatch,
    FrameFilter,
    VideoDecoder,
    VideoInfo,
    keep_all,
    wanted_batches,
)

_DEFAULT_FPS = 30.0


class PyAVDecoder(VideoDecoder):
    """Decode a video file on the CPU with FFmpeg's own frame threading.

    Frames come out in display order (FFmpeg reorders B-frames); the frame count is the number of
    frames actually decoded, whatever the header claims. With ``luma=True`` frames are the Y
    plane ``[H, W, 1]``, read straight from the decoder's buffer: for 8-bit YUV video this skips
    the YUV->RGB conversion, which costs 3x more than decoding itself at 320x240.
    """

    backend = "pyav"

    def __init__(self, path: Path, luma: bool = False) -> None:
        super().__init__(path)
        self.luma = luma
        if not self.path.is_file():
            raise DecodeError(self.path, "no such file")
        if self.path.stat().st_size == 0:
            raise DecodeError(self.path, "empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.FFmpegError as exc:
            raise DecodeError(self.path, f"not a readable video container ({exc})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise DecodeError(self.path, "no video stream in the file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._info = self._read_info()

    def _read_info(self) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else _DEFAULT_FPS
        num_frames = int(stream.frames or 0)
        if num_frames == 0 and stream.duration is not None and stream.time_base is not None:
            num_frames = int(round(float(stream.duration * stream.time_base) * fps))
        codec = stream.codec_context
        return VideoInfo(
            path=self.path,
            fps=fps,
            num_frames=num_frames,
            width=int(codec.width),
            height=int(codec.height),
            codec=str(codec.name),
        )

    @property
    def info(self) -> VideoInfo:
        """Container metadata (header values)."""
        return self._info

    def batches(self, batch_size: int, want: FrameFilter = keep_all) -> Iterator[FrameBatch]:
        """Yield wanted frames in display order (see :meth:`VideoDecoder.batches`)."""
        for batch in wanted_batches(self._decoded(), want, batch_size):
            yield self._to_batch(batch)
        if self.frames_decoded == 0:
            raise DecodeError(self.path, "the video stream holds no decodable frame")

    def _decoded(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """Every decoded frame with its 0-based display index, counted in ``frames_decoded``."""
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                self.frames_decoded = index + 1
                yield index, frame
        except av.FFmpegError as exc:
            raise DecodeError(self.path, f"corrupt stream after frame {self.frames_decoded} "
                              f"({exc})") from exc

    def _to_batch(self, batch: list[tuple[int, av.VideoFrame]]) -> FrameBatch:
        images = [_luma(f) if self.luma else f.to_ndarray(format="rgb24") for _, f in batch]
        if len({image.shape for image in images}) != 1:
            raise DecodeError(self.path, "frame size changes inside the stream: "
                              f"{sorted({image.shape for image in images})}")
        fps = self._info.fps
        return FrameBatch(
            frames=torch.from_numpy(np.stack(images)),
            indices=torch.tensor([index for index, _ in batch], dtype=torch.int64),
            timestamps=torch.tensor([_frame_time(f.pts, f.time_base, index, fps)
                                     for index, f in batch], dtype=torch.float64),
        )

    def close(self) -> None:
        """Close the container."""
        self._container.close()


_YUV8_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                           "nv12", "nv21", "gray"})


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """``uint8 [H, W, 1]``: the Y plane of 8-bit YUV frames, else a converted grey image."""
    if frame.format.name in _YUV8_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(frame.height, plane.line_size)
        return rows[:, : frame.width, None].copy()
    return frame.to_ndarray(format="gray")[:, :, None]


def _frame_time(pts: int | None, time_base: Fraction | None, index: int, fps: float) -> float:
    if pts is None or time_base is None:
        return index / fps
    return float(pts * time_base)

