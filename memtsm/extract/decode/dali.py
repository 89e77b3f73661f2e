"""Decoding with NVIDIA DALI: NVDEC on a CUDA device, VP8/VP9/MJPEG on the CPU.

The encoded file is fed once to ``fn.experimental.inputs.video``, which streams it: every pipeline
run decodes the next ``frames_per_sequence`` frames in display order (the last sequence may be
shorter), so memory stays bounded whatever the video's length. One pipeline definition serves both
devices; only the operator's device differs (``"mixed"`` = NVDEC, or ``"cpu"``).

DALI 2.4 reports neither frame indices nor timestamps for this operator, and a run past the end of
the video is an error. So the file is first scanned with PyAV (demuxing only, no decoding): the
header's frame count or else the packet count (what DALI itself uses) gives the number of runs, and
the sorted packet times give each frame's timestamp.

This module imports ``nvidia.dali``; import it only when the DALI backend is chosen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from nvidia.dali import fn, pipeline_def

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
_NUM_THREADS = 2
# DALI's error when a run finds its input used up (the header overstated the frame count).
_NO_MORE_INPUT = "No data was provided to the InputOperator"


@pipeline_def(batch_size=1, num_threads=_NUM_THREADS, prefetch_queue_depth=1, exec_dynamic=True)
def _sequence_pipeline(decoder_device: str, frames_per_sequence: int):
    """One sequence per run: ``uint8 [F, H, W, 3]`` RGB, ``F <= frames_per_sequence``.

    ``prefetch_queue_depth=1`` so DALI never runs ahead past the end of the video;
    ``exec_dynamic`` keeps returned outputs valid while they are referenced.
    """
    return fn.experimental.inputs.video(
        name=_INPUT_NAME,
        device=decoder_device,
        sequence_length=frames_per_sequence,
        last_sequence_policy="partial",
    )


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
    """

    backend = "dali"

    def __init__(
        self,
        path: Path,
        device: torch.device,
        frames_per_sequence: int | None = None,
    ) -> None:
        super().__init__(path)
        if frames_per_sequence is not None and frames_per_sequence < 1:
            raise ValueError(f"frames_per_sequence must be >= 1, got {frames_per_sequence}")
        self._device = torch.device(device)
        on_gpu = self._device.type == "cuda"
        with PyAVDecoder(self.path) as probe:  # header, and clear errors for unreadable files
            self._info = probe.info
        frame_bytes = self._info.width * self._info.height * 3
        self._frames_per_sequence = frames_per_sequence or max(
            1, min(DEFAULT_FRAMES_PER_SEQUENCE, SEQUENCE_BYTES // frame_bytes))
        self._check_codec(on_gpu)
        self._scan = _scan_packets(self.path)
        if self._scan.header_frames and self._scan.header_frames != self._scan.packets:
            logger.warning(
                "%s: header says %d frames but the stream has %d packets; DALI decodes %d",
                self.path,
                self._scan.header_frames,
                self._scan.packets,
                self._scan.dali_frames,
            )
        self._pipe = _sequence_pipeline(
            decoder_device="mixed" if on_gpu else "cpu",
            frames_per_sequence=self._frames_per_sequence,
            device_id=(self._device.index or 0) if on_gpu else None,
        )
        self._pipe.build()
        self._pipe.feed_input(_INPUT_NAME, [np.fromfile(self.path, dtype=np.uint8)])

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

    def batches(self, batch_size: int, want: FrameFilter = keep_all) -> Iterator[FrameBatch]:
        """Yield wanted frames ``uint8 [N, H, W, 3]`` on :attr:`device`, as in the base class.

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
        """Every frame in display order: ``(index, uint8 [H, W, 3] view into DALI's output)``."""
        num_runs = math.ceil(self._scan.dali_frames / self._frames_per_sequence)
        for _ in range(num_runs):
            sequence = self._next_sequence()
            if sequence is None:
                return
            start = self.frames_decoded
            self.frames_decoded += len(sequence)
            for offset, frame in enumerate(sequence):
                yield start + offset, frame
            if len(sequence) < self._frames_per_sequence:
                return  # the last, partial sequence

    def _next_sequence(self) -> torch.Tensor | None:
        """Run the pipeline once: ``uint8 [F, H, W, 3]`` on the device, or None past the end."""
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
        turns = self._info.rotation // 90
        return torch.rot90(sequence, turns, dims=(1, 2)) if turns else sequence

    def _to_batch(self, frames: list[torch.Tensor], indices: list[int]) -> FrameBatch:
        """Stack (and so copy out of DALI's buffers) ``N`` frames into one batch."""
        times = self._scan.times
        fps = self._info.fps
        return FrameBatch(
            frames=torch.stack(frames),
            indices=torch.tensor(indices, dtype=torch.int64),
            timestamps=torch.tensor(
                [times[i] if i < len(times) else i / fps for i in indices], dtype=torch.float64
            ),
        )

    def close(self) -> None:
        """Drop the pipeline (and with it the encoded file and DALI's buffers)."""
        self._pipe = None
