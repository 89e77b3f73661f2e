"""Pure presentation of results on the terminal: number formatting and the segment table."""

from __future__ import annotations

from typing import Any


def number(value: float | None, digits: int = 4) -> str:
    """``0.8123`` or ``n/a`` for a metric that is undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def segment_table(report: Any) -> Any:
    """A Rich table of a :class:`memtsm.score.video.VideoScoreReport`: one row per segment."""
    from rich.table import Table

    table = Table(title=f"{report.video} ({report.num_frames} frames, {report.fps:.2f} fps, "
                  f"video-level validation threshold {report.val_video_threshold:.3f})",
                  caption="ranges are [start, end): the end frame is not included")
    for column in ("segment", "time", "frames", "score", "recon error", "flagged"):
        table.add_column(column, justify="right")
    for s in report.segments:
        table.add_row(str(s.index), s.time_text, s.frames_text, f"{s.score:.3f}",
                      f"{s.recon_error:.3f}", "[red]yes[/red]" if s.flagged else "")
    return table


def print_segments(report: Any) -> None:
    """Print :func:`segment_table` on stdout."""
    from rich.console import Console

    Console().print(segment_table(report))
