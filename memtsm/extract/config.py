"""Typed configuration of feature extraction.

Two levels, because they play different roles:

* :class:`FeatureSpec` -- everything that changes the feature *values* (clip length, frame
  stride, pooling layout, resize rule, storage dtype). It is stored in every shard and every
  checkpoint; appending to a store or scoring with a checkpoint under a different spec is refused.
* :class:`ExtractConfig` -- the spec plus how the work is done (decoder, device, batch size,
  sharding). Two runs that differ only here produce interchangeable features.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtsm.constants import CLIP_FRAMES, DEFAULT_SHARD_BYTES, XFEAT_SIDE_MULTIPLE
from memtsm.runtime.configs import config_from_dict
from memtsm.runtime.files import atomic_write_text

#: Pooling layouts known to :mod:`memtsm.extract.layouts` (kept here so the config can validate
#: without importing torch).
LAYOUT_NAMES = ("max128", "mean128", "pyramid640")
#: ``--engine`` choices (:mod:`memtsm.extract.engines`); listed here so the CLI needs no torch.
ENGINE_NAMES = ("auto", "torch", "openvino", "onnxruntime")
#: ``--precision`` choices of the XFeat network: fp32 (every engine, identical features), bf16
#: (torch autocast, or OpenVINO on CPUs with BF16 instructions) or int8 (OpenVINO running a graph
#: quantised by NNCF, :mod:`memtsm.extract.engines.quantize`); bf16 and int8 give other features.
PRECISIONS = ("fp32", "bf16", "int8")
FEATURE_DTYPES = ("float16", "float32")


class DecoderBackend(str, enum.Enum):
    """Decoder choice (also the type of the ``--decoder`` option)."""

    AUTO = "auto"
    PYAV = "pyav"
    DALI = "dali"
    FRAMES = "frames"


@dataclass(frozen=True)
class FeatureSpec:
    """What the features are: identical specs give interchangeable features."""

    clip_len: int = CLIP_FRAMES
    """Frames per clip; one feature vector per clip (``--clip-len``)."""
    frame_stride: int = 1
    """Run XFeat on every k-th frame inside each clip (``--frame-stride``)."""
    layout: str = "max128"
    """Per-frame pooling of XFeat descriptors (``--layout``), see :mod:`memtsm.extract.layouts`."""
    long_side: int = 320
    """Frames are resized so the longer side is about this many pixels, then each side is rounded
    to the nearest multiple of 32 (ties down): 320x240 -> 320x224, 360x240 -> 320x224,
    3840x2160 -> 320x192 (``--long-side``)."""
    dtype: str = "float16"
    """Storage dtype of the ``features`` datasets."""

    def __post_init__(self) -> None:
        if self.clip_len < 1:
            raise ValueError(f"--clip-len must be >= 1, got {self.clip_len}")
        if not 1 <= self.frame_stride <= self.clip_len:
            raise ValueError(
                f"--frame-stride must be in [1, clip_len={self.clip_len}], got {self.frame_stride}"
            )
        if self.layout not in LAYOUT_NAMES:
            raise ValueError(f"--layout must be one of {LAYOUT_NAMES}, got {self.layout!r}")
        if self.long_side < XFEAT_SIDE_MULTIPLE:
            raise ValueError(f"--long-side must be >= {XFEAT_SIDE_MULTIPLE}, got {self.long_side}")
        if self.dtype not in FEATURE_DTYPES:
            raise ValueError(f"dtype must be one of {FEATURE_DTYPES}, got {self.dtype!r}")

    def network_size(self, width: int, height: int) -> tuple[int, int]:
        """Return the ``(width, height)`` frames of a ``width x height`` video are resized to."""
        if width < 1 or height < 1:
            raise ValueError(f"invalid frame size {width}x{height}")
        scale = self.long_side / max(width, height)

        def round_side(side: int) -> int:
            units = side * scale / XFEAT_SIDE_MULTIPLE
            whole = math.floor(units)
            # Nearest multiple of 32, ties rounded down, never below one multiple.
            nearest = whole if units - whole <= 0.5 else whole + 1
            return max(1, nearest) * XFEAT_SIDE_MULTIPLE

        return round_side(width), round_side(height)

    def sampled(self, frame_index: int) -> bool:
        """Whether XFeat runs on this (0-based) frame."""
        return (frame_index % self.clip_len) % self.frame_stride == 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return config_from_dict(cls, data, "feature spec")


@dataclass(frozen=True)
class ExtractConfig:
    """A whole ``memtsm extract`` run."""

    spec: FeatureSpec = field(default_factory=FeatureSpec)
    decoder: str = "auto"
    """``auto`` | ``pyav`` | ``dali`` | ``frames``."""
    device: str = "auto"
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``."""
    batch_size: int = 16
    """Frames per XFeat forward pass (batched across clips)."""
    engine: str = "auto"
    """XFeat inference engine: ``auto`` | ``torch`` | ``openvino`` | ``onnxruntime``
    (:mod:`memtsm.extract.engines`; all give the same fp32 features)."""
    precision: str = "fp32"
    """Precision of the XFeat network (``--precision``): ``fp32``, ``bf16`` or ``int8``; bf16
    and int8 features are each a different feature identity."""
    frames_fps: float = 30.0
    """Frame rate assumed for folders of images (``--fps``)."""
    shard_bytes: int = DEFAULT_SHARD_BYTES
    """A shard is closed once its features reach this size (``--shard-size``)."""
    commit_seconds: float = 600.0
    """A shard is also closed (made durable) after this long, so an interruption loses at most
    this much work (``--commit-every``)."""
    xfeat_weights: str | None = None
    """Explicit weights file (``--xfeat-weights``); else the resolution order in
    :mod:`memtsm.extract.weights`."""
    labels_csv: str | None = None
    """``video,label[,class]`` file overriding the path-based label rule (``--labels``)."""
    video_list: str | None = None
    """Only the videos listed in this file (paths relative to the input folder, one per line,
    like UCF-Crime's ``Anomaly_Train.txt``); listed videos that are not found are failures
    (``--video-list``)."""
    num_shards: int = 1
    """Split the videos into this many disjoint parts, balanced by file size, for parallel
    workers (``--num-shards``; torchrun's ``WORLD_SIZE``)."""
    shard_index: int = 0
    """The part this worker extracts, ``0 <= shard_index < num_shards`` (``--shard-index``;
    torchrun's ``RANK``). Each part writes its own shard files into the same store."""

    def __post_init__(self) -> None:
        if self.decoder not in {b.value for b in DecoderBackend}:
            raise ValueError(f"--decoder must be auto|pyav|dali|frames, got {self.decoder!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"--device must be auto|cpu|cuda[:N], got {self.device!r}")
        if self.engine not in ENGINE_NAMES:
            raise ValueError(f"--engine must be {'|'.join(ENGINE_NAMES)}, got {self.engine!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be {'|'.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.frames_fps <= 0:
            raise ValueError(f"--fps must be > 0, got {self.frames_fps}")
        if self.shard_bytes < 1:
            raise ValueError(f"--shard-size must be > 0, got {self.shard_bytes}")
        if self.commit_seconds <= 0:
            raise ValueError(f"--commit-every must be > 0, got {self.commit_seconds}")
        if self.num_shards < 1:
            raise ValueError(f"--num-shards must be >= 1, got {self.num_shards}")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"--shard-index must be in [0, {self.num_shards - 1}] for "
                             f"--num-shards {self.num_shards}, got {self.shard_index}")

    @property
    def worker_suffix(self) -> str:
        """``""`` for a single worker, else ``-r{shard_index}``: names this worker's files."""
        return f"-r{self.shard_index}" if self.num_shards > 1 else ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (the resolved config written next to the output)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return config_from_dict(cls, data, "extract config", nested={"spec": FeatureSpec})

    def to_json(self) -> str:
        """Return the config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def write(self, path: Path) -> None:
        """Write the resolved config as JSON to ``path``."""
        atomic_write_text(path, self.to_json() + "\n")
