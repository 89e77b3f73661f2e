"""The exported XFeat graph run by OpenVINO on the CPU: fp32, bf16, or its int8 quantisation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from memtsm.extract.engines.base import EngineError

logger = logging.getLogger(__name__)
#: CPU flags (Linux ``/proc/cpuinfo``) of the instructions that make int8 convolutions fast.
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_instructions(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str] | None:
    """The fast-int8 instructions of this CPU (:data:`INT8_FLAGS`), ``None`` if unknown."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags = {word for line in text.splitlines() if line.startswith("flags")
             for word in line.split(":", 1)[-1].split()}
    return [flag for flag in INT8_FLAGS if flag in flags]


class OpenVINOEngine:
    """OpenVINO, compiled once with dynamic shapes, at an explicit inference precision.

    The precision hint is always given: on CPUs with AMX or AVX-512 BF16, OpenVINO's default
    would be bf16, which changes the features (3 % of their range, measured) and so their
    identity. ``bf16`` is refused on CPUs without BF16 instructions (OpenVINO would silently run
    fp32 there, and the features would be labelled with the wrong precision).

    ``int8``: ``graph`` is the NNCF-quantised IR (:mod:`memtsm.extract.engines.quantize`); its
    quantised layers run in int8 on every x86 CPU (with VNNI/AMX fast, without it slower, which
    is logged) and the rest at the fp32 hint, so the features do not depend on BF16 hardware.
    The quantised model is the same file everywhere; whether int8 kernels of other instruction
    sets (AVX2 without VNNI) give bit-identical descriptors has not been measured.

    The model is compiled for throughput: OpenVINO picks a number of CPU streams for ``threads``
    (2 on the 2-core machine), and a batch is split across that many infer requests run
    together. Measured on the 2-core machine at batch 16 (BENCHMARKS.md), this is 1.09x the
    single-request rate at fp32 and 1.21x at int8 on idle cores, 1.2-1.35x when another process
    holds a core. With one thread there is one stream and one request.
    """

    name = "openvino"

    def __init__(self, graph: Path, threads: int, precision: str = "fp32") -> None:
        import openvino

        core = openvino.Core()
        if precision == "bf16" and "BF16" not in core.get_property(
                "CPU", "OPTIMIZATION_CAPABILITIES"):
            raise EngineError("--precision bf16: this CPU has no BF16 instructions for OpenVINO")
        if precision == "int8":
            self._check_int8(core)
        hint = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}[precision]
        try:
            self.model = core.compile_model(
                str(graph), "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                    "INFERENCE_NUM_THREADS": threads,
                                    "PERFORMANCE_HINT": "THROUGHPUT"})
            streams = max(1, int(self.model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own exception types
            raise EngineError(f"OpenVINO cannot compile {graph}: {exc}") from exc
        self.requests = [self.model.create_infer_request() for _ in range(streams)]
        self.version = openvino.__version__
        self.precision = precision

    @staticmethod
    def _check_int8(core) -> None:
        if "INT8" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise EngineError("--precision int8: OpenVINO cannot run int8 on this CPU")
        fast = int8_instructions()
        if fast == []:
            logger.warning("--precision int8: this CPU has no VNNI/AMX-INT8 instructions; "
                           "OpenVINO runs int8 anyway, but slower (fp32 may be as fast)")
        elif fast:
            logger.info("int8 on this CPU with %s", "/".join(fast))

    def descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 1, H, W]`` -> ``[N, 64, H/8, W/8]`` (see :class:`XFeatEngine`).

        The batch is split into up to ``len(self.requests)`` parts inferred concurrently.
        """
        parts = images.contiguous().numpy()
        chunks = _split(parts, min(len(self.requests), len(parts)))
        running = list(zip(self.requests, chunks))
        for request, chunk in running:
            request.start_async({0: chunk})
        outputs = []
        for request, _ in running:
            request.wait()
            # the request owns the output buffer; copy before the next call overwrites it
            outputs.append(request.get_output_tensor(0).data.copy())
        return torch.from_numpy(outputs[0] if len(outputs) == 1 else np.concatenate(outputs))


def _split(batch: np.ndarray, parts: int) -> list[np.ndarray]:
    """``batch`` cut into ``parts >= 1`` contiguous, nearly equal pieces along its first axis."""
    if parts <= 1:
        return [batch]
    return [np.ascontiguousarray(piece) for piece in np.array_split(batch, parts)]
