"""Frame-level evaluation of a checkpoint on stored features (UCF-Crime protocol).

Each clip's score goes to the frames the clip covers (stored ``clip_frames``), ground truth comes
from an annotation file, all test videos' frames are concatenated, and ROC-AUC / PR-AUC / F1 are
computed. The decision threshold is the checkpoint's video-level validation threshold (chosen on
the validation videos' scores during training, applied here to frames)
during training): nothing here is tuned on the test set, and scores are never normalised over it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memtsm.evaluate.annotations import (
    FrameAnnotations,
    frame_labels,
    load_annotations,
    match_videos,
)
from memtsm.evaluate.metrics import EvalMetrics, frame_level_metrics
from memtsm.extract.sources import read_frame_counts
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.progress import Progress
from memtsm.score.stored import DEFAULT_THRESHOLD, VideoScores, score_store
from memtsm.segments import spread_over_ranges
from memtsm.train.checkpoint import load_checkpoint


@dataclass(frozen=True)
class EvalConfig:
    """One ``memtsm evaluate`` run."""

    checkpoint: str
    features: tuple[str, ...]
    annotations: str
    annotation_format: str = "auto"
    """``auto`` | ``ucf-crime`` | ``ucsd`` | ``csv``."""
    frame_counts: str | None = None
    """Optional ``Class/Name.mp4 n_frames`` file; the stored ``num_frames`` is used otherwise."""
    ucsd_name_format: str = "{:02d}"
    """Ids of UCSD ``.m`` videos in order (``{:02d}`` -> ``01``; ``testing/{:02d}``...)."""
    segments: int | None = None
    """``None``: score every clip (default); ``S``: score ``S`` resampled segments as in
    training."""
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("--features: give at least one feature store")
        if self.segments is not None and self.segments < 1:
            raise ValueError(f"--segments must be >= 1, got {self.segments}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class VideoEvaluation:
    """Per-video result: clip scores, their frames and the ground truth."""

    scores: np.ndarray
    recon_error: np.ndarray
    clip_frames: np.ndarray
    frame_scores: np.ndarray
    frame_labels: np.ndarray
    class_name: str
    annotation: str | None


@dataclass(frozen=True)
class EvalResult:
    """Metrics over all frames plus every video's scores."""

    metrics: EvalMetrics
    videos: dict[str, VideoEvaluation]
    annotated_but_missing: list[str]
    threshold_source: str
    config: EvalConfig
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``--json`` document: every metric, and per-video scores and clip frames."""
        data = self.metrics.to_json_dict()
        data["val_video_threshold"] = data["threshold"]  # "threshold": deprecated alias
        data["threshold_source"] = self.threshold_source
        data["annotated_but_missing"] = list(self.annotated_but_missing)
        data["config"] = self.config.to_dict()
        data["videos"] = {
            video_id: {
                "scores": [round(float(s), 6) for s in video.scores],
                "recon_error": [round(float(r), 6) for r in video.recon_error],
                "clip_frames": video.clip_frames.tolist(),
                "labels_frames": int(video.frame_labels.sum()),
                "num_frames": int(video.frame_labels.size),
                "class_name": video.class_name,
                "annotation": video.annotation,
            }
            for video_id, video in self.videos.items()
        }
        return data

    def write_json(self, path: Path | str) -> Path:
        """Write :meth:`to_json_dict` to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_json_dict(), indent=1) + "\n")
        return path

    def plot_curves(self, out_dir: Path | str) -> list[Path]:
        """ROC and PR curves of all frames as PNG files in ``out_dir``."""
        from memtsm.evaluate.plots import plot_roc_pr

        scores = np.concatenate([v.frame_scores for v in self.videos.values()])
        labels = np.concatenate([v.frame_labels for v in self.videos.values()])
        return plot_roc_pr(scores, labels, out_dir)


def _per_video(scored: dict[str, VideoScores], annotations: FrameAnnotations,
               mapping: dict[str, str]) -> dict[str, VideoEvaluation]:
    videos = {}
    for video_id, video in scored.items():
        name = mapping.get(video_id)
        labels = frame_labels(annotations, name, video.num_frames) if name \
            else np.zeros(video.num_frames, dtype=np.int8)
        class_name = (annotations.classes.get(name) if name else None) or video.class_name
        videos[video_id] = VideoEvaluation(
            scores=video.scores,
            recon_error=video.recon_error,
            clip_frames=video.clip_frames,
            frame_scores=spread_over_ranges(video.scores, video.clip_frames,
                                               video.num_frames),
            frame_labels=labels,
            class_name=class_name,
            annotation=name,
        )
    return videos


def evaluate(config: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Score every stored video with the checkpoint and compute frame-level metrics.

    Videos without annotation rows count as all-normal; annotated videos missing from the stores
    are listed in ``annotated_but_missing``.

    Raises:
        memtsm.train.checkpoint.CheckpointError: unsafe or invalid checkpoint.
        memtsm.score.stored.IncompatibleFeaturesError: features the checkpoint was not
            trained on (different dims, layout or extraction).
        ValueError: malformed annotations, or no video to evaluate.
    """
    checkpoint = load_checkpoint(config.checkpoint)
    counts: dict[str, int] | None = (read_frame_counts(config.frame_counts)
                                     if config.frame_counts else None)
    annotations = load_annotations(config.annotations, config.annotation_format,  # type: ignore
                                   counts, ucsd_name_format=config.ucsd_name_format)
    scored = score_store(checkpoint, list(config.features), device=config.device,
                         segments=config.segments, progress=progress)
    mapping, missing = match_videos(annotations, list(scored))
    videos = _per_video(scored, annotations, mapping)
    if checkpoint.val_video_threshold is None:
        threshold, source = DEFAULT_THRESHOLD, "default: the checkpoint has none"
    else:
        threshold = checkpoint.val_video_threshold
        source = "the checkpoint's video-level validation threshold"
    per_video = {vid: (v.frame_scores, v.frame_labels, v.class_name) for vid, v in videos.items()}
    metrics = frame_level_metrics(per_video, threshold)
    return EvalResult(metrics=metrics, videos=videos, annotated_but_missing=missing,
                      threshold_source=source, config=config)

