"""``memtsm score``: flags -> :func:`memtsm.score.video.score_videos`, then its writers.

Defaults are that function's keyword defaults (``--fps``: :attr:`ExtractConfig.frames_fps`, the
frame rate every command assumes for frame folders); outputs are written by
:mod:`memtsm.score.video` (JSON, CSV) and :mod:`memtsm.score.report` (plot, HTML).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memtsm.cli.options import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Checkpoint,
    Decoder,
    Device,
    Engine,
    FramesFps,
    Quiet,
    Threads,
    XFeatWeights,
    command_class,
    progress,
    setup_logging,
    signature_defaults,
    usage_error,
    use_threads,
)
from memtsm.cli.render import print_segments


def library_defaults() -> dict[str, Any]:
    """The keyword defaults of :func:`score_videos`; ``--fps`` from :class:`ExtractConfig`."""
    from memtsm.extract.config import ExtractConfig
    from memtsm.score.video import score_videos

    defaults = signature_defaults(score_videos)
    return {"decoder": defaults["decoder"], "device": defaults["device"],
            "engine": defaults["engine"],
            "fps": ExtractConfig().frames_fps}


def library_choices() -> dict[str, tuple[str, ...]]:
    """Decoders (:class:`DecoderBackend`)."""
    from memtsm.extract.config import ENGINE_NAMES, DecoderBackend

    return {"decoder": tuple(b.value for b in DecoderBackend), "engine": ENGINE_NAMES}


Command = command_class(library_defaults, library_choices)


def score(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="VIDEO", help="Video files, folders of videos or folders of frame images.",
        show_default=False)],
    checkpoint: Checkpoint,
    decoder: Decoder = None,
    device: Device = None,
    engine: Engine = None,
    xfeat_weights: XFeatWeights = None,
    fps: FramesFps = None,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", metavar="FILE", help="Per-segment scores as JSON.")] = None,
    csv_out: Annotated[Optional[Path], typer.Option(
        "--csv", metavar="FILE", help="Per-segment scores as CSV.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        metavar="FILE.png", help="PNG of score and reconstruction error over time (one video; "
        "with several, -VIDEO is appended to the name).")] = None,
    report: Annotated[Optional[Path], typer.Option(
        metavar="FILE.html", help="Self-contained HTML report (plot, metadata, thumbnails of "
        "the most anomalous segments).")] = None,
    save_features: Annotated[Optional[Path], typer.Option(
        metavar="DIR", help="Also store the features in this feature store.")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Score raw videos: per-segment anomaly scores and memory reconstruction error."""
    setup_logging(quiet)
    from memtsm.extract.runner import DECODE_THREADS

    use_threads(threads, reserve=DECODE_THREADS)
    from memtsm.extract.store import StoreError
    from memtsm.score.video import score_videos, write_csv, write_json

    reports, failures = [], {}
    try:
        for video_id, result in score_videos(
                inputs, checkpoint, decoder=decoder, device=device,
                xfeat_weights=str(xfeat_weights) if xfeat_weights else None, frames_fps=fps,
                engine=engine, save_features=save_features, progress=progress(quiet)):
            if isinstance(result, str):
                failures[video_id] = result
                continue
            reports.append(result)
            if not quiet:
                print_segments(result)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except StoreError as exc:  # only --save-features writes a store
        raise usage_error(f"--save-features {save_features}: {exc}") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise usage_error(str(exc)) from None
    if json_out:
        write_json(reports, json_out, failures)
    if csv_out:
        write_csv(reports, csv_out)
    if plot or report:
        from memtsm.score.report import plot_scores, write_html_report

        for result in reports:
            if plot:
                plot_scores(result, _per_video_path(plot, result.video, len(reports)))
            if report:
                write_html_report(result, _per_video_path(report, result.video, len(reports)))
    for message in failures.values():
        typer.echo(f"failed: {message}", err=True)
    raise typer.Exit(EXIT_FAILURES if failures else EXIT_OK)


def _per_video_path(path: Path, video_id: str, count: int) -> Path:
    """``path`` for one video; ``plot-Class_Name.png`` for each of several."""
    if count == 1:
        return path
    return path.with_name(f"{path.stem}-{video_id.replace('/', '_')}{path.suffix}")
