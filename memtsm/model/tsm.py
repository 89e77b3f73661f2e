"""Temporal Shift Module (Lin, Gan and Han, "TSM", ICCV 2019) on segment sequences.

The shift is the bidirectional, zero-filled variant of the paper, applied to a ``[B, T, C]``
sequence of per-segment features:

* channels ``[0, C // n_div)`` move one step *back* in time ("shift left"):
  ``out[:, t] = x[:, t + 1]`` and the last step is zero;
* channels ``[C // n_div, 2 * (C // n_div))`` move one step *forward* ("shift right"):
  ``out[:, t] = x[:, t - 1]`` and the first step is zero;
* the remaining channels are copied unchanged.

It has no parameters and costs no multiply-adds, yet lets a following per-step operation mix
information from ``t - 1``, ``t`` and ``t + 1``; its temporal reach is exactly one step each way.

Padding: with a mask ``[B, T]`` (True = valid), padded steps are zeroed *before* shifting, so the
last valid step of a short video sees zeros -- exactly as at the end of an unpadded video -- and
never the content of padding; the output is zeroed at padded steps as well, so the shifted padded
video equals the shifted unpadded video followed by zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._checks import check_mask, check_sequence
from .config import DEFAULT_N_DIV

#: How many steps each shifted channel group moves (the TSM paper shifts by one).
SHIFT_STEPS = 1


def _check_shift_args(x: Tensor, n_div: int, mask: Tensor | None) -> None:
    check_sequence(x, "x")
    if isinstance(n_div, bool) or not isinstance(n_div, int) or n_div < 2:
        raise ValueError(f"n_div must be an int >= 2, got {n_div!r}")
    channels = x.shape[2]
    if channels < n_div:
        raise ValueError(
            f"temporal shift needs at least n_div={n_div} channels (C // n_div >= 1), "
            f"got C={channels}"
        )
    check_mask(mask, x.shape[0], x.shape[1])


def temporal_shift(x: Tensor, n_div: int = DEFAULT_N_DIV, mask: Tensor | None = None,
                   causal: bool = False) -> Tensor:
    """Bidirectional zero-filled temporal shift of ``C // n_div`` channels each way.

    ``causal``: both groups look back instead, ``out[t] = x[t - 1]`` and ``out[t] = x[t - 2]``
    (no step sees the future; reach 2 steps into the past).

    Args:
        x: Segment features.
        n_div: Shift fraction; ``C // n_div`` channels move back and as many move forward.
        mask: Optional padding mask, True = valid step. Padded steps are zeroed before the shift
            and in the output.
        causal: Shift both groups from the past (see above).

    Returns:
        The shifted sequence, same shape and dtype as ``x``.

    Shape:
        - x: ``[B, T, C]``
        - mask: ``[B, T]`` (bool)
        - output: ``[B, T, C]``

    Raises:
        ValueError: If ``x`` is not ``[B, T, C]``, ``n_div < 2``, ``C < n_div`` or the mask
            does not match.
    """
    _check_shift_args(x, n_div, mask)
    keep = None if mask is None else mask.unsqueeze(-1).to(x.dtype)
    if keep is not None:
        x = x * keep
    fold = x.shape[2] // n_div
    s = SHIFT_STEPS
    # F.pad pads the last dims first: (C_left, C_right, T_left, T_right).
    if causal:
        back = F.pad(x[:, :, :fold], (0, 0, 2 * s, 0))[:, : x.shape[1]]  # out[t] = x[t - 2]
    else:
        back = F.pad(x[:, s:, :fold], (0, 0, 0, s))  # out[t] = x[t + 1]
    forward = F.pad(x[:, :-s, fold : 2 * fold], (0, 0, s, 0))  # out[t] = x[t - 1]
    # T == 1: the slices above are empty and padding alone gives the zero fill.
    out = torch.cat([back, forward, x[:, :, 2 * fold :]], dim=2)
    if keep is not None:
        out = out * keep
    return out


class TemporalShift(nn.Module):
    """Parameter-free module wrapper of :func:`temporal_shift`.

    Args:
        n_div: Shift fraction; ``C // n_div`` channels move each way.
    """

    def __init__(self, n_div: int = DEFAULT_N_DIV, causal: bool = False) -> None:
        super().__init__()
        if isinstance(n_div, bool) or not isinstance(n_div, int) or n_div < 2:
            raise ValueError(f"n_div must be an int >= 2, got {n_div!r}")
        self.n_div = n_div
        self.causal = causal
        #: Steps on either side that influence one output step (past only when causal).
        self.receptive_field = 2 * SHIFT_STEPS if causal else SHIFT_STEPS

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Shift ``x`` in time (see :func:`temporal_shift`).

        Shape:
            - x: ``[B, T, C]``
            - mask: ``[B, T]`` (bool, True = valid)
            - output: ``[B, T, C]``
        """
        return temporal_shift(x, self.n_div, mask, self.causal)

    def extra_repr(self) -> str:
        """Return the shift fraction for ``repr``."""
        return f"n_div={self.n_div}"
