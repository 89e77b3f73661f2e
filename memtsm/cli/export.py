"""``memtsm export``: flags -> :func:`memtsm.score.export.export_checkpoint`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memtsm.cli.options import Checkpoint, XFeatWeights, command_class, setup_logging, usage_error

Command = command_class()


def export(
    checkpoint: Checkpoint,
    out: Annotated[Path, typer.Option(
        "--out", "-o", metavar="DIR", help="Folder for features.onnx, scorer.onnx, OpenVINO IR "
        "(when installed) and manifest.json.")],
    xfeat_weights: XFeatWeights = None,
) -> None:
    """Export a checkpoint's feature extractor and scorer as ONNX, to run without memtsm."""
    setup_logging(False)
    from memtsm.extract.weights import WeightsError
    from memtsm.score.export import export_checkpoint

    try:
        result = export_checkpoint(checkpoint, out,
                                   xfeat_weights=str(xfeat_weights) if xfeat_weights else None)
    except (OSError, ValueError, WeightsError) as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"exported {', '.join(result.files)} and manifest.json -> {result.out}")
