"""The exported XFeat graph run by ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import torch

from memtsm.extract.engines.base import EngineError


class OnnxRuntimeEngine:
    """ONNX Runtime, fp32, ``threads`` intra-op threads, one inter-op thread."""

    name = "onnxruntime"
    precision = "fp32"

    def __init__(self, graph: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise EngineError(f"ONNX Runtime cannot load {graph}: {exc}") from exc
        self.version = onnxruntime.__version__

    def descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 1, H, W]`` -> ``[N, 64, H/8, W/8]`` (see :class:`XFeatEngine`)."""
        array = images.contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": array})[0])
