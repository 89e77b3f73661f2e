"""Shape validation shared by the model modules (readable ``ValueError`` messages)."""

from __future__ import annotations

import torch
from torch import Tensor


def check_sequence(x: Tensor, name: str = "features", channels: int | None = None) -> None:
    """Validate a ``[B, T, C]`` floating-point sequence.

    Args:
        x: Tensor to check.
        name: Name used in error messages.
        channels: Expected ``C``; not checked when ``None``.

    Raises:
        ValueError: If ``x`` is not a non-empty 3-D floating-point tensor with ``channels`` columns.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(
            f"{name} must have shape [B, T, C] (rank 3), got rank {x.dim()} {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have B >= 1 and T >= 1, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[2] != channels:
        raise ValueError(f"{name} must have {channels} channels (last dim), got {x.shape[2]}")


def check_mask(mask: Tensor | None, batch: int, time: int, name: str = "mask") -> None:
    """Validate an optional boolean padding mask ``[B, T]`` (True = valid segment).

    Raises:
        ValueError: If ``mask`` is not ``None`` and not a bool tensor of shape ``[batch, time]``.
    """
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor (True = valid), got {mask.dtype}")
    if tuple(mask.shape) != (batch, time):
        raise ValueError(f"{name} must have shape [B, T] = {[batch, time]}, got {list(mask.shape)}")


def check_scores(scores: Tensor, name: str = "scores") -> None:
    """Validate a ``[B, T]`` floating-point tensor of per-segment values.

    Raises:
        ValueError: If ``scores`` is not a non-empty 2-D floating-point tensor.
    """
    if not isinstance(scores, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 2:
        raise ValueError(
            f"{name} must have shape [B, T] (rank 2), got rank {scores.dim()} {tuple(scores.shape)}"
        )
    if not torch.is_floating_point(scores):
        raise ValueError(f"{name} must be a floating-point tensor, got {scores.dtype}")
    if scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"{name} must have B >= 1 and T >= 1, got shape {tuple(scores.shape)}")


def check_labels(labels: Tensor, batch: int, name: str = "labels") -> None:
    """Validate video labels ``[B]`` (0 = normal, 1 = anomalous).

    Raises:
        ValueError: If ``labels`` is not a 1-D tensor of length ``batch``.
    """
    if not isinstance(labels, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != batch:
        raise ValueError(f"{name} must have shape [B] = [{batch}], got {list(labels.shape)}")
