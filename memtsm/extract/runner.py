"""``memtsm extract``: videos -> XFeat clip features in a sharded HDF5 store.

Decoding runs in a background thread (one video ahead at most, a few batches deep) while the
main thread runs XFeat, so decode and inference overlap. One failing video is recorded in
``failures.jsonl`` and skipped; it never leaves a partial group behind.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import memtsm
from memtsm.extract.config import ExtractConfig
from memtsm.extract.decode import (
    DecodeError,
    DecoderBackend,
    DecoderSession,
    FrameBatch,
    VideoDecoder,
    VideoInfo,
    expected_frames,
    resolve_backend,
)
from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.sources import (
    VideoSource,
    discover_videos,
    label_summary,
    read_labels_csv,
    read_video_list,
    resolve_label,
    shard_sources,
    strip_video_suffix,
)
from memtsm.extract.store import FAILURES_NAME, Failure, FeatureStoreWriter, VideoRecord
from memtsm.extract.weights import resolve_weights, sha256_of
from memtsm.extract.xfeat import ClipPooler, XFeatDescriptor
from memtsm.runtime.devices import resolve_device
from memtsm.runtime.heap import release_free_memory
from memtsm.runtime.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

EXTRACT_CONFIG_NAME = "extract_config.json"
#: Decoded batches buffered ahead of inference (bounds memory).
PREFETCH_BATCHES = 4
#: Threads of an extraction run besides torch's: the background decoding thread.
DECODE_THREADS = 1
#: Free heap pages go back to the OS every this many batches (see :mod:`memtsm.runtime.heap`).
RELEASE_MEMORY_EVERY = 64
#: Most bytes of decoded frames in one batch: large frames (4K) come in smaller batches, so the
#: prefetch queue and XFeat's float copy stay bounded whatever the resolution.
BATCH_BYTES = {"cpu": 16 << 20, "cuda": 256 << 20}


@dataclass
class ExtractSummary:
    """What one ``extract`` run did."""

    stored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    decoder: str = ""
    device: str = ""

    @property
    def frames_per_second(self) -> float:
        """Decoded frames per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def provenance(config: ExtractConfig, device: torch.device, backend: str) -> dict[str, Any]:
    """Versions and the full resolved config that produced a store."""
    import av
    import kornia

    return {
        "memtsm_version": memtsm.__version__,
        "torch_version": torch.__version__,
        "kornia_version": kornia.__version__,
        "av_version": av.__version__,
        "extract_config": config.to_dict(),
        "device": str(device),
        "decoder": backend,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# Events passed from the decoding thread to the inference loop, in order per video:
# _Start, _Frames..., then _End or _Error (_Error may come at any point, even first).
@dataclass(frozen=True)
class _Start:
    source: VideoSource
    info: VideoInfo


@dataclass(frozen=True)
class _Frames:
    source: VideoSource
    batch: FrameBatch


@dataclass(frozen=True)
class _End:
    source: VideoSource
    frames_decoded: int


@dataclass(frozen=True)
class _Error:
    source: VideoSource
    error: str


_Event = _Start | _Frames | _End | _Error


class _Prefetcher:
    """Runs ``events`` in a daemon thread, handing items over through a bounded queue."""

    _DONE = object()

    def __init__(self, events: Iterator[_Event], depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(events,), daemon=True,
                                        name="memtsm-decode")
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, events: Iterator[_Event]) -> None:
        try:
            for event in events:
                if not self._put(event):
                    return
        except BaseException as exc:  # surfaced in the consumer thread
            self._put(exc)
        self._put(self._DONE)

    def __iter__(self) -> Iterator[_Event]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def decode_batch_size(batch_size: int, decoder: VideoDecoder) -> int:
    """``batch_size``, or fewer frames when that many of this video's frames exceed the budget."""
    info = decoder.info
    frame_bytes = info.width * info.height * decoder.channels
    budget = BATCH_BYTES.get(decoder.device.type, BATCH_BYTES["cpu"])
    return max(1, min(batch_size, budget // max(1, frame_bytes)))


def _decode_events(
    sources: Sequence[VideoSource], config: ExtractConfig, backend: DecoderBackend,
    device: torch.device,
) -> Iterator[_Event]:
    """Decode the videos in order; a failing video yields ``_Error`` and decoding moves on.

    One :class:`DecoderSession` serves every video (with DALI: one persistent pipeline that
    also prepares the network input on the device).
    """
    want = config.spec.sampled
    with DecoderSession(backend, device, config.frames_fps, luma=True,
                        network_size=config.spec.network_size) as session:
        for source in sources:
            try:
                with session.open(source.path) as decoder:
                    yield _Start(source, decoder.info)
                    size = decode_batch_size(config.batch_size, decoder)
                    for batch in decoder.batches(size, want):
                        yield _Frames(source, _pinned(batch, device))
                    yield _End(source, decoder.frames_decoded)
            except DecodeError as exc:
                yield _Error(source, str(exc))
            except Exception as exc:  # an unexpected decoder failure is still one video's failure
                yield _Error(source, f"{source.path}: {type(exc).__name__}: {exc}")


def _pinned(batch: FrameBatch, device: torch.device) -> FrameBatch:
    """Host frames bound for a CUDA device, moved to page-locked memory (in the decode thread).

    Their copy to the device (``non_blocking``) then overlaps the network's work.
    """
    if device.type != "cuda" or batch.frames.device.type != "cpu":
        return batch
    return FrameBatch(batch.frames.pin_memory(), batch.indices, batch.timestamps)


class FeatureExtractor:
    """Decoder + XFeat for one :class:`ExtractConfig`: videos in, clip features out.

    Resolves the device (``auto`` is logged), the decoder backend and the verified weights once;
    :meth:`iter_features` then streams any number of videos, decoding in a background thread.
    """

    def __init__(self, config: ExtractConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.backend = (DecoderBackend.FRAMES if config.decoder == DecoderBackend.FRAMES.value
                        else resolve_backend(config.decoder, self.device))
        weights = resolve_weights(config.xfeat_weights)
        self.weights_sha256 = sha256_of(weights)
        self.descriptor = XFeatDescriptor.from_weights(
            weights, config.spec, self.device, config.engine, self.weights_sha256,
            precision=config.precision)

    @property
    def identity(self) -> FeatureIdentity:
        """Identity of the features this extractor produces."""
        return FeatureIdentity.of_extraction(self.config.spec, self.descriptor.dim,
                                             self.weights_sha256, self.descriptor.engine.precision)

    @property
    def provenance(self) -> dict[str, Any]:
        """Versions and configuration, recorded next to the features."""
        engine = self.descriptor.engine
        return {**provenance(self.config, self.device, self.backend.value),
                "engine": engine.name, "engine_version": engine.version}

    def iter_features(
        self,
        sources: Sequence[VideoSource],
        overrides: dict | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[VideoSource, VideoRecord | str]]:
        """Yield ``(source, record)`` per video in order, or ``(source, error message)``."""
        events = _decode_events(sources, self.config, self.backend, self.device)
        prefetcher = _Prefetcher(events, PREFETCH_BATCHES)
        try:
            yield from _assemble(prefetcher, self.config, self.descriptor, overrides,
                                 progress or SilentProgress())
        finally:
            prefetcher.close()


def extract(
    inputs: Sequence[Path | str],
    out: Path | str,
    config: ExtractConfig = ExtractConfig(),
    progress: Progress | None = None,
) -> ExtractSummary:
    """Extract clip features of every video under ``inputs`` into the store at ``out``.

    Videos already in a completed shard of ``out`` are skipped. Failures are written to
    ``out/failures.jsonl`` and returned; they do not stop the run.

    With ``config.num_shards > 1`` this worker extracts only its part of the videos
    (:func:`~memtsm.extract.sources.shard_sources`) and names its files with
    ``config.worker_suffix``: shards ``shard-r{i}-NNNNN.h5``, ``failures-r{i}.jsonl`` and
    ``extract_config-r{i}.json``. Workers share the store and its index; skipping is by what the
    whole store holds, so a rerun with another number of workers redoes nothing.

    Raises:
        FileNotFoundError, ValueError: bad inputs (before anything is written).
        memtsm.extract.weights.WeightsError: no valid XFeat weights.
        memtsm.extract.store.StoreError: ``out`` holds features of another configuration.
    """
    progress = progress or SilentProgress()
    out = Path(out)
    sources = discover_videos([Path(p) for p in inputs])
    unlisted: list[str] = []
    if config.video_list:
        listed = read_video_list(Path(config.video_list))
        # an id that kept its extension to stay unique (clip.avi) is listed as clip
        wanted = set(listed)
        kept = [s for s in sources
                if s.video_id in wanted or strip_video_suffix(s.video_id) in wanted]
        found = {s.video_id for s in kept} | {strip_video_suffix(s.video_id) for s in kept}
        unlisted = [video_id for video_id in listed if video_id not in found]
        sources = kept
    if not sources:
        raise ValueError(f"no videos or frame folders found under {', '.join(map(str, inputs))}")
    sources = shard_sources(sources, config.num_shards, config.shard_index)
    if config.shard_index > 0:
        unlisted = []  # reported once, by worker 0
    suffix = config.worker_suffix
    overrides = read_labels_csv(Path(config.labels_csv)) if config.labels_csv else None
    logger.info("%s", label_summary({s.video_id: resolve_label(s.video_id, overrides)
                                     for s in sources}))
    extractor = FeatureExtractor(config)
    summary = ExtractSummary(decoder=extractor.backend.value, device=str(extractor.device))
    started = time.perf_counter()
    with FeatureStoreWriter(out, extractor.identity, extractor.provenance, config.shard_bytes,
                            config.commit_seconds, f"shard{suffix}") as writer:
        config.write(out / _with_suffix(EXTRACT_CONFIG_NAME, suffix))
        done = writer.done_ids
        todo = [s for s in sources if s.video_id not in done]
        summary.skipped = [s.video_id for s in sources if s.video_id in done]
        failures = _FailureLog(out / _with_suffix(FAILURES_NAME, suffix), summary, progress)
        for video_id in unlisted:
            failures.add(VideoSource(video_id, Path(video_id), False),
                         f"{config.video_list}: {video_id} is listed but was not found under "
                         f"{', '.join(map(str, inputs))}")
        progress.start(len(todo), sum(expected_frames(s.path, s.is_frame_folder) for s in todo),
                       "frames")
        try:
            for source, result in extractor.iter_features(todo, overrides, progress):
                if isinstance(result, str):
                    failures.add(source, result)
                    continue
                try:
                    writer.add(result)
                except Exception as exc:  # e.g. an id that collides inside the store
                    failures.add(source, f"{source.path}: {exc}")
                    continue
                summary.frames += result.num_frames
                summary.stored.append(source.video_id)
                progress.item_done(source.video_id, True)
        finally:
            progress.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _with_suffix(name: str, suffix: str) -> str:
    """``failures.jsonl`` -> ``failures-r1.jsonl`` for worker suffix ``-r1``."""
    stem, dot, extension = name.partition(".")
    return f"{stem}{suffix}{dot}{extension}"


class _FailureLog:
    """Appends failures to ``failures.jsonl`` (rewritten by every run) and the summary."""

    def __init__(self, path: Path, summary: ExtractSummary, progress: Progress) -> None:
        self.path = path
        self.summary = summary
        self.progress = progress
        path.write_text("", encoding="utf-8")

    def add(self, source: VideoSource, message: str) -> None:
        failure = Failure(source.video_id, str(source.path), message)
        self.summary.failures.append(failure)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(failure.to_json() + "\n")
        logger.warning("failed: %s", message)
        self.progress.item_done(source.video_id, False, message)


def _assemble(
    events: Iterator[_Event],
    config: ExtractConfig,
    descriptor: XFeatDescriptor,
    overrides: dict | None,
    progress: Progress,
) -> Iterator[tuple[VideoSource, VideoRecord | str]]:
    """Run XFeat on decoded batches and yield each video's record, or its error message."""
    current: VideoSource | None = None
    info: VideoInfo | None = None
    pooler = ClipPooler(config.spec.clip_len, descriptor.dim)
    covered = 0  # frames of the current video reported to the progress bar
    for count, event in enumerate(events, start=1):
        if count % RELEASE_MEMORY_EVERY == 0:
            release_free_memory()
        if event.source is not current:
            current, info, covered = event.source, None, 0
            descriptor.reset()
            pooler = ClipPooler(config.spec.clip_len, descriptor.dim)
        if isinstance(event, _Start):
            info = event.info
        elif isinstance(event, _Error):
            current = None  # drop whatever the video had produced
            yield event.source, event.error
        elif current is None:
            continue  # the rest of a video that already failed
        elif isinstance(event, _Frames):
            try:
                pooler.add(descriptor.describe(event.batch.frames), event.batch.indices)
            except Exception as exc:  # e.g. out of memory on a huge frame
                current = None
                yield event.source, f"{event.source.path}: {type(exc).__name__}: {exc}"
                continue
            seen = int(event.batch.indices[-1]) + 1
            progress.advance(seen - covered)
            covered = seen
        else:
            progress.advance(event.frames_decoded - covered)
            try:
                record = _record(event.source, info, pooler, event.frames_decoded, overrides)
            except Exception as exc:
                record = f"{event.source.path}: {type(exc).__name__}: {exc}"
            current = None
            yield event.source, record


def _record(
    source: VideoSource, info: VideoInfo, pooler: ClipPooler, num_frames: int,
    overrides: dict | None,
) -> VideoRecord:
    pooled = pooler.finish(num_frames)
    label = resolve_label(source.video_id, overrides)
    return VideoRecord(
        video_id=source.video_id,
        features=pooled.features,
        clip_frames=pooled.clip_frames,
        fps=info.fps,
        num_frames=num_frames,
        width=info.width,
        height=info.height,
        source=str(source.path),
        label=label.label,
        class_name=label.class_name,
        label_rule=label.rule,
        last_clip_partial=pooled.last_clip_partial,
        extra={"codec": info.codec, "header_num_frames": info.num_frames,
               "rotation": info.rotation},
    )
