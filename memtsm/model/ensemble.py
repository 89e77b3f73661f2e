"""A seed ensemble: several independently trained scorers whose segment scores are averaged.

``memtsm train --ensemble N`` trains N members of one architecture (same data, same validation
videos, different initialisation, batch order and dropout) and saves them as one scorer of this
kind, which every scoring path (``evaluate``, ``score``, ``watch``, ``export``) uses like a single
model. For segment features ``[B, T, D]``::

    scores    = mean_k members[k](features).scores              [B, T]
    logits    = logit(scores)
    recon_error, readout, embedding: the members' mean
    attention = the members' attention concatenated over slots  [B, T, sum_k M_k]

Averaging probabilities (not logits) keeps one over-confident member from dominating.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .outputs import ScorerOutput

#: Probabilities are clamped this far from 0 and 1 before ``logit`` (finite logits).
_EPS = 1e-6


class ScorerEnsemble(nn.Module):
    """Mean of the segment scores of ``members`` (module docstring).

    Args:
        members: Two or more scorers of one architecture (:func:`memtsm.model.build_scorer`
            of a config with ``members > 1`` builds them). Never trained as a whole: each member
            is trained on its own, so it has no ``regularizer``.

    Raises:
        ValueError: Fewer than two members.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def receptive_field(self) -> int | None:
        """The widest member's reach in segments (``None`` if any member sees the whole video)."""
        reaches = [getattr(m, "receptive_field", 0) for m in self.members]
        return None if any(r is None for r in reaches) else max(int(r) for r in reaches)

    @property
    def lookahead(self) -> int | None:
        """Future segments that influence a score: the largest of the members'."""
        reaches = [getattr(m, "lookahead", getattr(m, "receptive_field", 0))
                   for m in self.members]
        return None if any(r is None for r in reaches) else max(int(r) for r in reaches)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> ScorerOutput:
        """Score every segment with every member and average.

        Shape:
            - features: ``[B, T, D]``; mask: ``[B, T]`` (bool)
            - scores, logits, recon_error: ``[B, T]``
            - readout, embedding: ``[B, T, C]``
            - attention: ``[B, T, sum of the members' slots]``
        """
        outputs = [member(features, mask) for member in self.members]
        scores = torch.stack([o.scores for o in outputs]).mean(dim=0)
        logits = torch.logit(scores.clamp(_EPS, 1 - _EPS))
        return ScorerOutput(
            scores=scores, logits=logits,
            readout=torch.stack([o.readout for o in outputs]).mean(dim=0),
            recon_error=torch.stack([o.recon_error for o in outputs]).mean(dim=0),
            attention=torch.cat([o.attention for o in outputs], dim=-1),
            embedding=torch.stack([o.embedding for o in outputs]).mean(dim=0))

