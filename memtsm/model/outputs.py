"""The common output type of every segment scorer."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class ScorerOutput(NamedTuple):
    """What a scorer returns for a batch ``[B, T, D]`` of segment features.

    Values at padded steps (mask False) are unspecified and must be ignored via the mask.
    :class:`memtsm.model.MILScorer` has no memory: its ``readout`` and ``recon_error`` are zeros
    and its ``attention`` is an empty ``[B, T, 0]`` tensor (zero memory slots), so code written for
    MemTSM runs on it unchanged (the memory loss terms are then exactly 0).

    Attributes:
        scores: ``[B, T]`` per-segment anomaly probabilities in ``(0, 1)``.
        logits: ``[B, T]`` pre-sigmoid scores.
        readout: ``[B, T, C]`` memory read-out.
        recon_error: ``[B, T]`` memory reconstruction error (0 = perfectly explained).
        attention: ``[B, T, M]`` memory addressing weights.
        embedding: ``[B, T, C]`` per-segment embedding the memory was read with.
    """

    scores: Tensor
    logits: Tensor
    readout: Tensor
    recon_error: Tensor
    attention: Tensor
    embedding: Tensor

    @classmethod
    def without_memory(cls, logits: Tensor, embedding: Tensor) -> ScorerOutput:
        """The output of a scorer without memory: zero read-out and error, zero slots.

        Shape:
            - logits: ``[B, T]``; embedding: ``[B, T, C]``
        """
        batch, time = logits.shape
        return cls(scores=logits.sigmoid(), logits=logits, readout=torch.zeros_like(embedding),
                   recon_error=logits.new_zeros(batch, time),
                   attention=logits.new_zeros(batch, time, 0), embedding=embedding)
