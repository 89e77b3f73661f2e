"""Frame-level evaluation of clip (or segment) anomaly scores.

Clip scores are spread over the frames each clip covers, using the stored ``[start, end)``
boundaries (``clip_frames``), never an assumed clip length. Metrics are computed on the frames
of all videos concatenated, on the raw scores: nothing is normalised over the test set (that
would leak test statistics into the scores). Metrics that are undefined on the given data (an
AUC with one class only) are ``None``, with the reason in :attr:`EvalMetrics.messages`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EvalMetrics:
    """Frame-level metrics over all test frames.

    Attributes:
        roc_auc: area under the ROC curve (``None`` if only one class is present).
        pr_auc: average precision (``sklearn.metrics.average_precision_score``, step-wise PR
            area); ``None`` without anomalous frames.
        pr_auc_trapz: trapezoidal area under the PR curve (``auc(recall, precision)`` from
            ``precision_recall_curve``); papers report either, they differ slightly.
        f1, precision, recall: at ``threshold`` (``score >= threshold`` is anomalous); ``None``
            where the denominator is zero.
        threshold: the decision threshold used.
        n_videos, n_frames, n_anomalous_frames: what was evaluated.
        anomalous_video_auc: ROC AUC over the frames of anomalous videos only (``None`` if
            undefined).
        per_class_auc: class -> ROC AUC over that class's anomalous videos plus all normal
            videos (``None`` where undefined).
        messages: why a metric is ``None``.
        normal_false_alarm_rate: share of the frames of normal videos (no anomalous frame)
            scored ``>= threshold``, the false-alarm rate papers report (``None`` without a
            normal video).
    """

    roc_auc: float | None
    pr_auc: float | None
    pr_auc_trapz: float | None
    f1: float | None
    precision: float | None
    recall: float | None
    threshold: float
    n_videos: int
    n_frames: int
    n_anomalous_frames: int
    anomalous_video_auc: float | None
    per_class_auc: dict[str, float | None] = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    normal_false_alarm_rate: float | None = None

    @property
    def anomalous_fraction(self) -> float:
        """Share of anomalous frames."""
        return self.n_anomalous_frames / self.n_frames if self.n_frames else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``--json`` output); ``None`` stays ``null``."""
        data = asdict(self)
        data["messages"] = list(self.messages)
        data["anomalous_fraction"] = self.anomalous_fraction
        data["pr_auc_definition"] = "average_precision_score"
        data["pr_auc_trapz_definition"] = "auc(recall, precision) of precision_recall_curve"
        return data


def _roc_auc(scores: np.ndarray, labels: np.ndarray, what: str,
             messages: list[str]) -> float | None:
    from sklearn.metrics import roc_auc_score

    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        kind = "no anomalous" if positives == 0 else "no normal"
        messages.append(f"{what}: undefined, {kind} frames")
        return None
    return float(roc_auc_score(labels, scores))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _check_video(name: str, scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"{name}: frame scores {scores.shape} and labels {labels.shape} must be "
                         "1-D of the same length")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name}: frame scores contain NaN or inf")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{name}: frame labels must be 0 or 1")


def frame_level_metrics(per_video: Mapping[str, tuple[np.ndarray, np.ndarray, str]],
                        threshold: float) -> EvalMetrics:
    """Frame-level ROC/PR metrics of all videos together.

    A video is anomalous if it has an anomalous frame, normal otherwise; classes are taken from
    the anomalous videos (an empty class name is left out of ``per_class_auc``).

    Args:
        per_video: video id -> ``(frame_scores [N], frame_labels [N] (0/1), class_name)``.
        threshold: decision threshold for F1/precision/recall (``score >= threshold``); choose
            it on validation data (:func:`choose_threshold`), never on the test set.

    Returns:
        The metrics; undefined ones are ``None`` with a reason in ``messages``.

    Raises:
        ValueError: no video, a video without frames, mismatched shapes, non-finite scores or
            labels other than 0/1.
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve

    if not per_video:
        raise ValueError("no video to evaluate")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    videos: list[tuple[str, np.ndarray, np.ndarray, str]] = []
    for name, (scores, labels, class_name) in per_video.items():
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels)
        _check_video(name, scores, labels)
        if scores.size == 0:
            raise ValueError(f"{name}: no frames")
        videos.append((name, scores, labels.astype(np.int8), class_name))
    all_scores = np.concatenate([v[1] for v in videos])
    all_labels = np.concatenate([v[2] for v in videos])
    messages: list[str] = []
    positives = int(all_labels.sum())

    roc = _roc_auc(all_scores, all_labels, "roc_auc", messages)
    if positives:
        pr_auc: float | None = float(average_precision_score(all_labels, all_scores))
        precision_curve, recall_curve, _ = precision_recall_curve(all_labels, all_scores)
        pr_trapz: float | None = float(auc(recall_curve, precision_curve))
    else:
        pr_auc = pr_trapz = None
        messages.append("pr_auc, pr_auc_trapz: undefined, no anomalous frames")

    predicted = all_scores >= threshold
    true_pos = int(np.count_nonzero(predicted & (all_labels == 1)))
    false_pos = int(np.count_nonzero(predicted & (all_labels == 0)))
    false_neg = positives - true_pos
    precision = _ratio(true_pos, true_pos + false_pos)
    recall = _ratio(true_pos, true_pos + false_neg)
    f1 = _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg)
    if precision is None:
        messages.append(f"precision: undefined, no frame scores >= threshold {threshold}")
    if recall is None:
        messages.append("recall: undefined, no anomalous frames")

    anomalous = [v for v in videos if v[2].any()]
    normal = [v for v in videos if not v[2].any()]
    if anomalous:
        anomalous_auc = _roc_auc(np.concatenate([v[1] for v in anomalous]),
                                 np.concatenate([v[2] for v in anomalous]),
                                 "anomalous_video_auc", messages)
    else:
        anomalous_auc = None
        messages.append("anomalous_video_auc: undefined, no anomalous video")
    per_class: dict[str, float | None] = {}
    for class_name in sorted({v[3] for v in anomalous if v[3]}):
        subset = [v for v in anomalous if v[3] == class_name] + normal
        per_class[class_name] = _roc_auc(np.concatenate([v[1] for v in subset]),
                                         np.concatenate([v[2] for v in subset]),
                                         f"per_class_auc[{class_name}]", messages)
    if normal:
        normal_scores = np.concatenate([v[1] for v in normal])
        false_alarms: float | None = float(np.count_nonzero(normal_scores >= threshold)
                                           / normal_scores.size)
    else:
        false_alarms = None
        messages.append("normal_false_alarm_rate: undefined, no normal video")
    return EvalMetrics(
        roc_auc=roc, pr_auc=pr_auc, pr_auc_trapz=pr_trapz, f1=f1, precision=precision,
        recall=recall, normal_false_alarm_rate=false_alarms, threshold=float(threshold),
        n_videos=len(videos),
        n_frames=int(all_labels.size), n_anomalous_frames=positives,
        anomalous_video_auc=anomalous_auc, per_class_auc=per_class, messages=tuple(messages))


def f1_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The F1-maximising decision threshold of video scores (anomalous iff ``score >= t``).

    Among the thresholds that split the sorted scores, take the one with the highest F1 (ties:
    the lowest such threshold, i.e. the higher recall). It is returned as the midpoint between
    the lowest score flagged and the highest score not flagged, so the validation decisions are
    unchanged and the margin to both sides is equal; when every video is flagged it is the lowest
    score.

    Args:
        scores: ``[N]`` video scores.
        labels: ``[N]`` 0/1 labels with at least one positive.

    Returns:
        ``(threshold, f1)``.

    Raises:
        ValueError: No positive label.
    """
    from sklearn.metrics import precision_recall_curve

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if labels.sum() == 0:
        raise ValueError("the F1 threshold needs at least one anomalous video")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    denom = precision[:-1] + recall[:-1]
    f1 = np.where(denom > 0, 2 * precision[:-1] * recall[:-1] / np.maximum(denom, 1e-300), 0.0)
    best = int(np.argmax(f1))
    lowest_flagged = float(thresholds[best])
    below = scores[scores < lowest_flagged]
    threshold = (lowest_flagged + float(below.max())) / 2 if below.size else lowest_flagged
    return threshold, float(f1[best])


def video_auc_ap(video_scores: np.ndarray, labels: np.ndarray
                 ) -> tuple[float | None, float | None]:
    """Video-level ``(ROC-AUC, average precision)``; ``(None, None)`` with a single class."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(labels)) < 2:
        return None, None
    return (float(roc_auc_score(labels, video_scores)),
            float(average_precision_score(labels, video_scores)))
