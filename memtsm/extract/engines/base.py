"""The interface every XFeat inference engine implements."""

from __future__ import annotations

from typing import Protocol

import torch

from memtsm.extract.config import ENGINE_NAMES

__all__ = ["ENGINE_NAMES", "EngineError", "XFeatEngine"]


class EngineError(RuntimeError):
    """An engine that cannot run here, or whose graph could not be built (message says why)."""


class XFeatEngine(Protocol):
    """XFeat's dense descriptor head, however it is executed."""

    name: str
    """``torch`` | ``openvino`` | ``onnxruntime``."""
    version: str
    """The engine package's version (recorded in provenance)."""
    precision: str
    """``fp32`` | ``bf16`` | ``int8``: the arithmetic of the network (bf16 and int8 give other
    features)."""

    def descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) dense descriptors of a batch of grey images.

        Args:
            images: ``float32 [N, 1, H, W]`` in ``[0, 1]``, ``H`` and ``W`` multiples of 32, on
                the engine's device (the CPU for the ONNX engines).

        Returns:
            ``float32 [N, 64, H / 8, W / 8]`` on the same device.
        """
        ...
