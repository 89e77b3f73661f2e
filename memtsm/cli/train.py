"""``memtsm train``: flags -> :class:`memtsm.train.config.TrainConfig` -> ``train()``.

Precedence is flags given > ``--config`` YAML > :class:`TrainConfig` defaults: help shows the
TrainConfig (and :class:`ScorerOptions`) defaults, but only the flags actually given override the
YAML (:func:`memtsm.cli.options.given`). The run itself is :func:`memtsm.train.loop.train`.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_INTERRUPTED,
    Described,
    Device,
    Quiet,
    RunOut,
    Threads,
    TrainFeatures,
    TrainYaml,
    command_class,
    field_defaults,
    given,
    progress,
    setup_logging,
    usage_error,
    use_threads,
)

#: Options that set a field of ``TrainConfig.scorer`` (:class:`ScorerOptions`).
SCORER_OPTIONS = ("n_div", "mem_size", "channels", "num_blocks", "causal")


def _recipe_values(name: str) -> Described:
    """``the model's recipe: memtsm 0.0001, mil-mlp 0.01, rtfm 0.001`` for a recipe field."""
    from memtsm.train.recipes import RECIPES

    def shown(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    values = ", ".join(f"{model} {shown(getattr(recipe, name))}"
                       for model, recipe in RECIPES.items())
    return Described(f"the model's recipe: {values}")


def library_defaults() -> dict[str, Any]:
    """The defaults of :class:`TrainConfig` and its :class:`ScorerOptions`, by option name."""
    from memtsm.train.config import RECIPE_FIELDS, ScorerOptions, TrainConfig

    train, scorer = field_defaults(TrainConfig), field_defaults(ScorerOptions)
    defaults: dict[str, Any] = {name: train[name] for name in (
        "model", "epochs", "seed", "device", "val_fraction", "num_segments", "tie_break",
        "feature_noise", "ensemble")}
    defaults.update({name: _recipe_values(name) for name in RECIPE_FIELDS + ("batch_size",)})
    defaults["steps"] = Described("the model's recipe for the data size")
    defaults["steps_per_epoch"] = Described("steps / epochs")
    # --causal is a flag (off unless given): flags show no default
    return {**defaults, **{name: scorer[name] for name in SCORER_OPTIONS if name != "causal"}}


def library_choices() -> dict[str, tuple[str, ...]]:
    """Models, optimisers, schedules and tie-breaks of :mod:`memtsm.train`."""
    from memtsm.train.config import MODEL_NAMES, TIE_BREAKS
    from memtsm.train.recipes import OPTIMIZER_NAMES, SCHEDULE_NAMES

    return {"model": MODEL_NAMES, "optimizer": OPTIMIZER_NAMES, "schedule": SCHEDULE_NAMES,
            "tie_break": TIE_BREAKS}


Command = command_class(library_defaults, library_choices)


def train(
    ctx: typer.Context,
    features: TrainFeatures,
    out: RunOut,
    config: TrainYaml = None,
    model: Annotated[Optional[str], typer.Option(
        help="Scorer: MemTSM, or the baselines of Sultani et al. (mil-mlp) and Tian et al. "
        "(rtfm), each with its published recipe.")] = None,
    epochs: Annotated[Optional[int], typer.Option(
        help="Validation rounds the steps are split into (each may become best.pt).")] = None,
    steps: Annotated[Optional[int], typer.Option(
        metavar="N", help="Optimiser steps in all.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        metavar="N", help="Bags per batch, half normal and half anomalous (under torchrun: the "
        "global batch).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="Optimiser.")] = None,
    lr: Annotated[Optional[float], typer.Option(
        help="Learning rate (peak of the cosine schedule).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(
        metavar="WD", help="Weight decay of the matrices (decoupled for AdamW).")] = None,
    grad_clip: Annotated[Optional[float], typer.Option(
        metavar="NORM", help="Gradient-norm clip (0: none).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="Learning-rate schedule.")] = None,
    seed: Annotated[Optional[int], typer.Option(
        help="Seed of the split, the sampler and the weights.")] = None,
    device: Device = None,
    val_fraction: Annotated[Optional[float], typer.Option(
        help="Validation share of each class: picks the checkpoint and the video-level "
        "threshold.")] = None,
    num_segments: Annotated[Optional[int], typer.Option(
        help="Segments per training bag.")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(
        metavar="N", help="Batches per epoch, instead of --steps.")] = None,
    tie_break: Annotated[Optional[str], typer.Option(
        help="Which epoch of those with the best validation AUC is kept.")] = None,
    feature_noise: Annotated[Optional[float], typer.Option(
        metavar="SCALE", help="Augmentation: Gaussian noise on training segments, its std "
        "SCALE x each feature dimension's std (0: none).")] = None,
    n_div: Annotated[Optional[int], typer.Option(
        help="TSM shift: 1/n_div of the channels each way.")] = None,
    mem_size: Annotated[Optional[int], typer.Option(help="Memory slots.")] = None,
    channels: Annotated[Optional[int], typer.Option(help="Trunk width C.")] = None,
    num_blocks: Annotated[Optional[int], typer.Option(help="Temporal-shift blocks.")] = None,
    ensemble: Annotated[Optional[int], typer.Option(
        metavar="N", help="Train N members (same split, seeds derived from --seed) and save "
        "one scorer that averages their scores.")] = None,
    causal: Annotated[bool, typer.Option(
        "--causal", help="MemTSM looks only backwards in time: live (memtsm watch) scores are "
        "final at once, with no look-ahead.")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue from RUN_DIR/last.pt (a fresh start if there is none).")
    ] = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train the MemTSM scorer (or a baseline) with video-level labels.

    Under torchrun -m memtsm train, the processes train one model (--batch-size: global batch).
    """
    from memtsm.runtime.world import World
    from memtsm.train.config import TrainConfig
    from memtsm.train.loop import train as run_train

    try:
        world = World.from_env()
    except RuntimeError as exc:
        raise usage_error(str(exc)) from None
    quiet = quiet or not world.is_main  # the other ranks only report errors
    setup_logging(quiet)
    use_threads(threads)

    flags = {name: value for name, value in given(ctx).items()
             if name not in ("features", "out", "config", "resume", "threads", "quiet")}
    scorer = {name: flags.pop(name) for name in SCORER_OPTIONS if name in flags}
    overrides = {**flags, "features": tuple(str(p) for p in features), "out": str(out),
                 "scorer": scorer or None, "resume": resume or None}
    try:
        train_config = TrainConfig.from_yaml(config, overrides)
        result = run_train(train_config, progress(quiet, "epochs"), world)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun with --resume to continue from {out}/last.pt", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    if not world.is_main:
        return
    auc = "n/a" if result.best_val_auc is None else f"{result.best_val_auc:.4f}"
    threshold = ("n/a" if result.val_video_threshold is None
                 else f"{result.val_video_threshold:.4f}")
    chosen = (f"ensemble of {len(result.members)} (member best epochs "
              f"{', '.join(str(m.best_epoch) for m in result.members)})" if result.members
              else f"best epoch {result.best_epoch}")
    typer.echo(f"{chosen}: validation video AUC {auc}, video-level "
               f"validation threshold {threshold} -> {result.best_checkpoint}"
               + (" (unreliable: see the warnings above; held-out videos in split.json)"
                  if result.warnings else ""), err=True)
