"""Scores from a trained checkpoint: of stored features, of raw videos, and their reports.

Public API::

    from memtsm.score.video import score_video
    report = score_video("video.mp4", "runs/seed0/best.pt")   # per-segment scores
"""
