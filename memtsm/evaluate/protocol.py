"""Frame-level evaluation of a checkpoint on stored features (UCF-Crime protocol by default).

Each clip's score goes to the frames the clip covers (stored ``clip_frames``), ground truth comes
from an annotation file, all test videos' frames are concatenated, and ROC-AUC / PR-AUC / F1 are
computed. The decision threshold is the checkpoint's video-level validation threshold, chosen on
the validation videos' scores during training and applied here to frames: nothing here is tuned
on the test set, and scores are never normalised over it.

A video without annotation rows counts as entirely normal. Where the store labels such a video
anomalous, that is almost always a missing row rather than a normal video, so :func:`evaluate`
warns (``logging``), naming the videos and the frames affected
(:attr:`EvalResult.anomalous_without_annotation`); annotated videos missing from the stores are
listed in :attr:`EvalResult.annotated_but_missing`.

``protocol`` (:mod:`memtsm.evaluate.protocols`: ``ucf-crime``, ``xd-violence``,
``shanghaitech``) fixes the ground-truth reader, how a video's frames are counted, the clip
length and the headline metric of a standard benchmark, and the result carries its card.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
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
from memtsm.evaluate.protocols import Protocol, card_facts, get_protocol, protocol_card
from memtsm.extract.sources import read_frame_counts
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.progress import Progress
from memtsm.score.stored import DEFAULT_THRESHOLD, VideoScores, score_store
from memtsm.segments import spread_over_ranges
from memtsm.train.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)

#: Video ids named in the warning about anomalous videos without annotation rows.
NAMED_VIDEOS = 5


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
    protocol: str | None = None
    """``None``, or a standard benchmark's protocol (:data:`~memtsm.evaluate.protocols.PROTOCOLS`):
    it sets the annotation format, the frame counting and the headline metric."""

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("--features: give at least one feature store")
        if self.protocol is not None:
            protocol = get_protocol(self.protocol)
            if self.annotation_format not in ("auto", protocol.annotation_format):
                raise ValueError(f"--annotation-format {self.annotation_format}: the "
                                 f"{self.protocol} protocol reads {protocol.annotation_format} "
                                 "ground truth")
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
    anomalous_without_annotation: dict[str, int] = field(default_factory=dict)
    """Store id -> frame count of the videos the stores label anomalous that have no
    annotation row (all their frames were counted as normal)."""

    @property
    def headline(self) -> tuple[str, float | None] | None:
        """``(metric name, value)`` of the protocol's headline metric, ``None`` without one."""
        if self.config.protocol is None:
            return None
        protocol = get_protocol(self.config.protocol)
        return protocol.headline_name, getattr(self.metrics, protocol.headline)

    def card(self) -> str:
        """The protocol card (:func:`memtsm.evaluate.protocols.protocol_card`)."""
        return protocol_card(self)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``--json`` document: every metric, the card, and per-video scores and frames."""
        data = self.metrics.to_json_dict()
        data["protocol"] = self.config.protocol
        data["headline"] = None if self.headline is None else dict(zip(("metric", "value"),
                                                                       self.headline))
        data["card"] = card_facts(self)
        data["card_text"] = self.card()
        data["val_video_threshold"] = data["threshold"]  # "threshold": deprecated alias
        data["threshold_source"] = self.threshold_source
        data["annotated_but_missing"] = list(self.annotated_but_missing)
        data["anomalous_without_annotation"] = dict(self.anomalous_without_annotation)
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


def _frames_of(video_id: str, video: VideoScores, annotations: FrameAnnotations,
               name: str | None, protocol: Protocol | None) -> int:
    """Frames of a video under the protocol (the stored count without one).

    Raises:
        ValueError: the annotated count is a clip or more away from the stored one.
    """
    if protocol is None or protocol.frames != "annotation" or name is None:
        return video.num_frames
    count = annotations.num_frames.get(name)
    if count is None or count == video.num_frames:
        return video.num_frames
    if abs(count - video.num_frames) >= protocol.clip_len:
        raise ValueError(f"{annotations.source}: {name} has {count} frames, the features of "
                         f"{video_id} cover {video.num_frames}: more than one "
                         f"{protocol.clip_len}-frame clip apart (features of another video?)")
    return count


def frame_results(scored: Mapping[str, VideoScores], annotations: FrameAnnotations,
                  mapping: Mapping[str, str], protocol: Protocol | None = None
                  ) -> dict[str, VideoEvaluation]:
    """Frame scores and frame ground truth of scored videos.

    Args:
        scored: store id -> its clip scores (:func:`memtsm.score.stored.score_store`).
        annotations: the ground truth.
        mapping: store id -> annotation name (:func:`match_videos`); unmapped videos are
            normal.
        protocol: counts each video's frames (see :mod:`memtsm.evaluate.protocols`); ``None``:
            the stored count.

    Raises:
        ValueError: an annotated frame count a clip or more away from the stored one.
    """
    videos = {}
    for video_id, video in scored.items():
        name = mapping.get(video_id)
        num_frames = _frames_of(video_id, video, annotations, name, protocol)
        labels = frame_labels(annotations, name, num_frames) if name \
            else np.zeros(num_frames, dtype=np.int8)
        class_name = (annotations.classes.get(name) if name else None) or video.class_name
        videos[video_id] = VideoEvaluation(
            scores=video.scores,
            recon_error=video.recon_error,
            clip_frames=video.clip_frames,
            frame_scores=spread_over_ranges(video.scores, video.clip_frames, num_frames),
            frame_labels=labels,
            class_name=class_name,
            annotation=name,
        )
    return videos


def evaluate(config: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Score every stored video with the checkpoint and compute frame-level metrics.

    Videos without annotation rows count as all-normal (a warning names those the stores label
    anomalous, and their frames); annotated videos missing from the stores are listed in
    ``annotated_but_missing``.

    Raises:
        memtsm.train.checkpoint.CheckpointError: unsafe or invalid checkpoint.
        memtsm.score.stored.IncompatibleFeaturesError: features the checkpoint was not
            trained on (different dims, layout or extraction).
        ValueError: malformed annotations, or no video to evaluate.
    """
    checkpoint = load_checkpoint(config.checkpoint)
    protocol = get_protocol(config.protocol) if config.protocol is not None else None
    if protocol is not None:
        _check_clip_len(checkpoint.feature_identity, protocol)
    counts: dict[str, int] | None = (read_frame_counts(config.frame_counts)
                                     if config.frame_counts else None)
    annotation_format = protocol.annotation_format if protocol else config.annotation_format
    annotations = load_annotations(config.annotations, annotation_format,  # type: ignore
                                   counts, ucsd_name_format=config.ucsd_name_format)
    scored = score_store(checkpoint, list(config.features), device=config.device,
                         segments=config.segments, progress=progress)
    mapping, missing = match_videos(annotations, list(scored))
    videos = frame_results(scored, annotations, mapping, protocol)
    unannotated = _anomalous_without_annotation(scored, mapping)
    if unannotated:
        _warn_unannotated(unannotated, sum(v.num_frames for v in scored.values()),
                          config.annotations)
    if checkpoint.val_video_threshold is None:
        threshold, source = DEFAULT_THRESHOLD, "default: the checkpoint has none"
    else:
        threshold = checkpoint.val_video_threshold
        source = "the checkpoint's video-level validation threshold"
    per_video = {vid: (v.frame_scores, v.frame_labels, v.class_name) for vid, v in videos.items()}
    metrics = frame_level_metrics(per_video, threshold)
    return EvalResult(metrics=metrics, videos=videos, annotated_but_missing=missing,
                      threshold_source=source, config=config,
                      anomalous_without_annotation=unannotated,
                      extra=_selection_facts(config, checkpoint))


def _check_clip_len(identity: Any, protocol: Protocol) -> None:
    """Refuse imported features whose snippets are not the protocol's clip length."""
    clip_len = identity.feature_spec.get("clip_len") if not identity.is_extracted else None
    if clip_len is not None and clip_len != protocol.clip_len:
        raise ValueError(f"--protocol {protocol.name}: the checkpoint's features were imported "
                         f"with clip_len {clip_len}, the protocol's snippets are "
                         f"{protocol.clip_len} frames")


def _selection_facts(config: EvalConfig, checkpoint: Any) -> dict[str, Any]:
    """How the checkpoint was chosen and which crops were used, for the card."""
    from memtsm.extract.store import FeatureStore, StoreError

    train = checkpoint.train_config
    try:
        test_crops = FeatureStore(config.features[0]).identity.crops
    except StoreError:
        test_crops = None
    return {
        "checkpoint": {
            "path": str(config.checkpoint), "epoch": checkpoint.epoch,
            "epochs": train.epochs if train is not None else None,
            "model": checkpoint.scorer_config.kind,
            "seed": train.seed if train is not None else None,
            "val_videos": len(checkpoint.val_video_ids or ()),
            "val_metrics": {k: checkpoint.val_metrics.get(k) for k in ("val_auc", "val_ap")},
        },
        "test_crops": test_crops,
        "train_crops": checkpoint.feature_identity.crops,
    }


def _anomalous_without_annotation(scored: dict[str, VideoScores],
                                  mapping: dict[str, str]) -> dict[str, int]:
    """Store id -> frames of the videos labelled anomalous (label 1) that no annotation names."""
    return {video_id: int(video.num_frames) for video_id, video in scored.items()
            if video.label == 1 and video_id not in mapping}


def _warn_unannotated(unannotated: dict[str, int], total_frames: int, source: str) -> None:
    frames = sum(unannotated.values())
    names = sorted(unannotated)
    shown = ", ".join(names[:NAMED_VIDEOS]) + (
        f" and {len(names) - NAMED_VIDEOS} more" if len(names) > NAMED_VIDEOS else "")
    logger.warning(
        "%d video(s) labelled anomalous in the feature stores have no row in %s and were "
        "counted as entirely normal: %s; this affects %d of the %d frames evaluated (%.1f%%). "
        "Add their rows (their anomalous intervals, or -1 -1 if they hold no event) or "
        "leave them out of the stores",
        len(names), source, shown, frames, total_frames, 100.0 * frames / max(total_frames, 1))

