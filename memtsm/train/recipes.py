"""How each model is trained by default: its optimiser, batch and budget (:class:`Recipe`).

A :class:`~memtsm.train.config.TrainConfig` leaves ``optimizer``, ``lr``, ``weight_decay``,
``batch_size``, ``grad_clip``, ``schedule`` and ``steps`` at ``None`` unless the user sets them;
:meth:`TrainConfig.resolved <memtsm.train.config.TrainConfig.resolved>` fills them from the
model's recipe, and the run's ``config.yaml`` records the values used.

Budget (:func:`plan_steps`). Training length is counted in optimiser steps, not in passes over a
class: ``steps = clamp(passes x pass_steps, min_steps, max_steps)``, where ``pass_steps =
ceil(larger class / (batch / 2))`` is one pass over the larger class. ``min_steps`` keeps a tiny
data set (7 videos: one batch per pass) from being silently undertrained, ``max_steps`` is the
published iteration count. The steps are split over ``epochs`` validation rounds.

Batch. A recipe's batch is an upper bound: on a data set whose larger class has fewer than
``batch / 2`` training videos, each half of a batch holds that many videos (drawing the same
few videos 30 times into one batch only costs time).

Recipes and their sources:

``memtsm``
    AdamW (lr 1e-4, decoupled decay 0.1 on matrices), cosine schedule to 0, gradient-norm clip 1,
    8 + 8 bags; 20 passes over the larger class, at least 500 steps.
``mil-mlp`` -- Sultani, Chen and Shah, CVPR 2018, and their released training script
    (``TrainingAnomalyDetector_public.py``): Adagrad (lr 0.01), 30 + 30 bags, no schedule, no
    clipping, 20,000 iterations over the 810 anomalous training videos of UCF-Crime (~740 passes
    of the anomalous class; here: 740 passes of the larger class, at most 20,000 steps).
    Their Keras loss is ``30 x`` memtsm's mean-over-pairs :func:`~memtsm.model.mil_loss` (the
    hinge is summed over the 30 anomalous videos of a batch, the regularisers too) and adds
    ``1e-3 * sum ||W||^2`` over the kernels. Adagrad's steps do not depend on the loss scale,
    so the same run here is the mean-form loss with an L2 coefficient of ``1e-3 / 30``, i.e. a
    (coupled) weight decay of ``2 x 1e-3 / 30`` on the kernels.
``rtfm`` -- Tian et al., ICCV 2021: Adam (lr 1e-3, weight decay 5e-3), 32 + 32 bags, no
    schedule, 15,000 iterations (~590 passes of UCF-Crime's anomalous class; here 590 passes of
    the larger class, at most 15,000 steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Optimisers a recipe or ``--optimizer`` can name.
OPTIMIZER_NAMES = ("adamw", "adam", "adagrad")
#: Learning-rate schedules: cosine annealing to 0 over all steps, or a constant rate.
SCHEDULE_NAMES = ("cosine", "constant")
#: Sultani et al.'s L2 coefficient on the kernels (Keras ``l2(1e-3)``) and anomalous bags per batch.
SULTANI_L2 = 1e-3
SULTANI_HALF_BATCH = 30


@dataclass(frozen=True)
class Recipe:
    """A model's default optimisation: what ``TrainConfig`` fields left at ``None`` become."""

    optimizer: str
    """One of :data:`OPTIMIZER_NAMES`; ``adamw`` decays decoupled, the others add L2."""
    lr: float
    """Learning rate (the cosine schedule's peak)."""
    weight_decay: float
    """Weight decay of the matrices (never of biases or norm gains)."""
    batch_size: int
    """Bags per batch, half of each class (an upper bound, see the module docstring)."""
    grad_clip: float
    """Max global gradient norm; 0: none."""
    schedule: str
    """One of :data:`SCHEDULE_NAMES`."""
    passes: int
    """Passes over the larger training class."""
    min_steps: int
    """Fewest optimiser steps, whatever the data size."""
    max_steps: int | None
    """Most optimiser steps (the published iteration count), or no bound."""


RECIPES: dict[str, Recipe] = {
    "memtsm": Recipe(optimizer="adamw", lr=1e-4, weight_decay=0.1, batch_size=16, grad_clip=1.0,
                     schedule="cosine", passes=20, min_steps=500, max_steps=None),
    "mil-mlp": Recipe(optimizer="adagrad", lr=0.01,
                      weight_decay=2 * SULTANI_L2 / SULTANI_HALF_BATCH,
                      batch_size=2 * SULTANI_HALF_BATCH, grad_clip=0.0, schedule="constant",
                      passes=740, min_steps=500, max_steps=20_000),
    "rtfm": Recipe(optimizer="adam", lr=1e-3, weight_decay=5e-3, batch_size=64, grad_clip=0.0,
                   schedule="constant", passes=590, min_steps=500, max_steps=15_000),
}


def fitted_batch_size(recipe_batch: int, n_normal: int, n_anomalous: int) -> int:
    """The recipe's batch, with halves no larger than the larger class (>= 1 bag each)."""
    half = min(recipe_batch // 2, max(n_normal, n_anomalous, 1))
    return 2 * half


def pass_steps(n_normal: int, n_anomalous: int, batch_size: int) -> int:
    """Batches in one pass over the larger class: ``ceil(max(n0, n1) / (batch / 2))``."""
    return max(1, math.ceil(max(n_normal, n_anomalous) / (batch_size // 2)))


def plan_steps(recipe: Recipe, n_normal: int, n_anomalous: int, batch_size: int) -> int:
    """Optimiser steps of a run whose config left ``steps`` to the recipe (module docstring)."""
    steps = max(recipe.min_steps, recipe.passes * pass_steps(n_normal, n_anomalous, batch_size))
    return steps if recipe.max_steps is None else min(steps, recipe.max_steps)


def steps_per_round(total_steps: int, epochs: int) -> int:
    """Steps between two validations when ``total_steps`` are split over ``epochs`` rounds."""
    return max(1, math.ceil(total_steps / epochs))
