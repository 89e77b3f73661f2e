"""XFeat dense descriptors pooled into per-frame and per-clip vectors.

The network is kornia's :class:`kornia.feature.XFeatModel` (a maintained port of the official
model) with the official weights loaded ``strict=True``. This module adds the preprocessing
(grey, resize to multiples of 32 on the frames' device), descriptor normalisation, the temporal
change between sampled frames, and pooling (:mod:`memtsm.extract.layouts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from kornia.feature import XFeatModel

from memtsm.extract.config import FeatureSpec
from memtsm.extract.engines.base import XFeatEngine
from memtsm.extract.layouts import Layout, get_layout
from memtsm.extract.weights import WeightsError

_UINT8_MAX = 255.0
#: Most frame pixels converted to float at once (8 Mpx = one 4K frame, 100 at 320x240).
CONVERT_PIXELS = 1 << 23


def load_xfeat(weights: Path, device: torch.device | str = "cpu") -> XFeatModel:
    """Build kornia's XFeatModel and load ``weights`` strictly (tensors only, no pickle code)."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{weights}: not a loadable XFeat state dict ({exc})") from exc
    net = XFeatModel()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{weights}: does not match kornia's XFeatModel ({exc})") from exc
    return net.eval().to(device=device)


def preprocess_frames(frames: torch.Tensor, spec: FeatureSpec,
                      device: torch.device) -> torch.Tensor:
    """``uint8 [N, H, W, C]`` RGB (C=3) or luma (C=1) -> ``float32 [N, 1, h, w]`` in [0, 1].

    Frames that already are network input (``float32 [N, 1, h, w]``, from a DALI stream that
    converted and resized them) are only moved to ``device``.

    ``h`` and ``w`` are multiples of 32 (:meth:`FeatureSpec.network_size`); the result is on
    ``device``, channels-last. XFeat instance-normalises its input, so luma and RGB->grey give
    the same features up to the decoders' rounding. Large frames are converted a few at a time,
    so the float copies of 4K frames never exceed about :data:`CONVERT_PIXELS` pixels.
    """
    if frames.is_floating_point():
        return frames.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    chunk = max(1, CONVERT_PIXELS // (height * width))
    if frames.shape[0] <= chunk:
        return _to_network_input(frames, spec, device)
    return torch.cat([_to_network_input(part, spec, device) for part in frames.split(chunk)])


def _to_network_input(frames: torch.Tensor, spec: FeatureSpec,
                      device: torch.device) -> torch.Tensor:
    height, width = int(frames.shape[1]), int(frames.shape[2])
    out_w, out_h = spec.network_size(width, height)
    images = frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    images = images.div_(_UINT8_MAX)
    grey = images if images.shape[1] == 1 else kornia.color.rgb_to_grayscale(images)
    if (out_h, out_w) != (height, width):
        # torch's separable antialiased resize: ~1.8x faster on the CPU than kornia's
        # resize(antialias=True), which blurs with a Gaussian first.
        grey = F.interpolate(grey, size=(out_h, out_w), mode="bilinear", antialias=True,
                             align_corners=False)
    return grey.contiguous(memory_format=torch.channels_last)


def unit_descriptors(raw: torch.Tensor) -> torch.Tensor:
    """``raw [N, C, h, w]`` L2-normalised over channels (as ``F.normalize(raw, dim=1)``).

    Computed channels-last (the result is a channels-last tensor): the per-pixel norm then
    reduces contiguous memory. With the pooling after it, 2.1-2.35x faster than ``F.normalize``
    on the contiguous output of the ONNX engines (``benchmarks/bench_extract.py``, 2 cores;
    BENCHMARKS.md). ``raw`` is never modified.
    """
    work = raw.contiguous(memory_format=torch.channels_last)
    inv_norm = torch.linalg.vector_norm(work, dim=1, keepdim=True).clamp_min_(1e-12).reciprocal_()
    return work.mul_(inv_norm) if work.data_ptr() != raw.data_ptr() else work * inv_norm


class XFeatDescriptor:
    """Frames -> per-frame vectors, keeping the previous frame's descriptors between calls.

    Call :meth:`reset` between videos. Not thread-safe: one instance per worker.
    """

    def __init__(self, engine: XFeatEngine | torch.nn.Module, spec: FeatureSpec,
                 device: torch.device) -> None:
        """``engine``: an :class:`XFeatEngine`, or a loaded ``XFeatModel`` (run by torch)."""
        if isinstance(engine, torch.nn.Module):
            from memtsm.extract.engines.torch_engine import TorchEngine

            engine = TorchEngine(engine, torch.device(device))
        self.engine: XFeatEngine = engine
        self.spec = spec
        self.layout: Layout = get_layout(spec.layout)
        self.device = torch.device(device)
        self._previous: torch.Tensor | None = None

    @classmethod
    def from_weights(cls, weights: Path, spec: FeatureSpec, device: torch.device | str,
                     engine: str = "torch", weights_sha256: str | None = None,
                     threads: int | None = None, precision: str = "fp32"):
        """Load the network from a verified weights file, run by ``engine`` on ``device``.

        The ONNX engines run on the CPU: ``device`` is then where the pooling runs (the CPU).
        """
        from memtsm.extract.engines import open_engine
        from memtsm.extract.weights import sha256_of

        device = torch.device(device)
        net = load_xfeat(weights, "cpu")  # the torch engine moves it to ``device``
        return cls(open_engine(engine, net, weights_sha256 or sha256_of(weights), device,
                               threads, precision=precision), spec, device)

    @property
    def dim(self) -> int:
        """Length of a frame (and clip) vector."""
        return self.layout.dim

    def reset(self) -> None:
        """Forget the previous frame (start of a new video)."""
        self._previous = None

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """``uint8 [N, H, W, C]`` -> ``float32 [N, 1, h, w]``: :func:`preprocess_frames`."""
        return preprocess_frames(frames, self.spec, self.device)

    @torch.inference_mode()
    def describe(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame vectors of consecutive sampled frames of one video.

        Args:
            frames: ``uint8 [N, H, W, C]``, RGB (C=3) or luma (C=1).

        Returns:
            ``float32 [N, D]`` on the CPU.
        """
        return self._vectors(self.engine.descriptors(self.preprocess(frames)))

    def _vectors(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw descriptors ``[N, 64, h, w]`` of consecutive frames -> ``float32 [N, D]``."""
        desc = unit_descriptors(raw)
        previous = desc[:1] if self._previous is None else self._previous
        delta = torch.empty_like(desc)  # |desc_t - desc_{t-1}|, written in place
        torch.sub(desc[1:], desc[:-1], out=delta[1:])
        torch.sub(desc[:1], previous, out=delta[:1])
        self._previous = desc[-1:]
        return self.layout.frame_vectors(desc, delta.abs_()).float().cpu()


@torch.inference_mode()
def describe_together(parts: Sequence[tuple[XFeatDescriptor, torch.Tensor]]
                      ) -> list[torch.Tensor]:
    """Frames of several videos in one engine call; each descriptor keeps its own previous frame.

    Args:
        parts: ``(descriptor, frames uint8 [N_i, H, W, C])`` per video; the descriptors share one
            engine and the frames one network size (:meth:`FeatureSpec.network_size`).

    Returns:
        ``float32 [N_i, D]`` per part, as :meth:`XFeatDescriptor.describe` of each would give.
    """
    inputs = [descriptor.preprocess(frames) for descriptor, frames in parts]
    raw = parts[0][0].engine.descriptors(torch.cat(inputs))
    vectors, start = [], 0
    for (descriptor, _), images in zip(parts, inputs):
        vectors.append(descriptor._vectors(raw[start:start + images.shape[0]]))
        start += images.shape[0]
    return vectors


@dataclass(frozen=True)
class PooledClips:
    """Clip vectors of one video.

    Attributes:
        features: ``float32 [T, D]``.
        clip_frames: ``int64 [T, 2]`` ``[start, end)`` frame indices.
    """

    features: np.ndarray
    clip_frames: np.ndarray
    last_clip_partial: bool


class ClipPooler:
    """Averages frame vectors into consecutive ``clip_len``-frame clips as frames stream in."""

    def __init__(self, clip_len: int, dim: int) -> None:
        self.clip_len = clip_len
        self.dim = dim
        self._sums: dict[int, torch.Tensor] = {}
        self._counts: dict[int, int] = {}

    def add(self, vectors: torch.Tensor, indices: torch.Tensor) -> None:
        """Add ``vectors [N, D]`` of frames ``indices [N]`` (0-based, increasing)."""
        clip_ids = torch.div(indices, self.clip_len, rounding_mode="floor")
        for clip in torch.unique_consecutive(clip_ids).tolist():
            rows = vectors[clip_ids == clip]
            self._sums[clip] = self._sums.get(clip, 0) + rows.double().sum(dim=0)
            self._counts[clip] = self._counts.get(clip, 0) + int(rows.shape[0])

    def finish(self, num_frames: int) -> PooledClips:
        """Clip vectors and boundaries for a video of ``num_frames`` decoded frames."""
        num_clips = -(-num_frames // self.clip_len)
        missing = [c for c in range(num_clips) if c not in self._counts]
        if num_clips == 0 or missing:
            raise ValueError(f"no sampled frame in clips {missing[:5]} of {num_clips}")
        return self._pooled(range(num_clips), num_frames)

    def pop_complete(self, frames_seen: int, final: bool = False) -> PooledClips | None:
        """Clips whose last frame is among the first ``frames_seen``, removed from the pooler.

        For streams: the vectors equal :meth:`finish`'s. ``final=True`` also returns the last,
        partial clip (the stream ended after ``frames_seen`` frames). ``None`` when no clip is
        complete.
        """
        done = sorted(c for c in self._counts
                      if final or (c + 1) * self.clip_len <= frames_seen)
        if not done:
            return None
        pooled = self._pooled(done, frames_seen)
        for clip in done:
            del self._sums[clip], self._counts[clip]
        return pooled

    def _pooled(self, clips: Sequence[int], num_frames: int) -> PooledClips:
        features = torch.stack([self._sums[c] / self._counts[c] for c in clips])
        starts = np.asarray(clips, dtype=np.int64) * self.clip_len
        ends = np.minimum(starts + self.clip_len, num_frames)
        return PooledClips(
            features=features.float().numpy(),
            clip_frames=np.stack([starts, ends], axis=1),
            last_clip_partial=bool(num_frames % self.clip_len),
        )

