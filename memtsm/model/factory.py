"""Build a scorer from its :class:`ScorerConfig`."""

from __future__ import annotations

import dataclasses

from torch import nn

from .config import ScorerConfig
from .ensemble import ScorerEnsemble
from .mil import MILScorer
from .rtfm import RTFMScorer
from .scorer import MemTSMScorer


def build_scorer(config: ScorerConfig) -> nn.Module:
    """Instantiate the scorer named by ``config.kind``.

    Args:
        config: Architecture; ``"memtsm"`` gives :class:`MemTSMScorer`, ``"mil-mlp"`` gives
            :class:`MILScorer`, ``"rtfm"`` gives :class:`RTFMScorer`; with ``members > 1``, a
            :class:`ScorerEnsemble` of that many of them.

    Returns:
        A freshly initialised module (parameters drawn from torch's global RNG).

    Raises:
        ValueError: If ``config`` is not a :class:`ScorerConfig`.
    """
    if not isinstance(config, ScorerConfig):
        raise ValueError(f"config must be a ScorerConfig, got {type(config).__name__}")
    if config.members > 1:
        single = dataclasses.replace(config, members=1)
        return ScorerEnsemble([build_scorer(single) for _ in range(config.members)])
    if config.kind == "memtsm":
        return MemTSMScorer(config)
    if config.kind == "rtfm":
        return RTFMScorer(config)
    return MILScorer(config)  # kind is validated by ScorerConfig.__post_init__
