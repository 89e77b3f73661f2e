"""kornia's ``XFeatModel`` run by torch in eager mode (CPU and CUDA)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def _ieee_convolutions() -> Iterator[None]:
    """Full-fp32 cuDNN convolutions inside the block, whatever the process's TF32 setting.

    cuDNN runs fp32 convolutions in TF32 by default (a 10-bit mantissa, about 1e-3 off);
    fp32 features must match the CPU's. torch >= 2.9 has a per-operator setting (mixing it with
    the legacy ``allow_tf32`` flag is an error there), older versions only the legacy flag.
    """
    cudnn = torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    setting, name, full = ((conv, "fp32_precision", "ieee") if hasattr(conv, "fp32_precision")
                           else (cudnn, "allow_tf32", False))
    previous = getattr(setting, name)
    setattr(setting, name, full)
    try:
        yield
    finally:
        setattr(setting, name, previous)


class TorchEngine:
    """The reference engine: the network as loaded, channels-last."""

    name = "torch"

    def __init__(self, net: torch.nn.Module, device: torch.device,
                 precision: str = "fp32") -> None:
        # channels-last convolutions run about 1.3x faster on the CPU and give the same features
        # to float tolerance (tests/extract/test_xfeat.py checks it).
        self.net = net.eval().to(device=device, memory_format=torch.channels_last)
        self.version = torch.__version__
        self.precision = precision
        self.device = device

    @torch.inference_mode()
    def descriptors(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 1, H, W]`` -> ``[N, 64, H/8, W/8]`` (see :class:`XFeatEngine`)."""
        images = images.contiguous(memory_format=torch.channels_last)
        if self.precision == "fp32":
            if not images.is_cuda:
                return self.net(images)[0]
            with _ieee_convolutions():
                return self.net(images)[0]
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.net(images)[0].float()
