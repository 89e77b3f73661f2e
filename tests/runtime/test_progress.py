"""The Rich progress bars: totals that a header under-declared grow instead of overflowing."""

from __future__ import annotations

from memtsm.runtime.progress import RichProgress


def test_unit_total_grows_when_more_frames_arrive_than_declared():
    progress = RichProgress("videos")
    progress.start(total_items=2, total_units=100, unit="frames")
    progress.advance(60)
    frames = progress._bar.tasks[1]
    assert (frames.completed, frames.total) == (60, 100)
    progress.advance(70)  # the second video held more frames than its header said
    assert (frames.completed, frames.total) == (130, 130)
    progress.item_done("a", True)
    progress.close()
    assert progress._bar.tasks[0].completed == 1
