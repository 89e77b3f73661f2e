"""Raw video straight to per-segment anomaly scores (``memtsm score`` and :func:`score_video`).

Features are extracted with exactly the feature spec and XFeat weights recorded in the checkpoint
(the decoder and device may differ); anything else is refused, because a scorer applied to
features it was not trained on gives meaningless numbers. Each segment is one clip of the stored
spec, with its exact frame range, time range, score, memory reconstruction error and whether it
is flagged at the checkpoint's video-level validation threshold (chosen on the validation
videos' scores during training).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from memtsm.extract.config import ExtractConfig, FeatureSpec
from memtsm.extract.decode import expected_frames
from memtsm.extract.runner import FeatureExtractor
from memtsm.extract.sources import discover_videos
from memtsm.extract.store import FeatureStoreWriter, VideoRecord
from memtsm.runtime.files import atomic_path, atomic_write_text
from memtsm.runtime.progress import Progress
from memtsm.score.stored import (
    DEFAULT_THRESHOLD,
    IncompatibleFeaturesError,
    check_identity,
    score_features,
)
from memtsm.train.checkpoint import Checkpoint, build_model_from_checkpoint, load_checkpoint

#: Clips scored per forward pass (with the scorer's receptive field as context on each side), so
#: memory stays bounded however long the video is.
SCORE_WINDOW = 4096


@dataclass(frozen=True)
class SegmentScore:
    """One scored segment (clip); frames are 0-based, ``end_frame`` exclusive (also when shown)."""

    index: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    score: float
    recon_error: float
    flagged: bool

    @property
    def frames_text(self) -> str:
        """``[0, 16)``: the frame range as people see it everywhere (end exclusive, as in JSON)."""
        return f"[{self.start_frame}, {self.end_frame})"

    @property
    def time_text(self) -> str:
        """``[0.00, 0.53) s``: the time range, end exclusive."""
        return f"[{self.start_time:.2f}, {self.end_time:.2f}) s"


@dataclass(frozen=True)
class VideoScoreReport:
    """Per-segment scores of one video plus its metadata and the threshold used."""

    video: str
    source: str
    fps: float
    num_frames: int
    width: int
    height: int
    val_video_threshold: float
    segments: tuple[SegmentScore, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of one video."""
        data = dataclasses.asdict(self)
        data["segments"] = [dataclasses.asdict(s) for s in self.segments]
        data["threshold"] = self.val_video_threshold  # deprecated alias of val_video_threshold
        return data

    @property
    def max_score(self) -> float:
        """Highest segment score."""
        return max(s.score for s in self.segments)


def extract_config_for(checkpoint: Checkpoint, decoder: str = "auto", device: str = "auto",
                       xfeat_weights: str | None = None, batch_size: int = 16,
                       frames_fps: float = ExtractConfig.frames_fps,
                       engine: str = ExtractConfig.engine) -> ExtractConfig:
    """The extraction a checkpoint's features came from, with the given decoder and device.

    Raises:
        IncompatibleFeaturesError: the checkpoint was trained on imported (non-XFeat) features.
    """
    identity = checkpoint.feature_identity
    if not identity.is_extracted:
        raise IncompatibleFeaturesError(
            f"this checkpoint was trained on {identity.layout or 'imported'!r} features, "
            "which memtsm cannot compute from raw video; train on features from `memtsm extract`")
    spec = FeatureSpec.from_dict(dict(identity.feature_spec))
    return ExtractConfig(spec=spec, decoder=decoder, device=device, batch_size=batch_size,
                         xfeat_weights=xfeat_weights, frames_fps=frames_fps, engine=engine,
                         precision=identity.precision)


def _report(record: VideoRecord, scores, recon, threshold: float) -> VideoScoreReport:
    fps = record.fps or 0.0
    segments = tuple(
        SegmentScore(
            index=i, start_frame=int(start), end_frame=int(end),
            start_time=round(start / fps, 4) if fps else 0.0,
            end_time=round(end / fps, 4) if fps else 0.0,
            score=round(float(scores[i]), 6), recon_error=round(float(recon[i]), 6),
            flagged=bool(scores[i] >= threshold))
        for i, (start, end) in enumerate(record.clip_frames.tolist()))
    return VideoScoreReport(video=record.video_id, source=record.source, fps=fps,
                            num_frames=record.num_frames, width=record.width,
                            height=record.height, val_video_threshold=threshold,
                            segments=segments)


class VideoScorer(NamedTuple):
    """What scoring raw video needs: the checkpoint, its extraction, the scorer, the threshold."""

    checkpoint: Checkpoint
    extractor: FeatureExtractor
    model: nn.Module
    threshold: float


def open_scorer(checkpoint: Checkpoint | Path | str, decoder: str = "auto", device: str = "auto",
                xfeat_weights: str | None = None, frames_fps: float = ExtractConfig.frames_fps,
                engine: str = ExtractConfig.engine) -> VideoScorer:
    """Load the checkpoint and set up the extraction its features came from (see score_videos).

    Raises:
        IncompatibleFeaturesError: the checkpoint's features cannot be reproduced here.
        memtsm.train.checkpoint.CheckpointError: unsafe or invalid checkpoint.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    config = extract_config_for(ckpt, decoder, device, xfeat_weights, frames_fps=frames_fps,
                                engine=engine)
    extractor = FeatureExtractor(config)
    check_identity(ckpt.feature_identity, extractor.identity, "raw-video extraction")
    model = build_model_from_checkpoint(ckpt, extractor.device)
    threshold = (DEFAULT_THRESHOLD if ckpt.val_video_threshold is None
                 else float(ckpt.val_video_threshold))
    return VideoScorer(ckpt, extractor, model, threshold)


def score_videos(
    inputs: Sequence[Path | str],
    checkpoint: Checkpoint | Path | str,
    decoder: str = "auto",
    device: str = "auto",
    xfeat_weights: str | None = None,
    save_features: Path | str | None = None,
    progress: Progress | None = None,
    frames_fps: float = ExtractConfig.frames_fps,
    engine: str = ExtractConfig.engine,
) -> Iterator[tuple[str, VideoScoreReport | str]]:
    """Score every video under ``inputs``; yield ``(video id, report)`` or ``(id, error)``.

    ``frames_fps`` is the frame rate of folders of frame images (files carry their own);
    ``engine`` runs XFeat (:mod:`memtsm.extract.engines`: every fp32 engine gives the features
    the checkpoint was trained on).

    Raises:
        ValueError: nothing to score under ``inputs``.
        IncompatibleFeaturesError: the checkpoint's features cannot be reproduced here (imported
            features, or different XFeat weights).
        memtsm.train.checkpoint.CheckpointError: unsafe or invalid checkpoint.
    """
    sources = discover_videos([Path(p) for p in inputs])
    if not sources:
        raise ValueError(f"no videos or frame folders found under {', '.join(map(str, inputs))}")
    _, extractor, model, threshold = open_scorer(checkpoint, decoder, device, xfeat_weights,
                                                 frames_fps, engine)
    if progress is not None:
        progress.start(len(sources),
                       sum(expected_frames(s.path, s.is_frame_folder) for s in sources), "frames")
    writer = (FeatureStoreWriter(save_features, extractor.identity, extractor.provenance)
              if save_features else None)
    try:
        for source, record in extractor.iter_features(sources, progress=progress):
            if isinstance(record, str):
                if progress is not None:
                    progress.item_done(source.video_id, False, record)
                yield source.video_id, record
                continue
            result = score_features(model, record.features.astype("float32"), extractor.device,
                                    window=SCORE_WINDOW)
            if writer is not None and record.video_id not in writer.done_ids:
                writer.add(record)
            if progress is not None:
                progress.item_done(source.video_id, True)
            yield source.video_id, _report(record, result.scores, result.recon_error, threshold)
    finally:
        if writer is not None:
            writer.close()
        if progress is not None:
            progress.close()


def score_video(path: Path | str, checkpoint: Checkpoint | Path | str, **options: Any
                ) -> VideoScoreReport:
    """Score one video file or frame folder (see :func:`score_videos` for ``options``).

    Raises:
        RuntimeError: the video could not be decoded (the message names the file).
    """
    for _video_id, result in score_videos([path], checkpoint, **options):
        if isinstance(result, str):
            raise RuntimeError(result)
        return result
    raise RuntimeError(f"{path}: no video found")


def write_json(reports: Sequence[VideoScoreReport], path: Path | str,
               failures: dict[str, str] | None = None) -> Path:
    """``{"videos": [...], "failures": {...}}`` (the documented JSON contract)."""
    path = Path(path)
    document = {"videos": [r.to_dict() for r in reports], "failures": failures or {}}
    atomic_write_text(path, json.dumps(document, indent=1) + "\n")
    return path


CSV_FIELDS = ("video", "source", "fps", "num_frames", "val_video_threshold") + tuple(
    f.name for f in dataclasses.fields(SegmentScore))


def write_csv(reports: Sequence[VideoScoreReport], path: Path | str) -> Path:
    """One row per segment with the video's metadata and the threshold."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for report in reports:
            meta = {"video": report.video, "source": report.source, "fps": report.fps,
                    "num_frames": report.num_frames,
                    "val_video_threshold": report.val_video_threshold}
            for segment in report.segments:
                writer.writerow({**meta, **dataclasses.asdict(segment)})
    return path
