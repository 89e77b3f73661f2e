"""kornia's ``XFeatModel`` run by torch in eager mode (CPU and CUDA)."""

from __future__ import annotations

import torch


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
            return self.net(images)[0]
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.net(images)[0].float()
