"""What a person looks at: a score plot and a self-contained HTML report of one scored video."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from memtsm.runtime.files import atomic_path, atomic_write_text
from memtsm.score.video import VideoScoreReport

#: Segments shown as thumbnails in the report (most anomalous first).
THUMBNAILS = 6
THUMBNAIL_WIDTH = 240
#: The shading of flagged segments, and its legend entry (the model's call, not ground truth).
FLAGGED_COLOUR, FLAGGED_ALPHA = "tab:red", 0.15
FLAGGED_LABEL = "flagged by the model (score >= threshold)"


def _figure(report: VideoScoreReport):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    starts = np.array([s.start_time if report.fps else s.start_frame for s in report.segments])
    ends = np.array([s.end_time if report.fps else s.end_frame for s in report.segments])
    scores = np.array([s.score for s in report.segments])
    recon = np.array([s.recon_error for s in report.segments])
    centres = (starts + ends) / 2
    figure = Figure(figsize=(10, 3.6), dpi=110)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    for segment, start, end in zip(report.segments, starts, ends):
        if segment.flagged:
            axis.axvspan(start, end, color=FLAGGED_COLOUR, alpha=FLAGGED_ALPHA, linewidth=0)
    axis.step(np.append(starts, ends[-1]), np.append(scores, scores[-1]), where="post",
              color="tab:red", label="anomaly score")
    axis.axhline(report.val_video_threshold, color="k", linestyle="--", linewidth=1,
                 label=f"video-level validation threshold {report.val_video_threshold:.3f}")
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("time (s)" if report.fps else "frame")
    axis.set_ylabel("score")
    twin = axis.twinx()
    twin.plot(centres, recon, color="tab:blue", alpha=0.7, label="memory reconstruction error")
    twin.set_ylabel("reconstruction error")
    handles, labels = axis.get_legend_handles_labels()
    more_handles, more_labels = twin.get_legend_handles_labels()
    if any(s.flagged for s in report.segments):
        handles.append(Patch(color=FLAGGED_COLOUR, alpha=FLAGGED_ALPHA, linewidth=0))
        labels.append(FLAGGED_LABEL)
    axis.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize=8)
    axis.set_title(f"{report.video}: {sum(s.flagged for s in report.segments)} of "
                   f"{len(report.segments)} segments flagged", fontsize=10)
    figure.tight_layout()
    return figure


def plot_scores(report: VideoScoreReport, path: Path | str) -> Path:
    """Score and reconstruction error over time, threshold line, flagged segments shaded."""
    path = Path(path)
    with atomic_path(path) as tmp:
        _figure(report).savefig(tmp)
    return path


def _png_base64(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def segment_thumbnails(report: VideoScoreReport, count: int = THUMBNAILS
                       ) -> list[tuple[int, np.ndarray]]:
    """The middle frame (RGB) of the ``count`` highest-scoring segments, taken from the video."""
    from PIL import Image

    from memtsm.extract.decode import open_video

    top = sorted(report.segments, key=lambda s: -s.score)[:count]
    wanted = {(s.start_frame + s.end_frame - 1) // 2: s.index for s in top}
    frames: dict[int, np.ndarray] = {}
    with open_video(report.source) as decoder:
        for batch in decoder.batches(16, want=lambda i: i in wanted):
            for index, frame in zip(batch.indices.tolist(), batch.frames.numpy()):
                image = Image.fromarray(frame)
                height = round(image.height * THUMBNAIL_WIDTH / image.width)
                frames[wanted[index]] = np.asarray(image.resize((THUMBNAIL_WIDTH, height)))
            if len(frames) == len(wanted):
                break
    return [(s.index, frames[s.index]) for s in top if s.index in frames]


def write_html_report(report: VideoScoreReport, path: Path | str) -> Path:
    """One self-contained HTML file (images inlined, no network needed to open it)."""
    path = Path(path)
    buffer = io.BytesIO()
    _figure(report).savefig(buffer, format="png")
    plot = base64.b64encode(buffer.getvalue()).decode("ascii")
    by_index = {s.index: s for s in report.segments}
    cards = []
    for index, image in segment_thumbnails(report):
        segment = by_index[index]
        cards.append(
            f'<figure><img src="data:image/png;base64,{_png_base64(image)}" '
            f'alt="segment {index}"><figcaption>segment {index}: frames {segment.frames_text}, '
            f"{segment.time_text}, score "
            f"{segment.score:.3f}{' (flagged)' if segment.flagged else ''}</figcaption></figure>")
    flagged = [s for s in report.segments if s.flagged]
    rows = "".join(
        f"<tr><td>{s.index}</td><td>{s.frames_text}</td>"
        f"<td>{s.time_text}</td><td>{s.score:.3f}</td>"
        f"<td>{s.recon_error:.3f}</td></tr>" for s in flagged)
    title = html.escape(report.video)
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>memtsm: {title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
figure{{display:inline-block;margin:0 .6em .6em 0;width:{THUMBNAIL_WIDTH}px;font-size:.8em}}
img{{max-width:100%}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;
padding:.2em .5em}}</style></head><body>
<h1>Anomaly scores: {title}</h1>
<p>Source: <code>{html.escape(report.source)}</code><br>{report.width}x{report.height},
{report.num_frames} frames at {report.fps:.2f} fps; {len(report.segments)} segments;
video-level validation threshold {report.val_video_threshold:.3f} (chosen on the validation
videos when the model was trained);
highest score {report.max_score:.3f}; {len(flagged)} segments flagged (score at or above
the threshold: the model's call, not ground truth). Frame and time ranges are
[start, end): the end is not included.</p>
<img src="data:image/png;base64,{plot}" alt="score plot">
<h2>Most anomalous segments</h2>
{''.join(cards)}
<h2>Flagged segments</h2>
<table><tr><th>segment</th><th>frames</th><th>time</th><th>score</th>
<th>reconstruction error</th></tr>{rows}</table>
</body></html>
"""
    atomic_write_text(path, document)
    return path
