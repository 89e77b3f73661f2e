"""Inference engines of the XFeat network: one interface (:class:`XFeatEngine`), three backends.

``torch`` (kornia's model in eager mode, channels-last; CPU and CUDA), ``openvino`` and
``onnxruntime`` (both run the ONNX graph exported once from the same official weights,
:mod:`memtsm.extract.engines.graph`; CPU). All three compute the same fp32 descriptors (they agree
to about 2e-5, tested), so the feature identity does not depend on the engine; the engine used is
recorded in each store's provenance.

``--precision int8`` runs a copy of that graph quantised by NNCF on synthetic calibration frames
(:mod:`memtsm.extract.engines.quantize`) on OpenVINO only: ``auto`` then means OpenVINO, and
torch or ONNX Runtime with int8 is an :class:`EngineError`.

``auto`` picks, by measurement on a 2-core AVX-512 CPU (BENCHMARKS.md), OpenVINO when it is
installed (about 1.9x torch), else ONNX Runtime (about 1.5x), else torch; on CUDA it is torch.
Backends are imported inside :func:`open_engine`, so importing this package imports neither.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch

from memtsm.extract.config import PRECISIONS
from memtsm.extract.engines.base import ENGINE_NAMES, EngineError, XFeatEngine

__all__ = ["ENGINE_NAMES", "EngineError", "XFeatEngine", "engine_available", "open_engine",
           "resolve_engine"]

logger = logging.getLogger(__name__)

#: What ``auto`` tries on the CPU, fastest first (measured; see the module docstring).
CPU_PREFERENCE = ("openvino", "onnxruntime", "torch")
_MODULES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "torch": "torch"}


def engine_available(name: str) -> bool:
    """Whether the engine's package is installed (checked without importing it)."""
    try:
        return importlib.util.find_spec(_MODULES[name]) is not None
    except (ImportError, ValueError):
        return False


def resolve_engine(name: str, device: torch.device) -> str:
    """Turn ``auto`` into an engine for ``device``; check that a named one can run there.

    Raises:
        EngineError: unknown name, an engine that is not installed, or a CPU-only engine asked
            for on a GPU.
    """
    if name not in ENGINE_NAMES:
        raise EngineError(f"--engine must be one of {'|'.join(ENGINE_NAMES)}, got {name!r}")
    if name == "auto":
        if device.type != "cpu":
            return "torch"
        return next(n for n in CPU_PREFERENCE if engine_available(n))
    if not engine_available(name):
        raise EngineError(f"--engine {name}: the {_MODULES[name]!r} package is not installed "
                          f"(pip install {_MODULES[name]})")
    if name != "torch" and device.type != "cpu":
        raise EngineError(f"--engine {name} runs on the CPU only; use --engine torch on {device}")
    return name


def open_engine(name: str, net: torch.nn.Module, weights_sha256: str, device: torch.device,
                threads: int | None = None, cache: Path | None = None,
                precision: str = "fp32") -> XFeatEngine:
    """The engine ``name`` running ``net``'s weights on ``device``.

    ``auto`` tries the installed engines fastest first and falls back (with a warning naming
    the reason) when one fails to build here; a named engine that fails is an error.

    Args:
        name: one of :data:`ENGINE_NAMES`.
        net: kornia's ``XFeatModel`` with the verified weights loaded.
        weights_sha256: the weights' hash (keys the exported graph's cache).
        device: where the descriptors are computed.
        threads: CPU threads of the engine (``None``: torch's current setting).
        cache: folder of exported graphs (default: memtsm's cache folder).
        precision: ``fp32``, ``bf16`` (torch and OpenVINO; ONNX Runtime is fp32 only) or
            ``int8`` (OpenVINO only, which ``auto`` then picks; no fallback).

    Raises:
        EngineError: see :func:`resolve_engine`; or the engine failed to build.
    """
    if precision not in PRECISIONS:
        raise EngineError(f"--precision must be {'|'.join(PRECISIONS)}, got {precision!r}")
    threads = threads or torch.get_num_threads()
    if precision == "int8":
        # one engine runs int8: no fallback to an engine that would compute other features
        if name not in ("auto", "openvino"):
            raise EngineError(f"--precision int8 runs on --engine openvino (or auto) only, not "
                              f"--engine {name}")
        if device.type != "cpu":
            raise EngineError(f"--precision int8 runs on the CPU (OpenVINO) only, not on {device}")
        candidates = [resolve_engine("openvino", device)]
    elif name == "auto" and device.type == "cpu":
        candidates = [n for n in CPU_PREFERENCE if engine_available(n)
                      and (precision == "fp32" or n != "onnxruntime")]
    else:
        candidates = [resolve_engine(name, device)]
    for candidate in candidates:
        try:
            engine = _build(candidate, net, weights_sha256, device, threads, cache, precision)
        except EngineError as exc:
            if name != "auto" or candidate == candidates[-1]:
                raise
            logger.warning("XFeat engine %s does not work here, trying the next: %s",
                           candidate, exc)
            continue
        logger.info("XFeat engine: %s %s%s on %s, %s, %d threads", engine.name,
                    engine.version, " (auto)" if name == "auto" else "", device, precision,
                    threads)
        return engine
    raise AssertionError("unreachable: torch is always a candidate")


def _build(name: str, net: torch.nn.Module, weights_sha256: str, device: torch.device,
           threads: int, cache: Path | None, precision: str) -> XFeatEngine:
    if precision == "int8" and name != "openvino":
        raise EngineError(f"--precision int8 runs on --engine openvino (or auto) only, not "
                          f"--engine {name}")
    if name == "onnxruntime" and precision != "fp32":
        raise EngineError(f"--engine onnxruntime runs fp32 only, not --precision {precision}")
    if name == "torch":
        from memtsm.extract.engines.torch_engine import TorchEngine

        return TorchEngine(net.to(device), device, precision)
    if precision == "int8":
        from memtsm.extract.engines.openvino_engine import OpenVINOEngine
        from memtsm.extract.engines.quantize import quantized_graph

        return OpenVINOEngine(quantized_graph(net, weights_sha256, cache), threads, precision)
    from memtsm.extract.engines.graph import exported_graph

    graph = exported_graph(net, weights_sha256, cache)
    if name == "openvino":
        from memtsm.extract.engines.openvino_engine import OpenVINOEngine

        return OpenVINOEngine(graph, threads, precision)
    from memtsm.extract.engines.onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(graph, threads)
