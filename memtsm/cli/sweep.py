"""``memtsm sweep``: flags -> :class:`memtsm.train.sweep.SweepConfig` -> ``run_sweep()``.

``--seeds`` defaults to :attr:`SweepConfig.seeds`; ``--device`` shows :class:`TrainConfig`'s default
but, like every train flag, overrides the ``--config`` YAML only when given.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Device,
    Quiet,
    SweepOut,
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


def library_defaults() -> dict[str, Any]:
    """:attr:`SweepConfig.seeds` (as ``--seeds`` text) and :attr:`TrainConfig.device`."""
    from memtsm.train.config import TrainConfig
    from memtsm.train.sweep import SweepConfig

    seeds = field_defaults(SweepConfig)["seeds"]
    return {"seeds": ",".join(str(seed) for seed in seeds),
            "device": field_defaults(TrainConfig)["device"]}


Command = command_class(library_defaults)


def sweep(
    ctx: typer.Context,
    features: TrainFeatures,
    out: SweepOut,
    config: TrainYaml = None,
    seeds: Annotated[Optional[str], typer.Option(
        help="Seeds of every variant: 0,1,2 or 0-4.")] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUES", help="key=value,value... over a train option (lr, "
        "epochs, scorer.channels, loss.topk, ...); repeat it: the grid is every "
        "combination.")] = None,
    device: Device = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train seeds x config variants and tabulate validation metrics (mean ± std over seeds).

    Under torchrun -m memtsm sweep, rank r of N trains runs r, r+N, ... on cuda:LOCAL_RANK;
    exits 1 if a run failed.
    """
    from memtsm.runtime.world import World
    from memtsm.train.config import TrainConfig
    from memtsm.train.sweep import SweepConfig, parse_seeds, run_sweep

    try:
        world = World.from_env()
    except RuntimeError as exc:
        raise usage_error(str(exc)) from None
    setup_logging(quiet)
    use_threads(threads)
    overrides = {"features": tuple(str(p) for p in features), "out": str(out),
                 "device": given(ctx).get("device")}
    try:
        base = TrainConfig.from_yaml(config, overrides)
        plan = SweepConfig.from_settings(base, parse_seeds(seeds), settings or [])
        result = run_sweep(plan, progress(quiet or not world.is_main, "runs"), world)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun the same command to continue the sweep in {out}",
                   err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    if world.is_main:
        typer.echo(result.markdown, nl=False)
        for run in result.failed:
            typer.echo(f"failed: {run['variant']} seed {run['seed']}: {run['error']}", err=True)
        typer.echo(f"{len(result.runs)} runs -> {result.out}/sweep.csv, sweep.md, sweep.json",
                   err=True)
    raise typer.Exit(EXIT_FAILURES if result.failed else EXIT_OK)
