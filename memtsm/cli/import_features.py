"""``memtsm import-features``: flags -> :func:`memtsm.extract.external.import_features`.

Defaults are that function's keyword defaults; ``--format`` / ``--normalize`` accept its
``FEATURE_FORMATS`` / ``NORMALIZE_CHOICES``; ``--crops`` takes ``CROP_CHOICES`` or a crop number
(checked by the library).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_FAILURES,
    EXIT_OK,
    FrameCounts,
    Labels,
    StoreOut,
    Threads,
    command_class,
    setup_logging,
    signature_defaults,
    usage_error,
    use_threads,
)


def library_defaults() -> dict[str, Any]:
    """The keyword defaults of :func:`memtsm.extract.external.import_features`."""
    from memtsm.extract.external import import_features

    defaults = signature_defaults(import_features)
    return {name: defaults[name] for name in ("normalize", "clip_len", "feature_name", "crops")}


def library_choices() -> dict[str, tuple[str, ...]]:
    """``FEATURE_FORMATS`` and ``NORMALIZE_CHOICES`` of :mod:`memtsm.extract.external`."""
    from memtsm.extract.external import FEATURE_FORMATS, NORMALIZE_CHOICES

    return {"fmt": FEATURE_FORMATS, "normalize": NORMALIZE_CHOICES}


Command = command_class(library_defaults, library_choices)


def import_features(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", help="Feature files or folders of them (searched recursively).",
        show_default=False)],
    out: StoreOut,
    fmt: Annotated[str, typer.Option("--format", help="Input file format.")],
    frame_counts: FrameCounts = None,
    normalize: Annotated[Optional[str], typer.Option(
        help="Per-segment scaling (l2: divide each segment by its norm).")] = None,
    labels: Labels = None,
    clip_len: Annotated[Optional[int], typer.Option(
        help="Frames per clip of the original extractor.")] = None,
    feature_name: Annotated[Optional[str], typer.Option(
        help="What the features are (c3d, i3d, ...): stores of one name can be trained and "
        "evaluated together.")] = None,
    crops: Annotated[Optional[str], typer.Option(
        metavar="mean|each|K", help="Crops of rtfm / crop-files features: their mean, every "
        "crop as its own video (<id>__K), or crop K only.")] = None,
    list_file: Annotated[Optional[Path], typer.Option(
        "--list", metavar="FILE", help="Published list (.list paths, or VadCLIP path,label CSV) "
        "naming the videos to import, matched by file name; its labels are used.")] = None,
    audio: Annotated[Optional[list[Path]], typer.Option(
        metavar="DIR", help="<Name>__vggish.npy audio features (XD-Violence) to concatenate to "
        "every row; repeat for several folders.")] = None,
    strip_id_suffix: Annotated[Optional[str], typer.Option(
        metavar="TEXT", help="Ending dropped from video ids (default: _i3d for rtfm, none "
        "otherwise; __vggish to import audio files alone).")] = None,
    threads: Threads = None,
) -> None:
    """Bring pre-extracted features (Sultani txt, CSV, NumPy, RTFM, per-crop files) into a store."""
    setup_logging(False)
    use_threads(threads)
    from memtsm.extract.external import import_features as run_import
    from memtsm.extract.store import StoreError

    try:
        summary = run_import(inputs, out, fmt, frame_counts=frame_counts, normalize=normalize,
                             labels_csv=labels, clip_len=clip_len, feature_name=feature_name,
                             crops=crops, list_file=list_file, audio_inputs=audio or (),
                             strip_id_suffix=strip_id_suffix)
    except (FileNotFoundError, ValueError, StoreError) as exc:
        raise usage_error(str(exc)) from None
    typer.echo(f"imported {len(summary.imported)} videos, skipped {len(summary.skipped)} already "
               f"stored, failed {len(summary.failures)} -> {out}", err=True)
    if summary.unlisted:
        typer.echo(f"left out {len(summary.unlisted)} videos that {list_file} does not name",
                   err=True)
    for failure in summary.failures:
        typer.echo(f"  failed: {failure.source}: {failure.error}", err=True)
    raise typer.Exit(EXIT_FAILURES if summary.failures else EXIT_OK)
