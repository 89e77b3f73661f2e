"""Alerts of one stream: hysteresis on final scores, evidence clips, and the ``--on-alert`` hook.

* :class:`AlertTracker` opens an alert when ``open_after`` consecutive final segment scores are at
  or above the checkpoint's threshold and closes it after ``close_after`` consecutive segments
  below it (:class:`~memtsm.watch.config.AlertConfig`); a run that ends (gap, end, shutdown)
  closes it too. Final scores are used, so alerts are the same whatever the timing of arrival.
* :class:`EvidenceRecorder` keeps the stream's recent frames in a bounded ring buffer and writes
  each alert's MP4 clip (pre-roll before its first segment, post-roll after its last) and a JPEG
  thumbnail of its peak segment. Frames are the luma plane the scorer saw (grey video): turning
  every frame of every stream into RGB would cost about 3x the decoding.
* :class:`AlertHooks` runs the user's command (an argv list, never a shell) for every alert event
  with the event's JSON on its standard input.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from memtsm.runtime.files import atomic_path, temporary_sibling
from memtsm.watch.config import AlertConfig
from memtsm.watch.scoring import SegmentScore

logger = logging.getLogger(__name__)

#: Encoders tried for evidence clips, best first (PyAV's wheels ship libx264).
CLIP_ENCODERS = ("libx264", "mpeg4")


def slug(name: str) -> str:
    """A file-name-safe form of a stream name (``rtsp://cam/1`` -> ``rtsp_cam_1``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:80] or "stream"


@dataclass
class _OpenAlert:
    alert: str
    first: SegmentScore
    peak: SegmentScore
    last_above: SegmentScore
    segments: int = 0


@dataclass
class AlertTracker:
    """Hysteresis over one stream's final segment scores; events are JSON-able dicts."""

    stream: str
    config: AlertConfig
    threshold: float
    count: int = 0
    _above: list[SegmentScore] = field(default_factory=list)
    _below: int = 0
    _open: _OpenAlert | None = None

    @property
    def is_open(self) -> bool:
        """Whether an alert is open."""
        return self._open is not None

    def feed(self, segment: SegmentScore) -> list[dict[str, Any]]:
        """Take one final segment score; return the open/close events it causes."""
        above = segment.score >= self.threshold
        if self._open is None:
            self._above = self._above + [segment] if above else []
            if len(self._above) < self.config.open_after:
                return []
            self.count += 1
            peak = max(self._above, key=lambda s: s.score)
            self._open = _OpenAlert(f"{slug(self.stream)}-{self.count:04d}", self._above[0],
                                    peak, segment, len(self._above))
            self._above, self._below = [], 0
            return [self._event("alert_open", segment.wall_time)]
        alert = self._open
        alert.segments += 1
        if above:
            self._below = 0
            alert.last_above = segment
            if segment.score > alert.peak.score:
                alert.peak = segment
            return []
        self._below += 1
        if self._below < self.config.close_after:
            return []
        return [self.close("scores below the threshold", segment.wall_time)]

    def close(self, reason: str, now: float) -> dict[str, Any]:
        """Close the open alert (the run ended, or the scores fell); return its event."""
        event = self._event("alert_close", now, reason)
        self._open, self._above, self._below = None, [], 0
        return event

    def end_run(self, reason: str, now: float) -> list[dict[str, Any]]:
        """The run ended: close an open alert; a partial streak above is forgotten."""
        self._above, self._below = [], 0
        return [self.close(reason, now)] if self._open is not None else []

    def _event(self, kind: str, now: float, reason: str | None = None) -> dict[str, Any]:
        alert = self._open
        event = {"event": kind, "stream": self.stream, "alert": alert.alert,
                 "start_frame": alert.first.clip.start_frame,
                 "start_time": alert.first.clip.start_time,
                 "peak_score": alert.peak.score, "peak_index": alert.peak.clip.index,
                 "peak_frame": (alert.peak.clip.start_frame + alert.peak.clip.end_frame) // 2,
                 "threshold": self.threshold, "wall_time": round(now, 4)}
        if kind == "alert_close":
            event.update(end_frame=alert.last_above.clip.end_frame,
                         end_time=alert.last_above.clip.end_time, segments=alert.segments,
                         reason=reason)
        return event


class _ClipWriter:
    """One evidence MP4 being written (to a temporary name; renamed when complete)."""

    def __init__(self, path: Path, fps: float, height: int, width: int) -> None:
        import av

        self.path = path
        self.tmp = temporary_sibling(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.height, self.width = height - height % 2, width - width % 2  # yuv420p: even sides
        self.container = av.open(str(self.tmp), mode="w")
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        for name in CLIP_ENCODERS:
            try:
                self.stream = self.container.add_stream(name, rate=rate)
                break
            except (av.FFmpegError, ValueError) as exc:  # an encoder this FFmpeg lacks
                last_error = exc
        else:
            self.container.close()
            raise RuntimeError(f"no video encoder for evidence clips ({last_error})")
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        if self.stream.codec_context.name == "libx264":
            self.stream.options = {"preset": "veryfast", "crf": "23"}
        self.first_frame: int | None = None
        self.last_frame = -1
        self.stop_frame: int | None = None

    def write(self, index: int, image: np.ndarray) -> None:
        import av

        if index <= self.last_frame:
            return
        plane = np.ascontiguousarray(image[: self.height, : self.width, 0])
        frame = av.VideoFrame.from_ndarray(plane, format="gray").reformat(format="yuv420p")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.first_frame = index if self.first_frame is None else self.first_frame
        self.last_frame = index

    def finish(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.tmp.replace(self.path)

    def abandon(self) -> None:
        self.container.close()
        self.tmp.unlink(missing_ok=True)


class EvidenceRecorder:
    """A stream's recent frames (bounded ring) and the evidence clips of its alerts.

    Frames enter the ring as they arrive, but go into a clip only once they are *settled*: older
    than the newest final score (:meth:`settle`), since alerts are decided on final scores, which
    come the scorer's look-ahead after the frames. An open alert's clip also holds back the last
    ``close_after`` segments (less the post-roll): if the alert closes there, those frames may lie
    past its post-roll.
    """

    def __init__(self, folder: Path, fps: float, capacity: int, config: AlertConfig,
                 clip_len: int) -> None:
        self.folder = folder
        self.fps = fps
        self.config = config
        self.hold = max(0, config.close_after * clip_len - self._frames(config.post_roll))
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=max(1, capacity))
        self._writers: dict[str, _ClipWriter] = {}
        self._settled = 0

    def _frames(self, seconds: float) -> int:
        return int(round(seconds * self.fps))

    def add(self, index: int, image: np.ndarray) -> None:
        """Keep a frame (``uint8 [H, W, 1]``) in the ring."""
        self._ring.append((index, image))

    def settle(self, frame: int) -> list[dict[str, Any]]:
        """Frames before ``frame`` have final scores: write them; return completed clips."""
        self._settled = max(self._settled, frame)
        done = []
        for alert, writer in list(self._writers.items()):
            limit = self._settled - self.hold if writer.stop_frame is None \
                else min(self._settled, writer.stop_frame)
            for index, image in self._ring:
                if index < limit:
                    writer.write(index, image)
            if writer.stop_frame is not None and writer.last_frame + 1 >= writer.stop_frame:
                done.append(self._finish(alert))
        return done

    def start(self, event: dict[str, Any], peak_frame: int) -> dict[str, Any]:
        """An alert opened: write its thumbnail and begin its clip with the pre-roll."""
        alert = event["alert"]
        thumbnail = self.folder / f"{alert}.jpg"
        image = dict(self._ring).get(peak_frame)
        if image is not None:
            from PIL import Image

            with atomic_path(thumbnail) as tmp:
                Image.fromarray(image[:, :, 0]).save(tmp, format="JPEG", quality=85)
        height, width = self._ring[-1][1].shape[:2]
        writer = _ClipWriter(self.folder / f"{alert}.mp4", self.fps, height, width)
        writer.last_frame = event["start_frame"] - self._frames(self.config.pre_roll) - 1
        self._writers[alert] = writer
        self.settle(self._settled)
        return {"thumbnail": str(thumbnail) if image is not None else None,
                "clip": str(writer.path)}

    def stop(self, alert: str, end_frame: int) -> list[dict[str, Any]]:
        """The alert closed: its clip ends ``post_roll`` after ``end_frame``."""
        writer = self._writers.get(alert)
        if writer is None:
            return []
        writer.stop_frame = end_frame + self._frames(self.config.post_roll)
        return self.settle(self._settled)

    def close(self) -> list[dict[str, Any]]:
        """The run ended: finish every clip with the frames there are; clear the ring."""
        if self._ring:
            self.settle(self._ring[-1][0] + 1)
        done = [self._finish(alert) for alert in list(self._writers)]
        self._ring.clear()
        self._settled = 0
        return done

    def _finish(self, alert: str) -> dict[str, Any]:
        writer = self._writers.pop(alert)
        if writer.first_frame is None:
            writer.abandon()
            return {"event": "evidence", "alert": alert, "clip": None}
        writer.finish()
        return {"event": "evidence", "alert": alert, "clip": str(writer.path),
                "start_frame": writer.first_frame, "end_frame": writer.last_frame + 1}


def _stderr_fd() -> int:
    """The command's output goes to stderr: stdout may carry the JSON lines."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stderr without a file (captured)
        return subprocess.DEVNULL


class AlertHooks:
    """Runs ``argv`` for every alert event, the event's JSON on its stdin (no shell)."""

    def __init__(self, argv: tuple[str, ...]) -> None:
        self.argv = list(argv)
        self._running: list[subprocess.Popen] = []

    def __call__(self, event: dict[str, Any]) -> None:
        """Start the command for ``event`` (without waiting for it)."""
        if not self.argv:
            return
        try:
            process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=_stderr_fd(),
                                       close_fds=True)
        except OSError as exc:
            logger.error("--on-alert %s: cannot run it (%s)", self.argv[0], exc)
            return
        try:
            process.stdin.write((json.dumps(event) + "\n").encode())
            process.stdin.close()
        except OSError:  # the command exited without reading
            pass
        self._running.append(process)
        self.reap()

    def reap(self) -> None:
        """Forget finished commands, logging those that failed."""
        for process in list(self._running):
            code = process.poll()
            if code is not None:
                self._running.remove(process)
                if code != 0:
                    logger.warning("--on-alert %s exited with status %d", self.argv[0], code)

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for the running commands (at shutdown)."""
        for process in self._running:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("--on-alert %s still running at exit", self.argv[0])
        self.reap()
