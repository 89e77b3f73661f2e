"""Decoding with NVIDIA DALI: NVDEC on a CUDA device, VP8/VP9/MJPEG on the CPU.

The encoded file is fed once to ``fn.experimental.inputs.video``, which streams it: every pipeline
run decodes the next ``frames_per_sequence`` frames in display order (the last sequence may be
shorter), so memory stays bounded whatever the video's length. One pipeline definition serves both
devices; only the operator's device differs (``"mixed"`` = NVDEC, or ``"cpu"``).

A :class:`DaliStream` keeps its pipeline between videos: after a video's last run the next file
is fed to the same pipeline, so a run over many videos builds one pipeline, not one per video.
Given the network's input size rule, the stream's pipeline also converts to grey and resizes
inside DALI (on the GPU with NVDEC), and delivers ``float32 [N, 1, h, w]`` network input on the
device: the frames are never copied to the host.

DALI 2.4 reports neither frame indices nor timestamps for this operator, and a run past the end of
the video is an error. So the file is first scanned with PyAV (demuxing only, no decoding): the
header's frame count or else the packet count (what DALI itself uses) gives the number of runs, and
the sorted packet times give each frame's timestamp.

This module imports ``nvidia.dali``; import it only when the DALI backend is chosen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types

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
from memtsm.extract.decode.pyav import PyAVDecoder, ffmpeg_reason

logger = logging.getLogger(__name__)

DEFAULT_FRAMES_PER_SEQUENCE = 16
"""Frames decoded per pipeline run (fewer for large frames, see :data:`SEQUENCE_BYTES`)."""

SEQUENCE_BYTES = 128 << 20
"""Most bytes of RGB frames per pipeline run: 16 full-HD frames (100 MB), but 5 of 4K."""

CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
"""Codecs (FFmpeg names) DALI 2.4 decodes on the CPU."""

NVDEC_CODECS = frozenset({"av1", "mpeg4", "h264", "hevc", "vp8", "vp9", "mjpeg"})
"""Codecs (FFmpeg names) DALI 2.4 decodes with NVDEC (the ``mixed`` backend)."""

_INPUT_NAME = "encoded_video"
_SIZE_NAME = "network_size"
_NUM_THREADS = 2
_UINT8_MAX = 255.0
# DALI's error when a run finds its input used up (the header overstated the frame count).
_NO_MORE_INPUT = "No data was provided to the InputOperator"

NetworkSize = Callable[[int, int], tuple[int, int]]
"""``(width, height)`` of a displayed frame -> ``(width, height)`` of the network's input."""


@pipeline_def(batch_size=1, num_threads=_NUM_THREADS, prefetch_queue_depth=1, exec_dynamic=True)
def _sequence_pipeline(decoder_device: str, frames_per_sequence: int, network_input: bool):
    """One sequence per run, ``F <= frames_per_sequence`` frames.

    RGB ``uint8 [F, H, W, 3]``; with ``network_input``, grey ``float32 [F, h, w, 1]`` in [0, 1]
    at the ``(h, w)`` fed to ``network_size`` before every run (BT.601 grey, as kornia's
    ``rgb_to_grayscale``; antialiased linear resize, as the torch preprocessing).
    ``prefetch_queue_depth=1`` so DALI never runs ahead past the end of the video;
    ``exec_dynamic`` keeps returned outputs valid while they are referenced.
    """
    video = fn.experimental.inputs.video(
        name=_INPUT_NAME,
        device=decoder_device,
        sequence_length=frames_per_sequence,
        last_sequence_policy="partial",
    )
    if not network_input:
        return video
    size = fn.external_source(name=_SIZE_NAME, dtype=types.FLOAT, ndim=1)
    grey = fn.color_space_conversion(video, image_type=types.RGB, output_type=types.GRAY)
    resized = fn.resize(grey, size=size, antialias=True, dtype=types.FLOAT)
    return resized * (1.0 / _UINT8_MAX)


@dataclass(frozen=True)
class _PacketScan:
    """What demuxing the video stream (without decoding) tells.

    Attributes:
        header_frames: the stream header's frame count (0 when absent).
        packets: number of video packets (one per frame for the codecs DALI decodes).
        times: sorted packet presentation times in seconds (display order); empty when some
            packet has no timestamp.
        start: the stream's start time in seconds.
    """

    header_frames: int
    packets: int
    times: list[float]
    start: float = 0.0

    @property
    def dali_frames(self) -> int:
        """The frame count DALI splits the video by: the header's, else the packet count."""
        return self.header_frames or self.packets


def _scan_packets(path: Path) -> _PacketScan:
    try:
        with av.open(str(path), mode="r") as container:
            stream = container.streams.video[0]
            pts = [p.pts for p in container.demux(stream) if p.size > 0]
            time_base = stream.time_base
            header_frames = int(stream.frames or 0)
            start = float((stream.start_time or 0) * time_base) if time_base else 0.0
    except av.FFmpegError as exc:
        raise DecodeError(path, f"corrupt container ({ffmpeg_reason(exc)})") from exc
    times = [] if None in pts or time_base is None else sorted(float(t * time_base) for t in pts)
    return _PacketScan(header_frames=header_frames, packets=len(pts), times=times, start=start)


def _dali_problem(exc: RuntimeError) -> str:
    """The informative line of a DALI pipeline error (DALI wraps it in the pipeline's traceback)."""
    text = str(exc)
    _, found, cause = text.partition("encountered:")
    lines = [line.strip() for line in (cause if found else text).splitlines()]
    skipped = ("C++ context", "Current pipeline object", "Critical error in pipeline")
    useful = [line for line in lines if line and not line.startswith(skipped)]
    return useful[0] if useful else text.strip()


class DaliStream:
    """One DALI pipeline on one device, kept from video to video.

    :meth:`open` gives a :class:`DaliDecoder` per video; the pipeline it runs is built on first
    use and handed back after the video's last run, so a run over many videos of one size class
    builds one pipeline. A video that fails or is left half-read takes its pipeline with it (its
    leftover input must not leak into the next video); the next video builds a fresh one. Use
    from one thread at a time.

    Args:
        device: ``cuda[:N]`` for NVDEC, ``cpu`` for DALI's CPU decoder.
        network_size: when given, deliver grey ``float32 [N, 1, h, w]`` frames in [0, 1] at
            ``network_size(width, height)`` (converted and resized inside DALI); else RGB
            ``uint8 [N, H, W, 3]``.
        frames_per_sequence: frames per pipeline run; by default 16, or fewer for large frames
            (:data:`SEQUENCE_BYTES`).
    """

    def __init__(self, device: torch.device | str, network_size: NetworkSize | None = None,
                 frames_per_sequence: int | None = None) -> None:
        if frames_per_sequence is not None and frames_per_sequence < 1:
            raise ValueError(f"frames_per_sequence must be >= 1, got {frames_per_sequence}")
        self.device = torch.device(device)
        self.network_size = network_size
        self.frames_per_sequence = frames_per_sequence
        #: Pipelines built so far (one per sequence length, plus one after each failed video).
        self.pipelines_built = 0
        self._idle: dict[int, Any] = {}

    def open(self, path: Path | str) -> DaliDecoder:
        """A decoder for one video that runs on this stream's pipeline."""
        return DaliDecoder(Path(path), self.device, self.frames_per_sequence, stream=self)

    def acquire(self, frames_per_sequence: int) -> Any:
        """An idle built pipeline for ``frames_per_sequence`` frames per run, or a new one."""
        pipe = self._idle.pop(frames_per_sequence, None)
        if pipe is None:
            on_gpu = self.device.type == "cuda"
            pipe = _sequence_pipeline(
                decoder_device="mixed" if on_gpu else "cpu",
                frames_per_sequence=frames_per_sequence,
                network_input=self.network_size is not None,
                device_id=(self.device.index or 0) if on_gpu else None,
            )
            pipe.build()
            self.pipelines_built += 1
        return pipe

    def release(self, frames_per_sequence: int, pipe: Any) -> None:
        """Hand back a pipeline whose video was read to its end without error."""
        self._idle[frames_per_sequence] = pipe

    def close(self) -> None:
        """Drop the idle pipelines (and DALI's buffers)."""
        self._idle.clear()

    def __enter__(self) -> DaliStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaliDecoder(VideoDecoder):
    """Decode a video file with DALI on ``device``: NVDEC on CUDA, libavcodec on the CPU.

    Frames are delivered on ``device`` (from DALI's buffers through DLPack, with no host copy on
    CUDA), turned upright by the container's rotation as PyAV does (DALI ignores it), and a
    stream that ends well short of its declared length is refused. On the CPU only VP8, VP9 and
    MJPEG can be decoded (DALI 2.4); other codecs are refused at once with a
    :class:`DecodeError`.

    Args:
        path: the video file.
        device: ``cuda[:N]`` for NVDEC, ``cpu`` for DALI's CPU decoder.
        frames_per_sequence: frames decoded per pipeline run (bounds the memory used); by
            default 16, or fewer so a run holds at most :data:`SEQUENCE_BYTES`.
        stream: the :class:`DaliStream` whose pipeline to run (and whose output format to
            deliver); by default a private one, RGB, used for this video only.
    """

    backend = "dali"

    def __init__(
        self,
        path: Path,
        device: torch.device,
        frames_per_sequence: int | None = None,
        stream: DaliStream | None = None,
    ) -> None:
        super().__init__(path)
        if frames_per_sequence is not None and frames_per_sequence < 1:
            raise ValueError(f"frames_per_sequence must be >= 1, got {frames_per_sequence}")
        self._device = torch.device(device)
        self._stream = stream or DaliStream(self._device)
        with PyAVDecoder(self.path) as probe:  # header, and clear errors for unreadable files
            self._info = probe.info
        frame_bytes = self._info.width * self._info.height * 3
        self._frames_per_sequence = frames_per_sequence or max(
            1, min(DEFAULT_FRAMES_PER_SEQUENCE, SEQUENCE_BYTES // frame_bytes))
        self._check_codec(self._device.type == "cuda")
        self._scan = _scan_packets(self.path)
        if self._scan.header_frames and self._scan.header_frames != self._scan.packets:
            logger.warning(
                "%s: header says %d frames but the stream has %d packets; DALI decodes %d",
                self.path,
                self._scan.header_frames,
                self._scan.packets,
                self._scan.dali_frames,
            )
        self._turns = self._info.rotation // 90
        self._size = self._decoded_network_size()
        self._pipe: Any = None

    def _decoded_network_size(self) -> list[float] | None:
        """``[h, w]`` DALI resizes the stored (not yet rotated) frames to, or None for RGB."""
        if self._stream.network_size is None:
            return None
        width, height = self._stream.network_size(self._info.width, self._info.height)
        # a quarter turn happens after the resize: the stored frame is resized to the turned size
        return [float(width), float(height)] if self._turns % 2 else [float(height), float(width)]

    def _check_codec(self, on_gpu: bool) -> None:
        codec = self._info.codec
        if on_gpu and codec not in NVDEC_CODECS:
            raise DecodeError(
                self.path,
                f"NVDEC (DALI's GPU decoder) cannot decode {codec}; use --decoder pyav",
            )
        if not on_gpu and codec not in CPU_CODECS:
            raise DecodeError(
                self.path,
                f"DALI's CPU decoder supports only VP8/VP9/MJPEG; this file is {codec} "
                "— use --decoder pyav or a GPU",
            )

    @property
    def info(self) -> VideoInfo:
        """Container metadata, read with PyAV."""
        return self._info

    @property
    def device(self) -> torch.device:
        """The device frames are decoded and delivered on."""
        return self._device

    @property
    def network_input(self) -> bool:
        """Whether frames come as grey ``float32 [N, 1, h, w]`` network input."""
        return self._size is not None

    @property
    def channels(self) -> int:
        """Channels of the delivered frames: 1 (network input) or 3 (RGB)."""
        return 1 if self.network_input else 3

    def batches(self, batch_size: int, want: FrameFilter = keep_all) -> Iterator[FrameBatch]:
        """Yield wanted frames on :attr:`device`, as in the base class.

        Frames are ``uint8 [N, H, W, 3]`` RGB, or ``float32 [N, 1, h, w]`` grey network input
        when the stream was given a network size.

        Raises:
            DecodeError: DALI fails on the stream (corrupt data).
        """
        for batch in wanted_batches(self._frames(), want, batch_size):
            yield self._to_batch([frame for _, frame in batch], [index for index, _ in batch])
        if self.frames_decoded == 0:
            raise DecodeError(self.path, "the video stream holds no decodable frame")
        times = self._scan.times
        last_time = (times[self.frames_decoded - 1] - self._scan.start
                     if len(times) >= self.frames_decoded else None)
        check_complete(self._info, self.frames_decoded, last_time)

    def _frames(self) -> Iterator[tuple[int, torch.Tensor]]:
        """Every frame in display order: ``(index, [H, W, C] view into DALI's output)``.

        The pipeline is handed back to the stream only when the video was read to its end
        without error; otherwise it is dropped with this decoder.
        """
        self._pipe = self._stream.acquire(self._frames_per_sequence)
        self._pipe.feed_input(_INPUT_NAME, [np.fromfile(self.path, dtype=np.uint8)])
        num_runs = math.ceil(self._scan.dali_frames / self._frames_per_sequence)
        finished = False
        try:
            for _ in range(num_runs):
                sequence = self._next_sequence()
                if sequence is None:
                    return  # the input ran out early: that pipeline is not reused
                start = self.frames_decoded
                self.frames_decoded += len(sequence)
                for offset, frame in enumerate(sequence):
                    yield start + offset, frame
                if len(sequence) < self._frames_per_sequence:
                    break  # the last, partial sequence
            finished = True
        finally:
            if finished:
                self._stream.release(self._frames_per_sequence, self._pipe)
            self._pipe = None

    def _next_sequence(self) -> torch.Tensor | None:
        """Run the pipeline once: ``[F, H, W, C]`` on the device, or None past the end."""
        if self._size is not None:
            self._pipe.feed_input(_SIZE_NAME, [np.asarray(self._size, dtype=np.float32)])
        try:
            (sequences,) = self._pipe.run()
        except RuntimeError as exc:
            problem = _dali_problem(exc)
            if _NO_MORE_INPUT in problem and self.frames_decoded > 0:
                return None
            raise DecodeError(
                self.path, f"corrupt stream after frame {self.frames_decoded} (DALI: {problem})"
            ) from exc
        sequence = torch.from_dlpack(sequences[0])
        return torch.rot90(sequence, self._turns, dims=(1, 2)) if self._turns else sequence

    def _to_batch(self, frames: list[torch.Tensor], indices: list[int]) -> FrameBatch:
        """Stack (and so copy out of DALI's buffers) ``N`` frames into one batch."""
        times = self._scan.times
        fps = self._info.fps
        stacked = torch.stack(frames)
        if self.network_input:  # [N, h, w, 1] -> [N, 1, h, w]: the same memory for one channel
            stacked = stacked.permute(0, 3, 1, 2)
        return FrameBatch(
            frames=stacked,
            indices=torch.tensor(indices, dtype=torch.int64),
            timestamps=torch.tensor(
                [times[i] if i < len(times) else i / fps for i in indices], dtype=torch.float64
            ),
        )

    def close(self) -> None:
        """Drop this video's hold on the pipeline (a private stream's pipeline goes with it)."""
        self._pipe = None
