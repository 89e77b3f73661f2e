"""Video decoding: one interface (:class:`VideoDecoder`), backends chosen at run time.

``pyav`` (CPU, any FFmpeg format), ``dali`` (NVDEC on a GPU; VP8/VP9/MJPEG on the CPU) and
``frames`` (folders of images). Backends are imported inside :func:`open_video`, so importing
this package never imports DALI.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from memtsm.extract.decode.base import (
    DecodeError,
    DecoderBackend,
    FrameBatch,
    FrameFilter,
    VideoDecoder,
    VideoInfo,
    keep_all,
)

__all__ = [
    "DecodeError",
    "DecoderBackend",
    "DecoderSession",
    "FrameBatch",
    "FrameFilter",
    "VideoDecoder",
    "VideoInfo",
    "dali_available",
    "expected_frames",
    "keep_all",
    "open_video",
    "resolve_backend",
]

logger = logging.getLogger(__name__)


def dali_available() -> bool:
    """Whether ``nvidia.dali`` is installed (checked without importing it)."""
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except (ImportError, ValueError):
        return False


def expected_frames(path: Path, is_frame_folder: bool) -> int:
    """Frames a source is expected to hold, for progress totals (0 when unknown).

    A frame folder: its image count. A file: the container's declared frame count, else its
    duration times its average frame rate. A broken file gives 0 here and a proper error when
    it is decoded.
    """
    if is_frame_folder:
        from memtsm.extract.sources import image_files

        return len(image_files(path))
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration and stream.time_base and stream.average_rate:
                return int(round(float(stream.duration * stream.time_base
                                       * stream.average_rate)))
            if container.duration and stream.average_rate:
                return int(round(container.duration / 1_000_000 * float(stream.average_rate)))
    except Exception:  # noqa: BLE001 - any unreadable header means "unknown"
        return 0
    return 0


def resolve_backend(backend: DecoderBackend | str, device: torch.device) -> DecoderBackend:
    """Turn ``auto`` into a concrete file backend: DALI when CUDA and DALI are both usable.

    ``frames`` is kept as is (it only applies to folders); ``dali`` is checked to be installed.
    """
    backend = DecoderBackend(backend)
    if backend is DecoderBackend.AUTO:
        if device.type == "cuda" and dali_available():
            chosen = DecoderBackend.DALI
        else:
            chosen = DecoderBackend.PYAV
        reason = "CUDA device and DALI present" if chosen is DecoderBackend.DALI else (
            "no CUDA device" if device.type != "cuda" else "DALI not installed")
        logger.info("decoder auto -> %s (%s)", chosen.value, reason)
        return chosen
    if backend is DecoderBackend.DALI and not dali_available():
        raise ImportError(
            "--decoder dali needs NVIDIA DALI: pip install 'memtsm[dali]' (CUDA 12) or "
            "'memtsm[dali-cuda130]' (CUDA 13)"
        )
    return backend


def open_video(
    path: Path | str,
    backend: DecoderBackend | str = DecoderBackend.PYAV,
    device: torch.device | str = "cpu",
    frames_fps: float = 30.0,
    luma: bool = False,
) -> VideoDecoder:
    """Open ``path`` with a concrete backend; a folder is always read as frame images.

    ``luma=True`` asks for ``[N, H, W, 1]`` grey frames where that is cheaper (PyAV, frame
    folders); DALI always delivers RGB.

    Raises:
        DecodeError: the file or folder cannot be opened as a video.
    """
    path = Path(path)
    backend = DecoderBackend(backend)
    device = torch.device(device)
    if path.is_dir() or backend is DecoderBackend.FRAMES:
        from memtsm.extract.decode.frames import FrameFolderDecoder

        return FrameFolderDecoder(path, fps=frames_fps, luma=luma)
    if backend is DecoderBackend.AUTO:
        backend = resolve_backend(backend, device)
    if backend is DecoderBackend.DALI:
        from memtsm.extract.decode.dali import DaliDecoder

        return DaliDecoder(path, device=device)
    from memtsm.extract.decode.pyav import PyAVDecoder

    return PyAVDecoder(path, luma=luma)


class DecoderSession:
    """Opens the videos of one run with one backend, sharing what can be shared between them.

    With DALI every video runs on one persistent pipeline (:class:`~memtsm.extract.decode.dali.
    DaliStream`); given ``network_size`` that pipeline also converts to grey and resizes, and
    delivers network input. PyAV and frame folders open each video on its own (``luma`` as in
    :func:`open_video`; they leave the resize to XFeat's preprocessing). Use from one thread.

    Args:
        backend: any :class:`DecoderBackend` (``auto`` is resolved here, as in
            :func:`resolve_backend`); folders are always read as frame folders.
        device: where frames are delivered (DALI decodes there).
        frames_fps: frame rate assumed for frame folders.
        luma: ask PyAV and frame folders for grey ``[N, H, W, 1]`` frames.
        network_size: ``(width, height) -> (w, h)`` of the network input
            (:meth:`~memtsm.extract.config.FeatureSpec.network_size`), used by DALI.
    """

    def __init__(self, backend: DecoderBackend | str, device: torch.device | str = "cpu",
                 frames_fps: float = 30.0, luma: bool = False,
                 network_size: Callable[[int, int], tuple[int, int]] | None = None) -> None:
        self.device = torch.device(device)
        self.backend = DecoderBackend(backend)
        if self.backend is DecoderBackend.AUTO:
            self.backend = resolve_backend(self.backend, self.device)
        self.frames_fps = frames_fps
        self.luma = luma
        self.network_size = network_size
        self._dali_stream: Any = None

    @property
    def pipelines_built(self) -> int:
        """DALI pipelines built by this session so far (0 for the other backends)."""
        return self._dali_stream.pipelines_built if self._dali_stream is not None else 0

    def open(self, path: Path | str) -> VideoDecoder:
        """A decoder for one video (a file, or a folder of frames).

        Raises:
            DecodeError: the file or folder cannot be opened as a video.
        """
        path = Path(path)
        if self.backend is DecoderBackend.DALI and not path.is_dir():
            if self._dali_stream is None:
                from memtsm.extract.decode.dali import DaliStream

                self._dali_stream = DaliStream(self.device, self.network_size)
            return self._dali_stream.open(path)
        return open_video(path, self.backend, self.device, self.frames_fps, luma=self.luma)

    def close(self) -> None:
        """Drop the persistent DALI pipeline, if any."""
        if self._dali_stream is not None:
            self._dali_stream.close()
            self._dali_stream = None

    def __enter__(self) -> DecoderSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
