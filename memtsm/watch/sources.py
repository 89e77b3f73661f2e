"""Where live frames come from: one interface (:class:`StreamSource`) for every kind of source.

* a video file or frame folder, read once, as fast as possible or at its own frame rate
  (``realtime``); decoded by :mod:`memtsm.extract.decode` exactly as ``memtsm score`` does;
* a file still being written (``follow``: read like ``tail -f`` until it stops growing; a
  container that can be read while written, such as MPEG-TS or Matroska);
* a frame folder that grows (``follow``: new image files are read as they appear);
* a network stream (``rtsp://`` over TCP or UDP, ``rtmp://``, ``http(s)://``, ``tcp://``,
  ``udp://``, ``srt://``) or a V4L2 camera (``/dev/videoN``), read with PyAV (FFmpeg). These are
  *live*: when they drop or stall the runner reconnects them.

A source is opened with :meth:`StreamSource.connect`, which returns a :class:`Connection` (its
:class:`StreamInfo` and an iterator of :class:`Frame` s: luma ``uint8 [H, W, 1]``, the plane
XFeat reads). Every problem is a :class:`SourceError` whose message names the source. PyAV is
imported when a source connects.
"""

from __future__ import annotations

import abc
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from memtsm.extract.decode import DecodeError, open_video
from memtsm.extract.sources import image_files
from memtsm.watch.config import WatchConfig

#: URL schemes read as network streams by FFmpeg.
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp", "udp", "srt")
#: How often a followed file or folder is checked for new data.
POLL_SECONDS = 0.05
_DEFAULT_FPS = 30.0


class SourceError(ValueError):
    """A source cannot be opened or read; the message names the source and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


@dataclass(frozen=True)
class StreamInfo:
    """What a connection says about its video."""

    fps: float
    width: int
    height: int
    codec: str


class Frame(NamedTuple):
    """One decoded frame."""

    image: np.ndarray
    """``uint8 [H, W, 1]`` luma."""
    time: float
    """Presentation time in seconds (from the source's clock; may start anywhere)."""


class Connection(abc.ABC):
    """One open connection to a source; close it (or use it as a context manager)."""

    info: StreamInfo

    @abc.abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Frames in display order until the source ends (returns) or fails (SourceError)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the source."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamSource(abc.ABC):
    """A named source of frames; ``live`` sources are reconnected when they end or fail."""

    live: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    def connect(self, stop: threading.Event) -> Connection:
        """Open the source; ``stop`` set by another thread ends waits early.

        Raises:
            SourceError: naming the source.
        """


def display_name(source: str) -> str:
    """``source`` with any password in a URL replaced by ``***`` (names go into logs and JSON)."""
    parts = urlsplit(source)
    if parts.scheme in NETWORK_SCHEMES and parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return source


def open_source(source: str, config: WatchConfig) -> StreamSource:
    """The :class:`StreamSource` for a command-line ``SOURCE``.

    Raises:
        SourceError: ``source`` is neither a stream URL, a camera device nor an existing path.
    """
    name = display_name(source)
    scheme = urlsplit(source).scheme
    if scheme in NETWORK_SCHEMES:
        return NetworkSource(source, name, config)
    if source.startswith("/dev/video"):
        return NetworkSource(source, name, config, container_format="v4l2")
    path = Path(source)
    if path.is_dir():
        return GrowingFolderSource(path, name, config) if config.follow \
            else FileSource(path, name, config)
    if path.is_file():
        return FollowedFileSource(path, name, config) if config.follow \
            else FileSource(path, name, config)
    if scheme:
        raise SourceError(name, f"unsupported stream type {scheme!r} (known: "
                          f"{', '.join(s + '://' for s in NETWORK_SCHEMES)}, /dev/videoN)")
    raise SourceError(name, "no such file or folder, and not a stream URL")


def _problem(exc: BaseException) -> str:
    """FFmpeg's reason without its error number and the path."""
    return str(getattr(exc, "strerror", None) or exc)


# -- video files and frame folders, read once -------------------------------------------------


class FileSource(StreamSource):
    """A whole file or frame folder, decoded as ``memtsm score`` decodes it (PyAV, luma)."""

    def __init__(self, path: Path, name: str, config: WatchConfig) -> None:
        super().__init__(name)
        self.path = path
        self.config = config

    def connect(self, stop: threading.Event) -> Connection:
        """Open the file (raises SourceError)."""
        try:
            decoder = open_video(self.path, "pyav", "cpu", self.config.frames_fps, luma=True)
        except DecodeError as exc:
            raise SourceError(self.name, exc.problem) from exc
        return _FileConnection(self, decoder, stop)


class _FileConnection(Connection):
    def __init__(self, source: FileSource, decoder, stop: threading.Event) -> None:
        self.source = source
        self.decoder = decoder
        self.stop = stop
        info = decoder.info
        self.info = StreamInfo(info.fps, info.width, info.height, info.codec)

    def frames(self) -> Iterator[Frame]:
        pace = _Pacer(self.stop) if self.source.config.realtime else None
        try:
            for batch in self.decoder.batches(1):
                frame = Frame(batch.frames[0].numpy(), float(batch.timestamps[0]))
                if pace is not None:
                    pace.wait_for(frame.time)
                yield frame
        except DecodeError as exc:
            raise SourceError(self.source.name, exc.problem) from exc

    def close(self) -> None:
        self.decoder.close()


class _Pacer:
    """Sleeps so frames come out at their presentation times (``--realtime``)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.origin: tuple[float, float] | None = None  # (frame time, wall clock)

    def wait_for(self, frame_time: float) -> None:
        now = time.monotonic()
        if self.origin is None:
            self.origin = (frame_time, now)
            return
        due = self.origin[1] + (frame_time - self.origin[0])
        if due > now:
            self.stop.wait(due - now)


# -- sources that grow --------------------------------------------------------------------------


class _GrowingFile(io.RawIOBase):
    """A file read like ``tail -f``: at its end, wait for more until it stops growing."""

    def __init__(self, path: Path, idle_seconds: float, stop: threading.Event) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.idle_seconds = idle_seconds
        self.stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        waited_since = time.monotonic()
        while True:
            count = self._file.readinto(buffer)
            if count:
                return count
            if self.stop.is_set() or time.monotonic() - waited_since > self.idle_seconds:
                return 0
            self.stop.wait(POLL_SECONDS)

    def close(self) -> None:
        self._file.close()
        super().close()


class FollowedFileSource(StreamSource):
    """A video file still being written, read until it has not grown for ``stall_seconds``."""

    def __init__(self, path: Path, name: str, config: WatchConfig) -> None:
        super().__init__(name)
        self.path = path
        self.config = config

    def connect(self, stop: threading.Event) -> Connection:
        """Open the file and its container (raises SourceError)."""
        import av

        handle = _GrowingFile(self.path, self.config.stall_seconds, stop)
        try:
            container = av.open(handle, mode="r")
        except (av.FFmpegError, OSError) as exc:
            handle.close()
            raise SourceError(self.name, f"not a readable video container ({_problem(exc)}); a "
                              "file followed while written must be MPEG-TS, Matroska or similar"
                              ) from exc
        return _AVConnection(self.name, container, self.config.stall_seconds, handle)


class GrowingFolderSource(StreamSource):
    """A folder of frame images that grows; ends when no image arrives for ``stall_seconds``."""

    def __init__(self, path: Path, name: str, config: WatchConfig) -> None:
        super().__init__(name)
        self.path = path
        self.config = config

    def connect(self, stop: threading.Event) -> Connection:
        """Wait for the first image (raises SourceError when none comes)."""
        decoder = self._wait_for_images(stop, 0)
        if decoder is None:
            raise SourceError(self.name, "the folder holds no image files")
        info = decoder.info
        decoder.close()
        return _FolderConnection(self, StreamInfo(info.fps, info.width, info.height, "images"),
                                 stop)

    def _wait_for_images(self, stop: threading.Event, done: int):
        """A decoder of the folder once it holds more than ``done`` settled images, or None."""
        waited_since = time.monotonic()
        while not stop.is_set():
            try:
                decoder = open_video(self.path, "frames", "cpu", self.config.frames_fps,
                                     luma=True)
            except DecodeError as exc:
                if "no image files" not in exc.problem:
                    raise SourceError(self.name, exc.problem) from exc
            else:
                if self._settled(decoder) > done:
                    return decoder
                decoder.close()
            if time.monotonic() - waited_since > self.config.stall_seconds:
                return None
            stop.wait(POLL_SECONDS)
        return None

    def _settled(self, decoder) -> int:
        """Images that can be read: all but the newest while it may still be being written."""
        count = decoder.info.num_frames
        newest = image_files(self.path)[count - 1].stat().st_mtime
        return count if time.time() - newest > POLL_SECONDS * 4 else count - 1


class _FolderConnection(Connection):
    def __init__(self, source: GrowingFolderSource, info: StreamInfo,
                 stop: threading.Event) -> None:
        self.source = source
        self.info = info
        self.stop = stop

    def frames(self) -> Iterator[Frame]:
        done = 0
        while True:
            decoder = self.source._wait_for_images(self.stop, done)
            if decoder is None:
                return
            limit = self.source._settled(decoder)
            start = done
            try:
                for batch in decoder.batches(1, lambda i, lo=start, hi=limit: lo <= i < hi):
                    done = int(batch.indices[0]) + 1
                    yield Frame(batch.frames[0].numpy(), float(batch.timestamps[0]))
            except DecodeError as exc:
                raise SourceError(self.source.name, exc.problem) from exc
            finally:
                decoder.close()


# -- network streams and cameras --------------------------------------------------------------


class NetworkSource(StreamSource):
    """A stream FFmpeg opens by URL (or a V4L2 device): live, reconnected when it drops."""

    live = True

    def __init__(self, url: str, name: str, config: WatchConfig,
                 container_format: str | None = None) -> None:
        super().__init__(name)
        self.url = url
        self.config = config
        self.container_format = container_format

    def options(self) -> dict[str, str]:
        """FFmpeg options of the connection."""
        scheme = urlsplit(self.url).scheme
        if scheme in ("rtsp", "rtsps"):
            return {"rtsp_transport": self.config.rtsp_transport}
        if scheme == "udp":
            return {"overrun_nonfatal": "1", "fifo_size": "50000"}
        return {}

    def connect(self, stop: threading.Event) -> Connection:
        """Connect (raises SourceError: unreachable, not a video stream, ...)."""
        import av

        try:
            container = av.open(self.url, mode="r", format=self.container_format,
                                options=self.options(),
                                timeout=(self.config.open_timeout, self.config.stall_seconds))
        except av.FFmpegError as exc:
            raise SourceError(self.name, f"cannot open the stream ({_problem(exc)})") from exc
        return _AVConnection(self.name, container, self.config.stall_seconds)


class _AVConnection(Connection):
    """Frames of an open PyAV container (a network stream or a followed file)."""

    def __init__(self, name: str, container, stall_seconds: float,
                 handle: io.RawIOBase | None = None) -> None:
        self.name = name
        self.stall_seconds = stall_seconds
        self.container = container
        self.handle = handle
        if not container.streams.video:
            self.close()
            raise SourceError(name, "no video stream in the source")
        self.stream = container.streams.video[0]
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        context = self.stream.codec_context
        self.info = StreamInfo(float(rate) if rate else _DEFAULT_FPS, int(context.width),
                               int(context.height), str(context.name))

    def frames(self) -> Iterator[Frame]:
        import av

        from memtsm.extract.decode.pyav import luma_plane

        count = 0
        try:
            for frame in self.container.decode(self.stream):
                seconds = frame.time if frame.time is not None else count / self.info.fps
                count += 1
                yield Frame(luma_plane(frame), float(seconds))
        except av.ExitError as exc:  # the read timeout: no data for stall_seconds
            raise SourceError(self.name, "stalled: no data for "
                              f"{self.stall_seconds:g} s") from exc
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(self.name, f"stream broke after {count} frames "
                              f"({_problem(exc)})") from exc

    def close(self) -> None:
        self.container.close()
        if self.handle is not None:
            self.handle.close()
