"""ROC and precision-recall plots of frame-level scores (matplotlib Agg, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memtsm.runtime.files import atomic_path

ROC_NAME = "roc.png"
PR_NAME = "pr.png"


def plot_roc_pr(frame_scores: np.ndarray, frame_labels: np.ndarray,
                out_dir: Path | str, dpi: int = 120) -> list[Path]:
    """Write ``roc.png`` and ``pr.png`` for frame scores of all test videos.

    Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, so no
    global pyplot state is touched and no display is needed.

    Args:
        frame_scores: ``[N]`` frame scores (raw, not normalised).
        frame_labels: ``[N]`` 0/1 ground truth.
        out_dir: folder for the images (created if needed).
        dpi: resolution of the images.

    Returns:
        Paths of the written images ``[roc.png, pr.png]``.

    Raises:
        ValueError: shapes differ, or the labels hold one class only (curves undefined).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import (
        auc,
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    scores = np.asarray(frame_scores, dtype=np.float64)
    labels = np.asarray(frame_labels)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"frame scores {scores.shape} and labels {labels.shape} must be 1-D of "
                         "the same length")
    positives = int(np.count_nonzero(labels == 1))
    if positives == 0 or positives == labels.size:
        raise ValueError("ROC/PR curves need both normal and anomalous frames")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    fpr, tpr, _ = roc_curve(labels, scores)
    roc_auc = roc_auc_score(labels, scores)
    figure = Figure(figsize=(5, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(fpr, tpr, label=f"ROC AUC = {roc_auc:.4f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1),
             ylim=(0, 1.01), title="Frame-level ROC")
    axes.legend(loc="lower right")
    roc_path = out / ROC_NAME
    with atomic_path(roc_path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")

    precision, recall, _ = precision_recall_curve(labels, scores)
    average_precision = average_precision_score(labels, scores)
    figure = Figure(figsize=(5, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(recall, precision,
              label=f"AP = {average_precision:.4f}, trapezoid AUC = {auc(recall, precision):.4f}")
    axes.axhline(positives / labels.size, linestyle="--", color="grey", label="chance")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01),
             title="Frame-level precision-recall")
    axes.legend(loc="upper right")
    pr_path = out / PR_NAME
    with atomic_path(pr_path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return [roc_path, pr_path]
