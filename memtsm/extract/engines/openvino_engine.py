"""The exported XFeat graph run by OpenVINO on the CPU, fp32."""

from __future__ import annotations

from pathlib import Path

import torch

from memtsm.extract.engines.base import EngineError


class OpenVINOEngine:
    """OpenVINO, compiled once with dynamic shapes, at an explicit inference precision.

    The precision hint is always given: on CPUs with AMX or AVX-512 BF16, OpenVINO's default
    would be bf16, which changes the features (3 % of their range, measured) and so their
    identity. ``bf16`` is refused on CPUs without BF16 instructions (OpenVINO would silently run
    fp32 there, and the features would be labelled with the wrong precision).
    """

    name = "openvino"

    def __init__(self, graph: Path, threads: int, precision: str = "fp32") -> None:
        import openvino

        core = openvino.Core()
        if precision == "bf16" and "BF16" not in core.get_property(
                "CPU", "OPTIMIZATION_CAPABILITIES"):
            raise EngineError("--precision bf16: this CPU has no BF16 instructions for OpenVINO")
        hint = {"fp32": "f32", "bf16": "bf16"}[precision]
        try:
            self.model = core.compile_model(
                str(graph), "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                    "INFERENCE_NUM_THREADS": threads})
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own exception types
            raise EngineError(f"OpenVINO cannot compile {graph}: {exc}") from exc
        self.request = self.model.create_infer_request()
        self.version = openvino.__version__
        self.precision = precision

    def descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 1, H, W]`` -> ``[N, 64, H/8, W/8]`` (see :class:`XFeatEngine`)."""
        result = self.request.infer({0: images.contiguous().numpy()})
        # the request owns the output buffer; copy before the next call overwrites it
        return torch.from_numpy(next(iter(result.values())).copy())
