"""``memtsm benchmark``: flags -> :class:`~memtsm.benchmark.runner.BenchmarkConfig` -> run.

``NAME`` is one of ``PROTOCOL_NAMES`` (:mod:`memtsm.evaluate.protocols`), ``--model`` one of
``MODEL_NAMES`` (:mod:`memtsm.train.config`), ``--format`` one of ``FEATURE_FORMATS``
(:mod:`memtsm.extract.external`); ``--seeds`` defaults to :data:`DEFAULT_SEEDS`. The training
run of every seed is the ``--config`` YAML with ``--set`` values (one value each: a benchmark
does not search settings on its test set) and ``--model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Device,
    Quiet,
    Threads,
    TrainYaml,
    command_class,
    field_defaults,
    progress,
    setup_logging,
    usage_error,
    use_threads,
)


def library_defaults() -> dict[str, Any]:
    """Seeds, crops, feature name and normalisation of the benchmark config, the model."""
    from memtsm.benchmark.runner import BenchmarkConfig, FeatureInput
    from memtsm.train.config import TrainConfig

    bench, side = field_defaults(BenchmarkConfig), field_defaults(FeatureInput)
    return {"seeds": ",".join(map(str, bench["seeds"])), "feature_name": bench["feature_name"],
            "normalize": bench["normalize"], "device": bench["device"],
            "train_crops": side["crops"], "test_crops": side["crops"],
            "model": field_defaults(TrainConfig)["model"]}


def library_choices() -> dict[str, tuple[str, ...]]:
    """Protocols, models, import formats and normalisations of the library."""
    from memtsm.evaluate.protocols import PROTOCOL_NAMES
    from memtsm.extract.external import FEATURE_FORMATS, NORMALIZE_CHOICES
    from memtsm.train.config import MODEL_NAMES

    return {"name": PROTOCOL_NAMES, "model": MODEL_NAMES, "fmt": FEATURE_FORMATS,
            "test_fmt": FEATURE_FORMATS, "normalize": NORMALIZE_CHOICES}


Command = command_class(library_defaults, library_choices)

_Paths = Optional[list[Path]]


def benchmark(
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="The benchmark (its test protocol).", show_default=False)],
    train_features: Annotated[list[Path], typer.Option(
        "--train-features", metavar="DIR", help="Training features: feature store(s), or "
        "files/folders in --format (imported into OUT/features/train).")],
    test_features: Annotated[list[Path], typer.Option(
        "--test-features", metavar="DIR", help="Test features: feature store(s), or "
        "files/folders in --format (imported into OUT/features/test).")],
    annotations: Annotated[Path, typer.Option(
        "--annotations", "-a", metavar="FILE", help="The test ground truth the protocol "
        "reads (UCF-Crime temporal annotation, XD-Violence annotations.txt, ShanghaiTech "
        "test_frame_mask/).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", metavar="DIR", help="Benchmark directory: features/, sweep/, "
        "results.md, results.json.")],
    seeds: Annotated[Optional[str], typer.Option(
        help="Seeds, each trained and evaluated once: 0,1,2 or 0-4.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Scorer to benchmark.")] = None,
    config: TrainYaml = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="A train option for every seed (epochs=5, "
        "steps_per_epoch=50, scorer.channels=64, ...); repeat it.")] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="Layout of feature files to import (not needed for stores).")] = None,
    test_fmt: Annotated[Optional[str], typer.Option(
        "--test-format", help="Layout of the test files when it differs from --format.")] = None,
    train_list: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Published list naming the training videos (and labels).")] = None,
    test_list: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Published list naming the test videos.")] = None,
    train_frame_counts: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Frame counts of the training videos (UCF-Crime "
        "meta/Train_Annotation.txt).")] = None,
    test_frame_counts: Annotated[Optional[Path], typer.Option(
        metavar="FILE", help="Frame counts of the test videos (UCF-Crime "
        "meta/Test_Annotation.txt).")] = None,
    train_crops: Annotated[Optional[str], typer.Option(
        metavar="mean|each|K", help="Training crops: their mean, every crop as its own bag, "
        "or crop K.")] = None,
    test_crops: Annotated[Optional[str], typer.Option(
        metavar="mean|each|K", help="Test crops: their mean, or crop K.")] = None,
    train_audio: Annotated[_Paths, typer.Option(
        metavar="DIR", help="VGGish <Name>__vggish.npy of the training videos, concatenated "
        "(XD-Violence).")] = None,
    test_audio: Annotated[_Paths, typer.Option(
        metavar="DIR", help="VGGish files of the test videos.")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        metavar="CSV", help="CSV 'video,label,class' overriding the list's and the name "
        "rules' labels.")] = None,
    feature_name: Annotated[Optional[str], typer.Option(
        help="What imported features are (i3d, clip-vit-b16, c3d, ...).")] = None,
    normalize: Annotated[Optional[str], typer.Option(
        help="Per-row scaling of imported features.")] = None,
    device: Device = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Train every seed and evaluate it with a standard benchmark's protocol: one table.

    Under torchrun -m memtsm benchmark, rank r of N trains seeds r, r+N, ...; rank 0 imports,
    evaluates and writes results.md / results.json. Exits 1 if a seed failed.
    """
    from memtsm.benchmark.runner import (
        BenchmarkConfig,
        BenchmarkError,
        FeatureInput,
        run_benchmark,
    )
    from memtsm.runtime.world import World
    from memtsm.train.config import TrainConfig
    from memtsm.train.sweep import SweepConfig, parse_seeds

    try:
        world = World.from_env()
    except RuntimeError as exc:
        raise usage_error(str(exc)) from None
    setup_logging(quiet)
    use_threads(threads)
    try:
        seed_list = parse_seeds(seeds)
        base = TrainConfig.from_yaml(config, {"features": ("unused",), "out": str(out),
                                              "model": model})
        plan = SweepConfig.from_settings(base, seed_list, settings or [])
        if plan.grid:
            raise BenchmarkError(f"--set {plan.grid[0][0]}: give one value (a benchmark "
                                 "reports its configuration, it does not search settings)")
        bench = BenchmarkConfig(
            name=name, annotations=str(annotations), out=str(out), base=plan.base,
            seeds=seed_list, feature_name=feature_name, normalize=normalize, device=device,
            train=_side(FeatureInput, train_features, fmt, train_list, train_frame_counts,
                        train_crops, train_audio, labels),
            test=_side(FeatureInput, test_features, test_fmt or fmt, test_list, test_frame_counts,
                       test_crops, test_audio, labels))
        result = run_benchmark(bench, progress(quiet or not world.is_main, "runs"), world)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun the same command to continue the benchmark in {out}",
                   err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    if world.is_main:
        typer.echo(result.markdown, nl=False)
        for seed in result.failed:
            typer.echo(f"failed: seed {seed['seed']}: {seed['error']}", err=True)
        typer.echo(f"{len(result.seeds)} seeds -> {result.out}/results.md, results.json",
                   err=True)
    raise typer.Exit(EXIT_FAILURES if result.failed else EXIT_OK)


def _side(cls: Any, paths: list[Path], fmt: str | None, list_file: Path | None,
          frame_counts: Path | None, crops: str, audio: list[Path] | None,
          labels: Path | None) -> Any:
    """One side's :class:`FeatureInput` from its flags."""
    return cls(paths=tuple(str(p) for p in paths), format=fmt,
               list_file=str(list_file) if list_file else None,
               frame_counts=str(frame_counts) if frame_counts else None, crops=crops,
               audio=tuple(str(p) for p in audio or ()), labels=str(labels) if labels else None)
