"""memtsm: raw surveillance video to per-segment anomaly scores.

Importing this package is cheap: torch, kornia, h5py and DALI are imported only by the
sub-modules that need them (``memtsm.extract``, ``memtsm.model``, ``memtsm.pipeline``).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "score_video"]


def __getattr__(name: str):
    # Lazy re-export so `import memtsm` does not pull torch in.
    if name == "score_video":
        from memtsm.score.video import score_video

        return score_video
    raise AttributeError(f"module 'memtsm' has no attribute {name!r}")
