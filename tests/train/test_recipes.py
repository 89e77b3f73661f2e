"""Training recipes and the step-count rule: every model trains for a sensible number of steps."""

from __future__ import annotations

import pytest

from memtsm.train.config import TrainConfig
from memtsm.train.recipes import (
    RECIPES,
    fitted_batch_size,
    pass_steps,
    plan_steps,
    steps_per_round,
)


def test_tiny_data_sets_get_the_minimum_number_of_steps():
    # 7 training videos (4 normal, 3 anomalous): one batch is a pass over the larger class.
    for model, recipe in RECIPES.items():
        batch = fitted_batch_size(recipe.batch_size, 4, 3)
        assert batch == 8, model  # halves capped at the larger class
        assert pass_steps(4, 3, batch) == 1
        assert plan_steps(recipe, 4, 3, batch) == max(recipe.min_steps, recipe.passes) >= 500


def test_large_data_sets_get_passes_up_to_the_published_iterations():
    memtsm, mil, rtfm = RECIPES["memtsm"], RECIPES["mil-mlp"], RECIPES["rtfm"]
    # UCF-Crime's 1,610 training videos less a 20 % validation split: 648 anomalous, 640 normal.
    assert plan_steps(memtsm, 640, 648, 16) == 20 * 81
    assert plan_steps(mil, 640, 648, 60) == 740 * 22 == 16_280  # Sultani: 20,000 on 810
    assert plan_steps(rtfm, 640, 648, 64) == 590 * 21 == 12_390  # Tian et al.: 15,000
    assert plan_steps(mil, 5000, 5000, 60) == 20_000


def test_steps_are_split_over_the_epochs():
    assert steps_per_round(500, 20) == 25
    assert steps_per_round(501, 20) == 26
    assert steps_per_round(3, 20) == 1


def test_resolved_fills_the_models_recipe_and_keeps_what_was_given():
    base = TrainConfig(features=("s",), out="o")
    for model, recipe in RECIPES.items():
        config = base.replace(model=model).resolved()
        assert (config.optimizer, config.lr, config.weight_decay, config.grad_clip,
                config.schedule) == (recipe.optimizer, recipe.lr, recipe.weight_decay,
                                     recipe.grad_clip, recipe.schedule)
        assert config.batch_size is None and config.steps is None  # they need the data
    given = base.replace(model="mil-mlp", lr=0.05, optimizer="adamw").resolved()
    assert (given.lr, given.optimizer, given.schedule) == (0.05, "adamw", "constant")


def test_fitted_sets_batch_and_steps_from_the_data():
    config = TrainConfig(features=("s",), out="o").resolved().fitted(4, 3)
    assert (config.batch_size, config.steps) == (8, 500)
    two_ranks = TrainConfig(features=("s",), out="o").fitted(3, 2, world_size=2)
    assert two_ranks.batch_size % 4 == 0 and two_ranks.batch_size >= 4
    fixed = TrainConfig(features=("s",), out="o", steps_per_epoch=3).fitted(40, 40)
    assert fixed.steps is None and fixed.batch_size == 16
    explicit = TrainConfig(features=("s",), out="o", steps=7, batch_size=4).fitted(40, 40)
    assert (explicit.batch_size, explicit.steps) == (4, 7)


def test_steps_and_steps_per_epoch_exclude_each_other():
    with pytest.raises(ValueError, match="--steps or --steps-per-epoch"):
        TrainConfig(features=("s",), out="o", steps=10, steps_per_epoch=2)
    with pytest.raises(ValueError, match="--optimizer"):
        TrainConfig(features=("s",), out="o", optimizer="sgd")
    with pytest.raises(ValueError, match="--tie-break"):
        TrainConfig(features=("s",), out="o", tie_break="first")
