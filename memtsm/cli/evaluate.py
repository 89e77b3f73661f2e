"""``memtsm evaluate``: flags -> :class:`memtsm.evaluate.protocol.EvalConfig` -> ``evaluate()``.

Defaults are the :class:`EvalConfig` fields; ``--annotation-format`` accepts
``ANNOTATION_FORMATS`` of :mod:`memtsm.evaluate.annotations`, ``--protocol`` the
``PROTOCOL_NAMES`` of :mod:`memtsm.evaluate.protocols`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    Checkpoint,
    Described,
    Device,
    FrameCounts,
    Quiet,
    TestFeatures,
    Threads,
    command_class,
    field_defaults,
    progress,
    setup_logging,
    usage_error,
    use_threads,
)
from memtsm.cli.render import number


def library_defaults() -> dict[str, Any]:
    """The defaults of :class:`EvalConfig`, by option name."""
    from memtsm.evaluate.protocol import EvalConfig

    defaults = field_defaults(EvalConfig)
    return {"annotation_format": defaults["annotation_format"],
            "ucsd_names": defaults["ucsd_name_format"], "device": defaults["device"],
            "segments": Described("every clip")}


def library_choices() -> dict[str, tuple[str, ...]]:
    """``ANNOTATION_FORMATS`` and ``PROTOCOL_NAMES`` of :mod:`memtsm.evaluate`."""
    from memtsm.evaluate.annotations import ANNOTATION_FORMATS
    from memtsm.evaluate.protocols import PROTOCOL_NAMES

    return {"annotation_format": ANNOTATION_FORMATS, "protocol": PROTOCOL_NAMES}


Command = command_class(library_defaults, library_choices)


def evaluate(
    checkpoint: Checkpoint,
    features: TestFeatures,
    annotations: Annotated[Path, typer.Option(
        "--annotations", "-a", metavar="FILE", help="Frame annotations: UCF-Crime temporal "
        "file, UCSD .m, CSV video,start_frame,end_frame, XD-Violence annotations.txt, or a "
        "folder of ShanghaiTech frame masks.")],
    protocol: Annotated[Optional[str], typer.Option(
        help="A standard benchmark's protocol: its ground-truth reader, frame counting, clip "
        "length and headline metric; prints its card.")] = None,
    annotation_format: Annotated[Optional[str], typer.Option(
        help="Format of --annotations; auto: by extension and first line.")] = None,
    frame_counts: FrameCounts = None,
    ucsd_names: Annotated[Optional[str], typer.Option(
        help="Store ids of the videos of a UCSD .m file, in order ('{:02d}' -> 01, 02, "
        "...).")] = None,
    segments: Annotated[Optional[int], typer.Option(
        metavar="S", help="Score S resampled segments per video, as in training.")] = None,
    device: Device = None,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", metavar="FILE", help="Write every metric and per-video scores here.")] = None,
    plot_curves: Annotated[Optional[Path], typer.Option(
        metavar="DIR", help="Write roc.png and pr.png here.")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Frame-level ROC-AUC, PR-AUC and F1 of a checkpoint on annotated test videos."""
    setup_logging(quiet)
    use_threads(threads)
    from memtsm.evaluate.protocol import EvalConfig
    from memtsm.evaluate.protocol import evaluate as run_evaluate

    try:
        eval_config = EvalConfig(
            checkpoint=str(checkpoint), features=tuple(str(p) for p in features),
            annotations=str(annotations), annotation_format=annotation_format,
            frame_counts=str(frame_counts) if frame_counts else None,
            ucsd_name_format=ucsd_names, segments=segments, device=device, protocol=protocol)
        result = run_evaluate(eval_config, progress(quiet))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    metrics = result.metrics
    if result.headline is not None:
        name, value = result.headline
        typer.echo(f"{name} {number(value)}")
        typer.echo(result.card(), nl=False)
    typer.echo(f"videos {metrics.n_videos}  frames {metrics.n_frames}  anomalous frames "
               f"{metrics.n_anomalous_frames}")
    typer.echo(f"frame ROC-AUC {number(metrics.roc_auc)}  PR-AUC (average precision) "
               f"{number(metrics.pr_auc)}  PR-AUC (trapezoidal) {number(metrics.pr_auc_trapz)}")
    typer.echo(f"F1 {number(metrics.f1)}  precision {number(metrics.precision)}  recall "
               f"{number(metrics.recall)} at threshold {metrics.threshold:.4f} "
               f"({result.threshold_source})")
    typer.echo(f"ROC-AUC over anomalous videos only {number(metrics.anomalous_video_auc)}  "
               f"false-alarm rate on normal videos {number(metrics.normal_false_alarm_rate)}")
    for name, value in sorted((metrics.per_class_auc or {}).items()):
        typer.echo(f"  {name:<16} ROC-AUC {number(value)}")
    for message in metrics.messages:
        typer.echo(f"note: {message}", err=True)
    if result.annotated_but_missing:
        typer.echo(f"note: {len(result.annotated_but_missing)} annotated videos are not in the "
                   f"stores (e.g. {result.annotated_but_missing[0]})", err=True)
    if json_out:
        result.write_json(json_out)
    if plot_curves:
        try:
            result.plot_curves(plot_curves)
        except ValueError as exc:  # e.g. no anomalous frames: the curves are undefined
            raise usage_error(f"--plot-curves {plot_curves}: {exc}") from None
