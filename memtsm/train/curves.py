"""``curves.png`` of a run: loss terms and video-level metrics per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memtsm.runtime.files import atomic_path
from memtsm.train.objective import LOSS_TERMS


def plot_curves(history: list[dict[str, Any]], path: Path,
                terms: tuple[str, ...] = LOSS_TERMS) -> Path:
    """Write ``curves.png``: loss ``terms`` (log scale) and train/val AUC, val PR-AUC per epoch.

    Uses :class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot global state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    loss_ax, auc_ax = fig.subplots(1, 2)
    for name in ("total", *(t for t in terms if t != "total")):
        values = [row[f"loss_{name}"] for row in history]
        if any(v > 0 for v in values):
            loss_ax.plot(epochs, values, marker=".", label=name,
                         linewidth=2.0 if name == "total" else 1.0)
    loss_ax.plot(epochs, [row["val_loss"] for row in history], "k--", label="val total")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_title("training loss: total and its terms (unweighted)")
    loss_ax.legend(fontsize="small")
    for key, label in (("train_auc", "train ROC-AUC"), ("val_auc", "val ROC-AUC"),
                       ("val_ap", "val PR-AUC")):
        values = [np.nan if row[key] is None else row[key] for row in history]
        auc_ax.plot(epochs, values, marker=".", label=label)
    auc_ax.set_ylim(0.0, 1.02)
    auc_ax.set_xlabel("epoch")
    auc_ax.set_title("video-level metrics")
    auc_ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path
