"""``memtsm demo``: flags -> :func:`memtsm.demo.run_demo` (defaults: its keyword defaults)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    DemoOut,
    Device,
    Threads,
    XFeatWeights,
    command_class,
    setup_logging,
    signature_defaults,
    usage_error,
)
from memtsm.cli.render import number


def library_defaults() -> dict[str, Any]:
    """The keyword defaults of :func:`memtsm.demo.run_demo`."""
    from memtsm.demo import run_demo

    defaults = signature_defaults(run_demo)
    return {name: defaults[name] for name in ("out", "seed", "device")}


Command = command_class(library_defaults)


def demo(
    out: DemoOut = None,
    fast: Annotated[bool, typer.Option("--fast", help="A smaller, quicker version.")] = False,
    seed: Annotated[Optional[int], typer.Option(
        help="Seed of the data set and the training run.")] = None,
    device: Device = None,
    xfeat_weights: XFeatWeights = None,
    threads: Threads = None,
) -> None:
    """Generate synthetic surveillance videos, then extract, train, evaluate and score."""
    setup_logging(True)
    from memtsm.demo import run_demo

    try:
        result = run_demo(out, fast=fast, seed=seed, device=device,
                          xfeat_weights=str(xfeat_weights) if xfeat_weights else None,
                          threads=threads,
                          log=lambda line: typer.echo(line, err=True))
    except (OSError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"demo done in {result.seconds:.0f} s -> {result.out}/")
    typer.echo(f"  test set, frame level: ROC-AUC {number(result.roc_auc, 3)}  PR-AUC "
               f"{number(result.pr_auc, 3)}  F1 {number(result.f1, 3)} at the video-level "
               f"validation threshold {number(result.val_video_threshold, 3)}")
    typer.echo(f"  checkpoint: {result.checkpoint}")
    typer.echo(f"  scored {result.scored_video}: plot {result.plot}, report {result.report}")
