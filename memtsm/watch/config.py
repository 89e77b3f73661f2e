"""Typed configuration of ``memtsm watch`` (standard library only, so the CLI reads its defaults).

:class:`WatchConfig` is how the streams are read and scored; :class:`AlertConfig` when an alert
opens and closes and what evidence it leaves. The feature spec is never configured here: it is
the checkpoint's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: ``--rtsp-transport`` choices (FFmpeg's ``rtsp_transport`` option).
RTSP_TRANSPORTS = ("tcp", "udp")


@dataclass(frozen=True)
class AlertConfig:
    """Hysteresis of alerts on final segment scores, and their evidence clips.

    With 16-frame clips at 30 fps a segment is about 0.53 s: by default an alert opens after about
    1 s above the checkpoint's threshold and closes after about 2 s below it, so one noisy segment
    neither opens nor closes one.
    """

    open_after: int = 2
    """Consecutive segments at or above the threshold that open an alert (``--alert-after``)."""
    close_after: int = 4
    """Consecutive segments below the threshold that close it (``--alert-clear``)."""
    pre_roll: float = 3.0
    """Seconds of video before the alert's first segment in its evidence clip (``--pre-roll``)."""
    post_roll: float = 3.0
    """Seconds of video after its last segment (``--post-roll``)."""
    on_alert: tuple[str, ...] = ()
    """A command (argv, no shell) run at every alert event with the event's JSON on stdin."""

    def __post_init__(self) -> None:
        if self.open_after < 1 or self.close_after < 1:
            raise ValueError(f"--alert-after and --alert-clear must be >= 1, got "
                             f"{self.open_after} and {self.close_after}")
        if self.pre_roll < 0 or self.post_roll < 0:
            raise ValueError(f"--pre-roll and --post-roll must be >= 0, got {self.pre_roll} "
                             f"and {self.post_roll}")


@dataclass(frozen=True)
class WatchConfig:
    """How ``memtsm watch`` reads and scores its sources."""

    device: str = "auto"
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``: where XFeat and the scorer run."""
    engine: str = "auto"
    """XFeat inference engine (:mod:`memtsm.extract.engines`), shared by every stream."""
    xfeat_weights: str | None = None
    """XFeat weights file (``None``: ``$MEMTSM_XFEAT_WEIGHTS``, the cache, a download)."""
    batch_size: int = 16
    """Most frames of one stream per XFeat call (fewer when the stream is caught up)."""
    realtime: bool = False
    """Read video files at their own frame rate instead of as fast as possible."""
    follow: bool = False
    """Follow files and frame folders that are still being written (like ``tail -f``) until
    they stop growing for ``stall_seconds``."""
    frames_fps: float = 30.0
    """Frame rate of frame folders."""
    rtsp_transport: str = "tcp"
    """Transport of ``rtsp://`` sources: ``tcp`` | ``udp``."""
    open_timeout: float = 10.0
    """Seconds to wait for a network source to open."""
    stall_seconds: float = 5.0
    """A live source that delivers no data for this long has stalled and is reconnected (a
    followed file or folder that does not grow for this long has ended)."""
    reconnect_initial: float = 0.5
    """First wait before reconnecting a dropped live source; doubled after every failed try."""
    reconnect_max: float = 30.0
    """Longest wait between reconnection tries."""
    max_reconnects: int | None = None
    """Give a live source up after this many failed reconnections in a row (``None``: never)."""
    queue_frames: int = 256
    """Decoded frames buffered per stream ahead of XFeat (bounds memory; a full queue makes the
    reader wait)."""
    alerts: AlertConfig = field(default_factory=AlertConfig)

    def __post_init__(self) -> None:
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            raise ValueError(f"--rtsp-transport must be one of {RTSP_TRANSPORTS}, got "
                             f"{self.rtsp_transport!r}")
        if self.batch_size < 1 or self.queue_frames < 1:
            raise ValueError("batch_size and queue_frames must be >= 1")
        if self.stall_seconds <= 0 or self.open_timeout <= 0:
            raise ValueError(f"--stall-seconds and --open-timeout must be > 0, got "
                             f"{self.stall_seconds} and {self.open_timeout}")
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            raise ValueError("reconnection waits must satisfy 0 < initial <= max, got "
                             f"{self.reconnect_initial} and {self.reconnect_max}")
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise ValueError(f"--max-reconnects must be >= 0, got {self.max_reconnects}")
        if self.frames_fps <= 0:
            raise ValueError(f"--fps must be > 0, got {self.frames_fps}")

    def reconnect_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` (>= 1) failed connections in a row."""
        return min(self.reconnect_max, self.reconnect_initial * 2 ** (failures - 1))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (written next to the outputs)."""
        return dataclasses.asdict(self)
