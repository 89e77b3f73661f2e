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
    check_complete,
    keep_all,
    wanted_batches,
)

_DEFAULT_FPS = 30.0


class PyAVDecoder(VideoDecoder):
    """Decode a video file on the CPU with FFmpeg's own frame threading.

    Frames come out in display order (FFmpeg reorders B-frames), turned upright when the container
    carries a rotation; the frame count is the number of frames actually decoded, whatever the
    header claims, and a stream that ends well short of its declared length is refused
    (:func:`~memtsm.extract.decode.base.check_complete`). With ``luma=True`` frames are the Y plane
    ``[H, W, 1]``, read straight from the decoder's buffer: for 8-bit YUV video this skips the
    YUV->RGB conversion, which costs 3x more than decoding itself at 320x240.
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
            raise DecodeError(self.path, f"not a readable video container ({ffmpeg_reason(exc)})"
                              ) from exc
        try:
            if not self._container.streams.video:
                kinds = sorted({s.type for s in self._container.streams}) or ["no"]
                raise DecodeError(self.path, f"no video stream in the file ({', '.join(kinds)} "
                                  "streams only)")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            # The first frame is decoded now: it carries the rotation, and a file without a single
            # decodable frame is refused at once.
            self._frames = self._container.decode(self._stream)
            self._first = self._next_frame()
            if self._first is None:
                raise DecodeError(self.path, "the video stream holds no decodable frame")
            self._info = self._read_info(self._first)
        except BaseException:
            self._container.close()
            raise
        self._last_frame_time: float | None = None

    def _next_frame(self) -> av.VideoFrame | None:
        try:
            return next(self._frames, None)
        except av.FFmpegError as exc:
            raise DecodeError(self.path, f"corrupt stream after frame {self.frames_decoded} "
                              f"({ffmpeg_reason(exc)})") from exc

    def _read_info(self, first: av.VideoFrame) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        rotation = _upright_turns(first.rotation) * 90
        width, height = int(first.width), int(first.height)
        if rotation % 180:
            width, height = height, width
        return VideoInfo(
            path=self.path,
            fps=float(rate) if rate else _DEFAULT_FPS,
            num_frames=int(stream.frames or 0),
            width=width,
            height=height,
            codec=str(stream.codec_context.name),
            duration=_declared_duration(self._container, stream),
            rotation=rotation,
        )

    @property
    def info(self) -> VideoInfo:
        """Container metadata (header values)."""
        return self._info

    def batches(self, batch_size: int, want: FrameFilter = keep_all) -> Iterator[FrameBatch]:
        """Yield wanted frames in display order (see :meth:`VideoDecoder.batches`)."""
        for batch in wanted_batches(self._decoded(), want, batch_size):
            yield self._to_batch(batch)
        check_complete(self._info, self.frames_decoded, self._last_frame_time)

    def _decoded(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """Every decoded frame with its 0-based display index, counted in ``frames_decoded``."""
        frame, self._first = self._first, None
        start = self._stream.start_time or 0
        while frame is not None:
            if frame.pts is not None and frame.time_base is not None:
                self._last_frame_time = float((frame.pts - start) * frame.time_base)
            self.frames_decoded += 1
            yield self.frames_decoded - 1, frame
            frame = self._next_frame()

    def _to_batch(self, batch: list[tuple[int, av.VideoFrame]]) -> FrameBatch:
        turns = self._info.rotation // 90
        images = [luma_plane(f) if self.luma else f.to_ndarray(format="rgb24") for _, f in batch]
        if turns:
            images = [np.rot90(image, turns) for image in images]
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


def ffmpeg_reason(exc: av.FFmpegError) -> str:
    """FFmpeg's reason without its error number and the path (the message names the file)."""
    return str(exc.strerror or exc)


def _upright_turns(rotation: float) -> int:
    """Quarter turns counter-clockwise that display a frame upright (``np.rot90``'s ``k``).

    ``rotation`` is FFmpeg's display-matrix angle (counter-clockwise degrees): a portrait phone
    video says -90, i.e. its frames are shown turned 90 degrees clockwise.
    """
    return int(round(rotation / 90.0)) % 4


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Seconds of video the container declares, 0 when it does not say.

    The stream's own duration, else its Matroska ``DURATION`` tag; the container's overall
    duration only when the video is its only stream (audio often runs longer than the video).
    """
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION", "")
    hours, _, rest = tag.partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        pass
    if len(container.streams) == 1 and container.duration:
        return container.duration / av.time_base
    return 0.0


_YUV8_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                           "nv12", "nv21", "gray"})


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
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

