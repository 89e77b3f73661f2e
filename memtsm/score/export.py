"""``memtsm export``: a checkpoint as ONNX graphs (and OpenVINO IR) that run without memtsm.

Two graphs and a manifest go into the output folder:

* ``features.onnx``: ``images float32 [N, 1, H, W]`` (grey in ``[0, 1]``, ``H``/``W`` as the
  manifest's resize rule gives), ``previous float32 [1, 64, H/8, W/8]`` (the last frame's
  normalised descriptors of the previous batch of the same video) and ``has_previous float32
  [1]`` (0 for a video's first batch) -> ``vectors float32 [N, D]`` (one per frame) and ``last
  [1, 64, H/8, W/8]`` (feed it back as ``previous``). XFeat, descriptor normalisation, the
  temporal change and the layout's pooling are all inside.
* ``scorer.onnx``: ``features float32 [1, T, D]`` (clip vectors: the mean of the vectors of each
  clip's sampled frames) -> ``scores [1, T]`` and ``recon_error [1, T]``.
* ``manifest.json``: the feature spec and identity (weights sha256), the preprocessing, the
  video-level validation threshold, the receptive field (for windowed scoring of long videos),
  the checkpoint's configs, versions, and the sha256 of every file.

Run with ONNX Runtime these give :func:`memtsm.score.video.score_video`'s numbers (tested to
1e-3). With OpenVINO installed, ``features.xml``/``scorer.xml`` IR files are written too.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import memtsm
from memtsm.extract.runner import FeatureExtractor
from memtsm.extract.weights import sha256_of
from memtsm.runtime.files import atomic_path, atomic_write_text
from memtsm.score.stored import IncompatibleFeaturesError, check_identity
from memtsm.score.video import extract_config_for
from memtsm.train.checkpoint import Checkpoint, build_model_from_checkpoint, load_checkpoint

EXPORT_FORMAT = "memtsm-export"
EXPORT_VERSION = 1
OPSET = 17
MANIFEST = "manifest.json"


class _FrameVectors(torch.nn.Module):
    """XFeat descriptors -> normalised -> change since the previous frame -> pooled per frame."""

    def __init__(self, net: torch.nn.Module, layout) -> None:
        super().__init__()
        self.net = net
        self.layout = layout

    def forward(self, images, previous, has_previous):  # noqa: D102
        desc = F.normalize(self.net(images)[0], dim=1)
        first = has_previous * previous + (1 - has_previous) * desc[:1]
        delta = (desc - torch.cat([first, desc[:-1]], dim=0)).abs()
        return self.layout.frame_vectors(desc, delta), desc[-1:]


class _Scores(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features):  # noqa: D102
        output = self.model(features)
        return output.scores, output.recon_error


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_checkpoint` wrote."""

    out: Path
    files: dict[str, str]
    """File name -> sha256."""


def _onnx(module: torch.nn.Module, inputs: tuple, path: Path, names: tuple[list, list],
          dynamic: dict) -> None:
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), inputs, str(tmp), input_names=names[0],
                          output_names=names[1], dynamic_axes=dynamic, opset_version=OPSET,
                          dynamo=False)


def export_checkpoint(checkpoint: Checkpoint | Path | str, out: Path | str,
                      xfeat_weights: str | None = None) -> ExportResult:
    """Write ``features.onnx``, ``scorer.onnx`` (+ IR) and ``manifest.json`` into ``out``.

    Raises:
        memtsm.score.stored.IncompatibleFeaturesError: the checkpoint's features cannot be
            computed from raw video (imported features, other XFeat weights).
        memtsm.train.checkpoint.CheckpointError: not a valid checkpoint.
    """
    out = Path(out)
    source = None if isinstance(checkpoint, Checkpoint) else Path(checkpoint)
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    config = extract_config_for(ckpt, device="cpu", xfeat_weights=xfeat_weights,
                                engine="torch")
    if config.precision != "fp32":
        raise IncompatibleFeaturesError(
            f"this checkpoint was trained on {config.precision} XFeat features; the exported "
            "graphs are fp32, so they would compute other features (retrain on fp32 features)")
    extractor = FeatureExtractor(config)
    check_identity(ckpt.feature_identity, extractor.identity, "the XFeat weights found here")
    descriptor = extractor.descriptor
    net = descriptor.engine.net
    model = build_model_from_checkpoint(ckpt, torch.device("cpu")).eval()
    out.mkdir(parents=True, exist_ok=True)
    grid = (1, 64, 8, 12)
    _onnx(_FrameVectors(net, descriptor.layout),
          (torch.rand(2, 1, 64, 96), torch.zeros(grid), torch.zeros(1)), out / "features.onnx",
          (["images", "previous", "has_previous"], ["vectors", "last"]),
          {"images": {0: "frames", 2: "height", 3: "width"},
           "previous": {2: "height8", 3: "width8"}, "vectors": {0: "frames"},
           "last": {2: "height8", 3: "width8"}})
    dim = ckpt.scorer_config.feature_dim
    _onnx(_Scores(model), (torch.rand(1, 40, dim),), out / "scorer.onnx",
          (["features"], ["scores", "recon_error"]),
          {"features": {1: "clips"}, "scores": {1: "clips"}, "recon_error": {1: "clips"}})
    names = ["features.onnx", "scorer.onnx"]
    names += _openvino_ir(out)
    spec = config.spec
    manifest = {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "memtsm_version": memtsm.__version__,
        "torch_version": torch.__version__, "opset": OPSET,
        "checkpoint": str(source) if source else None,
        "checkpoint_sha256": sha256_of(source) if source else None,
        "feature_spec": spec.to_dict(), "feature_identity": extractor.identity.to_dict(),
        "xfeat_weights_sha256": extractor.weights_sha256,
        "preprocessing": (
            "RGB (or the luma plane) -> grey (ITU-R 601 weights) -> float in [0, 1] -> resize "
            "(bilinear, antialiased, align_corners=False) to the size feature_spec gives: "
            f"scale = long_side ({spec.long_side}) / max(width, height), each side rounded to "
            "the nearest multiple of 32 (ties down, at least 32)"),
        "sampling": f"frames with (index % {spec.clip_len}) % {spec.frame_stride} == 0",
        "clip_len": spec.clip_len,
        "clip_vector": "mean of the vectors of the clip's sampled frames",
        "val_video_threshold": ckpt.val_video_threshold,
        "receptive_field": int(getattr(model, "receptive_field", 0)),
        "scorer_config": ckpt.scorer_config.to_dict(),
        "files": {name: sha256_of(out / name) for name in names},
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return ExportResult(out=out, files=manifest["files"])


def _openvino_ir(out: Path) -> list[str]:
    """``features.xml/.bin`` and ``scorer.xml/.bin`` when OpenVINO is installed."""
    try:
        import openvino
    except ImportError:
        return []
    written = []
    for stem in ("features", "scorer"):
        model = openvino.convert_model(str(out / f"{stem}.onnx"))
        openvino.save_model(model, str(out / f"{stem}.xml"), compress_to_fp16=False)
        written += [f"{stem}.xml", f"{stem}.bin"]
    return written
