"""Per-segment anomaly scorers (MemTSM and the MIL-MLP and RTFM baselines) and their losses.

Depends only on ``torch`` and the standard library. Inputs are segment features ``[B, T, D]``
with an optional padding mask ``[B, T]`` (True = valid); every scorer returns a
:class:`ScorerOutput` with per-segment scores ``[B, T]`` in ``(0, 1)``.
"""

from __future__ import annotations

from .config import LossConfig, ScorerConfig
from .ensemble import ScorerEnsemble
from .factory import build_scorer
from .losses import (
    LossTerms,
    focal_loss,
    memory_reconstruction_loss,
    memtsm_loss,
    mil_loss,
    mil_ranking_hinge,
    rtfm_loss,
    sparsity_loss,
    sultani_ranking_loss,
    temporal_smoothness_loss,
    topk_video_score,
)
from .memory import MemoryBank, MemoryRead
from .mil import MILScorer
from .outputs import ScorerOutput
from .rtfm import RTFMScorer
from .scorer import MemTSMScorer, TemporalBlock
from .se import SqueezeExcite, masked_global_average, masked_moving_average
from .tsm import TemporalShift, temporal_shift

__all__ = [
    "LossConfig",
    "LossTerms",
    "MILScorer",
    "MemTSMScorer",
    "MemoryBank",
    "MemoryRead",
    "RTFMScorer",
    "ScorerConfig",
    "ScorerEnsemble",
    "ScorerOutput",
    "SqueezeExcite",
    "TemporalBlock",
    "TemporalShift",
    "build_scorer",
    "focal_loss",
    "masked_global_average",
    "masked_moving_average",
    "memory_reconstruction_loss",
    "memtsm_loss",
    "mil_loss",
    "mil_ranking_hinge",
    "rtfm_loss",
    "sparsity_loss",
    "sultani_ranking_loss",
    "temporal_shift",
    "temporal_smoothness_loss",
    "topk_video_score",
]
