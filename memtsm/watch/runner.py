"""``memtsm watch``: live sources -> XFeat -> clip pooling -> windowed scorer -> JSON lines.

One reader thread per source (:mod:`memtsm.watch.sources`) decodes frames into a bounded queue;
the calling thread runs everything else for all streams in turn: XFeat (one engine shared by
every stream, one call for the new frames of all streams, each stream keeping its own
previous-frame state), clip pooling
(:class:`~memtsm.extract.xfeat.ClipPooler`), the scorer over a sliding window
(:mod:`memtsm.watch.scoring`), alerts and evidence clips (:mod:`memtsm.watch.alerts`).

A *run* is a stretch of consecutive frames of one stream: clips, scores and the scorer's context
never cross a run boundary. A run ends at the end of the source, when a live source drops or
stalls (it is then reconnected with exponential backoff; the gap is an event), when the frame
size changes, and at shutdown; its last scores are then made final with the context there is.
For a video file the final scores therefore equal ``memtsm score``'s.

Every event is a JSON-able dict with ``event`` and ``stream`` keys, given to a sink (see
:class:`JsonLines`): ``connected``, ``segment`` (provisional and final scores), ``gap``,
``alert_open``, ``alert_close``, ``evidence``, ``error`` and ``end``.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

import memtsm
from memtsm.extract.xfeat import ClipPooler, XFeatDescriptor, describe_together
from memtsm.runtime.files import atomic_write_text
from memtsm.score.video import open_scorer
from memtsm.train.checkpoint import Checkpoint
from memtsm.watch.alerts import AlertHooks, AlertTracker, EvidenceRecorder, slug
from memtsm.watch.config import WatchConfig
from memtsm.watch.scoring import Clip, WindowScorer
from memtsm.watch.sources import Frame, SourceError, StreamInfo, StreamSource, open_source

logger = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], None]
#: How long the scoring loop sleeps when no stream has work (a new frame wakes it at once).
IDLE_WAIT = 0.05
WATCH_CONFIG_NAME = "watch_config.json"
#: One XFeat call takes the frames of several streams, at most this many batches' worth (larger
#: calls gained no speed but grew the engine's buffers: peak RSS 675 -> 1032 MiB at 8 streams).
CALL_BATCHES = 2


class JsonLines:
    """A sink writing one JSON object per line to a file (appended) or stdout, flushed each line.

    A live log is appended line by line (readers follow it while it grows), so it is not written
    atomically; every line is complete when flushed.
    """

    def __init__(self, target: Path | str | IO[str] | None = "-") -> None:
        if target is None or target == "-":
            self._handle, self._own = sys.stdout, False
        elif isinstance(target, (str, Path)):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._handle, self._own = open(target, "a", encoding="utf-8"), True  # noqa: SIM115
        else:
            self._handle, self._own = target, False

    def __call__(self, event: dict[str, Any]) -> None:
        """Write one event as a line."""
        self._handle.write(json.dumps(event) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Flush, and close a file this sink opened."""
        self._handle.flush()
        if self._own:
            self._handle.close()


def tee(*sinks: Sink) -> Sink:
    """One sink that gives every event to each of ``sinks`` in turn."""
    def send(event: dict[str, Any]) -> None:
        for sink in sinks:
            sink(event)

    return send


# Items a reader thread puts in its stream's queue, in order:
# _Connected, Frame..., then _Gap (a live source will be reconnected), _Ended or _Failed.
@dataclass(frozen=True)
class _Connected:
    info: StreamInfo


@dataclass(frozen=True)
class _Gap:
    reason: str
    retry_in: float
    attempt: int


@dataclass(frozen=True)
class _Ended:
    reason: str


@dataclass(frozen=True)
class _Failed:
    message: str


class _Reader:
    """A daemon thread reading one source, reconnecting a live one with exponential backoff."""

    def __init__(self, source: StreamSource, config: WatchConfig, wake: threading.Event) -> None:
        self.source = source
        self.config = config
        self.wake = wake
        self.queue: queue.Queue = queue.Queue(maxsize=config.queue_frames)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"memtsm-watch-{slug(source.name)[:20]}")

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                self.wake.set()
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        failures = 0
        try:
            while not self.stop.is_set():
                reason, delivered = self._connection()
                if self.stop.is_set():
                    return
                if not self.source.live:
                    self._put(_Ended("end of the source") if reason is None
                              else _Failed(reason))
                    return
                failures = 1 if delivered else failures + 1
                limit = self.config.max_reconnects
                if limit is not None and failures > limit:
                    self._put(_Failed(f"{reason or self.source.name + ': the stream ended'}; "
                                      f"gave up after {limit} reconnection(s)"))
                    return
                delay = self.config.reconnect_delay(failures)
                self._put(_Gap(reason or f"{self.source.name}: the stream ended", delay,
                               failures))
                self.stop.wait(delay)
        except BaseException as exc:  # noqa: BLE001 - a bug in one reader must not kill the rest
            logger.exception("reader of %s failed", self.source.name)
            self._put(_Failed(f"{self.source.name}: {type(exc).__name__}: {exc}"))

    def _connection(self) -> tuple[str | None, bool]:
        """Read one connection to its end: (why it failed or None, whether frames came)."""
        delivered = False
        try:
            with self.source.connect(self.stop) as connection:
                if not self._put(_Connected(connection.info)):
                    return None, delivered
                for frame in connection.frames():
                    if not self._put((frame, time.time())):
                        return None, delivered
                    delivered = True
            return None, delivered
        except SourceError as exc:
            return str(exc), delivered


@dataclass
class _Run:
    """State of one run of consecutive frames of one stream."""

    start_frame: int
    start_time: float
    shape: tuple[int, ...]
    pooler: ClipPooler
    scorer: WindowScorer
    recorder: EvidenceRecorder | None
    frames: int = 0  # frames of the run seen
    last_arrival: float = 0.0


@dataclass
class _Stream:
    """One source and what the scoring loop knows about it."""

    name: str
    folder: str
    reader: _Reader
    descriptor: XFeatDescriptor
    alerts: AlertTracker
    info: StreamInfo | None = None
    run: _Run | None = None
    frames: int = 0  # frames of the stream (every run)
    segments: int = 0
    first_frame: tuple[float, float] | None = None  # (frame time, monotonic) of its first frame
    status: str = "running"  # running | ended | failed | stopped
    message: str = ""


@dataclass
class _Batch:
    """Sampled frames of one stream's run waiting for XFeat."""

    stream: _Stream
    images: list[np.ndarray]
    """``uint8 [H, W, 1]`` each."""
    indices: list[int]
    """Their frame indices in the run."""


@dataclass
class WatchSummary:
    """How each stream finished."""

    streams: dict[str, str] = field(default_factory=dict)
    """stream name -> ``ended`` | ``failed`` | ``stopped``."""
    failures: dict[str, str] = field(default_factory=dict)
    """stream name -> error message."""
    segments: int = 0
    alerts: int = 0


def _calls(batches: list[_Batch], most: int) -> list[list[_Batch]]:
    """Batches grouped into engine calls of at most ``most`` frames (one batch may exceed it)."""
    calls: list[list[_Batch]] = [[]]
    size = 0
    for batch in batches:
        if calls[-1] and size + len(batch.images) > most:
            calls.append([])
            size = 0
        calls[-1].append(batch)
        size += len(batch.images)
    return calls


def unique_names(sources: Sequence[StreamSource]) -> list[str]:
    """Stream names: each source's display name, ``#2``, ``#3``... added to repeats."""
    seen: dict[str, int] = {}
    names = []
    for source in sources:
        seen[source.name] = seen.get(source.name, 0) + 1
        names.append(source.name if seen[source.name] == 1
                     else f"{source.name}#{seen[source.name]}")
    return names


class Watcher:
    """Scores live sources until they all end or :meth:`stop` is called (thread- and signal-safe).

    Args:
        sources: ``SOURCE`` strings (:func:`~memtsm.watch.sources.open_source`).
        checkpoint: a :class:`Checkpoint` or the path of a ``best.pt``.
        config: how to read and score.
        sink: receives every event (default: JSON lines on stdout).
        alerts_dir: where evidence clips and thumbnails go (``None``: no clips).

    Raises:
        SourceError: a ``SOURCE`` that is neither a stream URL nor an existing path.
        memtsm.score.stored.IncompatibleFeaturesError: the checkpoint's features cannot be
            computed here (imported features, other XFeat weights).
        memtsm.train.checkpoint.CheckpointError: unsafe or invalid checkpoint.
    """

    def __init__(self, sources: Sequence[str], checkpoint: Checkpoint | Path | str,
                 config: WatchConfig = WatchConfig(), sink: Sink | None = None,
                 alerts_dir: Path | str | None = None) -> None:
        if not sources:
            raise ValueError("no sources to watch")
        opened = [open_source(s, config) for s in sources]
        self.config = config
        self.sink: Sink = sink or JsonLines("-")
        self.alerts_dir = Path(alerts_dir) if alerts_dir is not None else None
        scorer = open_scorer(checkpoint, "pyav", config.device, config.xfeat_weights,
                             config.frames_fps, config.engine)
        self.checkpoint = scorer.checkpoint
        self.model = scorer.model
        if getattr(self.model, "receptive_field", 0) is None:
            raise ValueError(
                f"{checkpoint}: its {self.checkpoint.scorer_config.kind} scorer looks at the "
                "whole video at once (no finite receptive field), so its scores cannot be "
                "computed while a stream arrives; score recordings with memtsm score")
        self.threshold = scorer.threshold
        self.device = scorer.extractor.device
        self.spec = scorer.extractor.config.spec
        self.engine = scorer.extractor.descriptor.engine
        self.identity = scorer.extractor.identity
        self.hooks = AlertHooks(config.alerts.on_alert)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.stop_reason = ""
        self.streams = [
            _Stream(name, f"{i:02d}-{slug(name)}", _Reader(source, config, self._wake),
                    XFeatDescriptor(self.engine, self.spec, self.device),
                    AlertTracker(name, config.alerts, self.threshold))
            for i, (name, source) in enumerate(zip(unique_names(opened), opened))]
        self.summary = WatchSummary()

    @property
    def receptive_field(self) -> int:
        """Clips of look-ahead before a score is final."""
        return int(getattr(self.model, "receptive_field", 0))

    def stop(self, reason: str = "stopped") -> None:
        """Ask :meth:`run` to flush everything and return (safe from a signal handler)."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()
        self._wake.set()

    def describe(self) -> dict[str, Any]:
        """The configuration and versions, written next to the evidence clips."""
        return {"memtsm_version": memtsm.__version__, "torch_version": torch.__version__,
                "watch_config": self.config.to_dict(),
                "streams": [s.name for s in self.streams],
                "feature_identity": dict(self.identity.to_dict()),
                "val_video_threshold": self.threshold,
                "receptive_field": self.receptive_field, "engine": self.engine.name}

    def run(self) -> WatchSummary:
        """Score until every source ended or :meth:`stop` was called; flush; summarise."""
        if self.alerts_dir is not None:
            atomic_write_text(self.alerts_dir / WATCH_CONFIG_NAME,
                              json.dumps(self.describe(), indent=1) + "\n")
        for stream in self.streams:
            stream.reader.thread.start()
        try:
            while not self._stop.is_set():
                active = [s for s in self.streams if s.status == "running"]
                if not active:
                    break
                self._wake.clear()
                busy, batches = False, []
                for stream in active:
                    worked, batch = self._service(stream)
                    busy |= worked
                    batches.append(batch)
                    if self._stop.is_set():
                        break
                self._describe(batches)
                self.hooks.reap()
                if not busy:
                    self._wake.wait(IDLE_WAIT)
        finally:
            self._shutdown()
        return self.summary

    # -- the scoring loop ----------------------------------------------------------------------

    def _service(self, stream: _Stream, everything: bool = False
                 ) -> tuple[bool, _Batch | None]:
        """Take what the stream's reader delivered: a batch of frames at most, or everything.

        Returns whether there was any, and the sampled frames still to describe.
        """
        limit = None if everything else self.config.batch_size
        frames: list[tuple[Frame, float]] = []
        worked = False
        while (limit is None or len(frames) < limit) and stream.status == "running":
            try:
                item = stream.reader.queue.get_nowait()
            except queue.Empty:
                break
            worked = True
            if isinstance(item, tuple):
                frames.append(item)
                continue
            self._describe([self._frames(stream, frames)])
            frames = []
            self._control(stream, item)
        return worked, self._frames(stream, frames)

    def _control(self, stream: _Stream, item: object) -> None:
        now = time.time()
        if isinstance(item, _Connected):
            stream.info = item.info
            self._emit({"event": "connected", "stream": stream.name, "fps": item.info.fps,
                        "width": item.info.width, "height": item.info.height,
                        "codec": item.info.codec, "threshold": self.threshold,
                        "wall_time": round(now, 4)})
        elif isinstance(item, _Gap):
            self._end_run(stream, "gap")
            logger.warning("%s; reconnecting in %.1f s", item.reason, item.retry_in)
            self._emit({"event": "gap", "stream": stream.name, "reason": item.reason,
                        "after_frame": stream.frames, "retry_in": item.retry_in,
                        "attempt": item.attempt, "wall_time": round(now, 4)})
        elif isinstance(item, _Ended):
            self._finish_stream(stream, "ended", item.reason)
        elif isinstance(item, _Failed):
            logger.error("%s", item.message)
            self._emit({"event": "error", "stream": stream.name, "message": item.message,
                        "wall_time": round(now, 4)})
            self.summary.failures[stream.name] = item.message
            self._finish_stream(stream, "failed", item.message)

    def _frames(self, stream: _Stream, frames: list[tuple[Frame, float]]) -> _Batch | None:
        """Count consecutive frames of one stream into its run; return its sampled frames."""
        images: list[np.ndarray] = []
        indices: list[int] = []
        for frame, arrived in frames:
            shape = frame.image.shape
            if stream.run is not None and shape != stream.run.shape:
                self._describe([_Batch(stream, images, indices)])
                images, indices = [], []
                old = stream.run.shape
                self._end_run(stream, "frame size changed")
                message = (f"{stream.name}: frame size changed from {old[1]}x{old[0]} to "
                           f"{shape[1]}x{shape[0]}; scoring restarts at frame {stream.frames}")
                logger.warning("%s", message)
                self._emit({"event": "gap", "stream": stream.name, "reason": message,
                            "after_frame": stream.frames, "retry_in": 0.0, "attempt": 0,
                            "wall_time": round(time.time(), 4)})
            if stream.run is None:
                self._start_run(stream, frame, shape)
            run = stream.run
            index = run.frames
            run.frames += 1
            run.last_arrival = arrived
            stream.frames += 1
            if run.recorder is not None:
                run.recorder.add(stream.frames - 1, frame.image)
            if self.spec.sampled(index):
                images.append(frame.image)
                indices.append(index)
        return _Batch(stream, images, indices) if stream.run is not None else None

    def _describe(self, batches: Sequence[_Batch | None]) -> None:
        """XFeat on several streams' sampled frames, then pooling and scoring per stream.

        One engine call per network size, for every stream at once.
        """
        groups: dict[tuple[int, int], list[_Batch]] = {}
        for batch in batches:
            if batch is not None and batch.images:
                height, width = batch.images[0].shape[:2]
                groups.setdefault(self.spec.network_size(width, height), []).append(batch)
        for group in groups.values():
            for call in _calls(group, self.config.batch_size * CALL_BATCHES):
                vectors = describe_together([(b.stream.descriptor,
                                              torch.from_numpy(np.stack(b.images))) for b in call])
                for batch, part in zip(call, vectors):
                    batch.stream.run.pooler.add(part,
                                                torch.tensor(batch.indices, dtype=torch.int64))
        for batch in batches:
            if batch is not None:
                run = batch.stream.run
                self._score(batch.stream, run.pooler.pop_complete(run.frames))

    def _score(self, stream: _Stream, pooled, ending: bool = False) -> None:
        run = stream.run
        clips: list[Clip] = []
        if pooled is not None:
            fps = stream.info.fps if stream.info is not None else 0.0
            for start, end in pooled.clip_frames.tolist():
                clips.append(Clip(
                    index=stream.segments, start_frame=run.start_frame + start,
                    end_frame=run.start_frame + end,
                    start_time=round(run.start_time + start / fps, 4) if fps else 0.0,
                    end_time=round(run.start_time + end / fps, 4) if fps else 0.0,
                    arrived=run.last_arrival))
                stream.segments += 1
        scores = run.scorer.push(clips, pooled.features, time.time()) if clips else []
        if ending:
            scores += run.scorer.finish(time.time())
        for segment in scores:
            self._emit(segment.to_dict())
            self.summary.segments += segment.final
            if segment.final:
                if run.recorder is not None:
                    self._evidence(stream, run.recorder.settle(segment.clip.end_frame))
                self._alerts(stream, stream.alerts.feed(segment))

    def _alerts(self, stream: _Stream, events: list[dict[str, Any]]) -> None:
        recorder = stream.run.recorder if stream.run is not None else None
        for event in events:
            done: list[dict[str, Any]] = []
            if recorder is not None and event["event"] == "alert_open":
                event.update(recorder.start(event, event["peak_frame"]))
            elif recorder is not None and event["event"] == "alert_close":
                done = recorder.stop(event["alert"], event["end_frame"])
            if event["event"] == "alert_open":
                self.summary.alerts += 1
            self._emit(event)
            self.hooks(event)
            self._evidence(stream, done)

    def _evidence(self, stream: _Stream, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._emit({**event, "stream": stream.name})

    def _start_run(self, stream: _Stream, frame: Frame, shape: tuple[int, ...]) -> None:
        now = time.monotonic()
        if stream.first_frame is None:
            stream.first_frame = (frame.time, now)
            start_time = 0.0
        elif stream.reader.source.live:  # stream clocks restart on reconnection: wall time
            start_time = now - stream.first_frame[1]
        else:
            start_time = frame.time - stream.first_frame[0]
        stream.descriptor.reset()
        recorder = None
        fps = stream.info.fps if stream.info is not None else self.config.frames_fps
        if self.alerts_dir is not None:
            alerts = self.config.alerts
            # frames from the pre-roll before an alert's first segment (or the frames a clip
            # holds back) up to the newest frame: the scorer's look-ahead, and a batch
            held = max(alerts.open_after, alerts.close_after)
            capacity = ((held + self.receptive_field + 2) * self.spec.clip_len
                        + int(alerts.pre_roll * fps) + 2 * self.config.batch_size)
            recorder = EvidenceRecorder(self.alerts_dir / stream.folder, fps, capacity, alerts,
                                        self.spec.clip_len)
        stream.run = _Run(
            start_frame=stream.frames, start_time=start_time, shape=shape,
            pooler=ClipPooler(self.spec.clip_len, stream.descriptor.dim),
            scorer=WindowScorer(stream.name, self.model, self.device, self.threshold),
            recorder=recorder)

    def _end_run(self, stream: _Stream, reason: str) -> None:
        """Score the run's last (partial) clip, make every score final, close its alert."""
        run = stream.run
        if run is None:
            return
        self._score(stream, run.pooler.pop_complete(run.frames, final=True), ending=True)
        now = time.time()
        self._alerts(stream, stream.alerts.end_run(reason, now))
        if run.recorder is not None:
            self._evidence(stream, run.recorder.close())
        stream.run = None

    def _finish_stream(self, stream: _Stream, status: str, reason: str) -> None:
        self._end_run(stream, reason)
        stream.status = status
        stream.message = reason
        self.summary.streams[stream.name] = status
        self._emit({"event": "end", "stream": stream.name, "status": status, "reason": reason,
                    "frames": stream.frames, "segments": stream.segments,
                    "wall_time": round(time.time(), 4)})

    def _shutdown(self) -> None:
        for stream in self.streams:
            stream.reader.stop.set()
        reason = self.stop_reason or "stopped"
        for stream in self.streams:
            if stream.status == "running":
                # frames already decoded are scored before the run is closed
                self._drain(stream)
            if stream.status == "running":
                self._finish_stream(stream, "stopped", reason)
        self.hooks.wait()
        for stream in self.streams:
            stream.reader.thread.join(timeout=1.0)

    def _drain(self, stream: _Stream) -> None:
        """Handle everything the reader had queued (it has stopped reading)."""
        self._describe([self._service(stream, everything=True)[1]])

    def _emit(self, event: dict[str, Any]) -> None:
        self.sink(event)


def watch(sources: Sequence[str], checkpoint: Checkpoint | Path | str,
          config: WatchConfig = WatchConfig(), sink: Sink | None = None,
          alerts_dir: Path | str | None = None) -> WatchSummary:
    """Score ``sources`` until they all end (see :class:`Watcher`)."""
    return Watcher(sources, checkpoint, config, sink, alerts_dir).run()
