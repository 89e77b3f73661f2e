"""Device choice shared by extraction, training and scoring."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU (logged); ``cuda`` without a GPU is an error.

    Raises:
        RuntimeError: CUDA requested but not available.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        logger.info("device auto -> %s", device)
        return device
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name} requested but CUDA is not available")
    return device
