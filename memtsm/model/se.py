"""Squeeze-and-excitation over channels for segment sequences (Hu et al., CVPR 2018).

Classic SE squeezes a feature map to one descriptor per channel by a global average, passes it
through a bottleneck MLP (``C -> C // r -> C``, ReLU, sigmoid) and rescales the channels by the
result. On a ``[B, T, C]`` sequence the squeeze is over *time*.

Two squeeze modes:

* ``window=None`` -- global: the masked mean over all valid steps of the video. Every output step
  then depends on the whole video, so a model using it has an unbounded temporal receptive field
  and cannot be evaluated on windows of a long video without changing its scores.
* ``window=w`` (odd) -- local: a centred masked moving average over the ``w`` steps
  ``[t - w // 2, t + w // 2]``, counting only valid steps inside the video. The gate of step ``t``
  depends on ``w // 2`` steps on each side only (:attr:`SqueezeExcite.receptive_field`), which is
  what makes windowed (streaming) scoring exact in :class:`memtsm.model.MemTSMScorer`.

Padded steps (mask False) never contribute to a squeeze; their own outputs are unspecified.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._checks import check_mask, check_sequence
from .config import DEFAULT_SE_REDUCTION, DEFAULT_SE_WINDOW


def masked_moving_average(x: Tensor, window: int, mask: Tensor | None = None,
                          causal: bool = False) -> Tensor:
    """Centred moving average over time that ignores padded steps and the outside of the video.

    ``out[b, t] = mean(x[b, s] for |s - t| <= window // 2 if 0 <= s < T and mask[b, s])``; a step
    whose window holds no valid step gets zeros. ``causal``: over ``t - window + 1 <= s <= t``.

    Args:
        x: Sequence to average.
        window: Odd window width in steps.
        mask: Optional padding mask, True = valid.
        causal: Average the ``window`` steps up to ``t`` (none after it).

    Returns:
        The local means, same shape as ``x``.

    Shape:
        - x: ``[B, T, C]``
        - mask: ``[B, T]`` (bool)
        - output: ``[B, T, C]``

    Raises:
        ValueError: On a wrong rank, an even or non-positive window, or a mismatched mask.
    """
    check_sequence(x, "x")
    check_mask(mask, x.shape[0], x.shape[1])
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd int >= 1, got {window!r}")
    if mask is None:
        valid = x.new_ones(x.shape[0], 1, x.shape[1])
    else:
        valid = mask.to(x.dtype).unsqueeze(1)  # [B, 1, T]
    seq = x.transpose(1, 2) * valid  # [B, C, T]
    # Zero padding divides by the full window everywhere; the ratio of the two averages is then
    # (sum of valid values) / (number of valid steps), independent of the divisor.
    left, right = (window - 1, 0) if causal else (window // 2, window // 2)
    sums = F.avg_pool1d(F.pad(seq, (left, right)), window, stride=1)
    counts = F.avg_pool1d(F.pad(valid, (left, right)), window, stride=1)
    mean = torch.where(counts > 0, sums / counts.clamp_min(torch.finfo(x.dtype).tiny), 0.0)
    return mean.transpose(1, 2)


def masked_global_average(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over the valid steps of each video (zeros for a video without valid steps).

    Shape:
        - x: ``[B, T, C]``
        - mask: ``[B, T]`` (bool)
        - output: ``[B, 1, C]``
    """
    check_sequence(x, "x")
    check_mask(mask, x.shape[0], x.shape[1])
    if mask is None:
        return x.mean(dim=1, keepdim=True)
    valid = mask.to(x.dtype).unsqueeze(-1)  # [B, T, 1]
    count = valid.sum(dim=1, keepdim=True).clamp_min(1.0)
    return (x * valid).sum(dim=1, keepdim=True) / count


class SqueezeExcite(nn.Module):
    """Channel gating from a temporal squeeze: ``y = x * sigmoid(W2 relu(W1 squeeze(x)))``.

    Args:
        channels: C, width of the input.
        reduction: Bottleneck ratio ``r`` of the excitation MLP (hidden width ``max(1, C // r)``).
        window: Odd width of the local temporal squeeze, or ``None`` for the classic global
            squeeze over the whole (valid part of the) video.
        causal: Squeeze over the ``window`` steps up to ``t`` instead of around it.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = DEFAULT_SE_REDUCTION,
        window: int | None = DEFAULT_SE_WINDOW,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"reduction must be an int >= 1, got {reduction!r}")
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0
        ):
            raise ValueError(f"window must be an odd int >= 1 or None, got {window!r}")
        self.channels = channels
        self.window = window
        self.causal = causal
        hidden = max(1, channels // reduction)
        self.excite = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    @property
    def receptive_field(self) -> float:
        """Steps on either side of ``t`` that influence output ``t`` (``inf`` if global)."""
        if self.window is None:
            return math.inf
        return self.window - 1 if self.causal else self.window // 2

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Rescale the channels of every step by a gate computed from its temporal context.

        Args:
            x: Sequence to gate.
            mask: Optional padding mask, True = valid; padded steps are left out of the squeeze.

        Returns:
            The gated sequence.

        Shape:
            - x: ``[B, T, C]``
            - mask: ``[B, T]`` (bool)
            - output: ``[B, T, C]``

        Raises:
            ValueError: If ``x`` is not ``[B, T, channels]`` or the mask does not match.
        """
        check_sequence(x, "x", self.channels)
        if self.window is None:
            squeezed = masked_global_average(x, mask)  # [B, 1, C], broadcast over T
        else:
            squeezed = masked_moving_average(x, self.window, mask, self.causal)  # [B, T, C]
        return x * self.excite(squeezed)

    def extra_repr(self) -> str:
        """Return the squeeze window for ``repr``."""
        return f"window={self.window}"
