"""XFeat's descriptor graph quantised to int8 with NNCF, calibrated on memtsm's synthetic video.

``--precision int8`` runs a post-training-quantised copy of the exported fp32 ONNX graph
(:mod:`memtsm.extract.engines.graph`) on OpenVINO's CPU plugin. The quantisation is done once
and cached next to the fp32 graph, under the same rules: the OpenVINO IR (``.xml`` + ``.bin``)
has a ``.json`` manifest holding what it depends on (the fp32 graph's identity, so the weights
sha256 and the torch/kornia versions; the OpenVINO and NNCF versions; the calibration set) and
the sha256 of both files. A model whose manifest is missing, unreadable, for anything else, or
whose bytes do not hash to the manifest's values is rebuilt, never trusted; the files are
written under temporary names and renamed, the manifest last.

The calibration set (:class:`CalibrationSet`) is generated, not downloaded, so every machine
quantises from the same frames: ``videos`` clips rendered by :func:`memtsm.synth.render_video`
at 320x240 (seeds ``0..videos-1``, cycling through a normal video and every event kind),
``frames_per_video`` frames evenly spaced in each, preprocessed like real frames by
:func:`memtsm.extract.xfeat.preprocess_frames` with the default :class:`FeatureSpec`
(grey, 320x224). Its name and version are part of the cache key; the sha256 of the float32
calibration tensor is recorded in the manifest, so two machines can check they calibrated on
the same numbers. Bump :data:`CALIBRATION_VERSION` whenever the generator or the selection
changes what the frames are.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from memtsm.extract.engines.base import EngineError
from memtsm.extract.engines.graph import exported_graph, graph_identity, graph_path
from memtsm.extract.weights import sha256_of
from memtsm.runtime.files import atomic_write_text, exclusive_lock, temporary_sibling

logger = logging.getLogger(__name__)

#: Name of the synthetic calibration set (recorded in the manifest and the cache file name).
CALIBRATION_NAME = "memtsm-synth"
#: Version of the calibration set: bump it when the frames it selects change.
CALIBRATION_VERSION = 1
#: What ``--precision int8`` needs beyond the default install.
INSTALL_HINT = "pip install 'memtsm[int8]' (or pip install nncf)"


@dataclass(frozen=True)
class CalibrationSet:
    """The deterministic synthetic frames NNCF calibrates the int8 graph on.

    Attributes:
        videos: synthetic clips rendered (seeds ``0..videos-1``; the event kind cycles through
            normal and every kind of :data:`memtsm.synth.EVENT_KINDS`).
        frames_per_video: frames taken from each clip, evenly spaced.
        width: rendered frame width (UCF-Crime's 320).
        height: rendered frame height (UCF-Crime's 240).
        preset: NNCF preset: ``mixed`` (symmetric weights, asymmetric activations; measured
            closer to fp32 than ``performance`` at the same speed, BENCHMARKS.md) or
            ``performance``.
    """

    videos: int = 8
    frames_per_video: int = 16
    width: int = 320
    height: int = 240
    preset: str = "mixed"

    def __post_init__(self) -> None:
        if self.videos < 1 or self.frames_per_video < 1:
            raise ValueError("a calibration set needs >= 1 video and >= 1 frame per video")
        if self.preset not in ("mixed", "performance"):
            raise ValueError(f"preset must be mixed|performance, got {self.preset!r}")

    def identity(self) -> dict[str, str | int]:
        """Name, version and parameters: what the cache is keyed by."""
        return {"name": CALIBRATION_NAME, "version": CALIBRATION_VERSION, **asdict(self)}

    def images(self) -> torch.Tensor:
        """The calibration frames, ``float32 [videos * frames_per_video, 1, 224, 320]``.

        Rendering takes about 0.35 s per video on one core.
        """
        import numpy as np

        from memtsm.extract.config import FeatureSpec
        from memtsm.extract.xfeat import preprocess_frames
        from memtsm.synth import EVENT_KINDS, SynthConfig, render_video

        config = SynthConfig(width=self.width, height=self.height, min_frames=32, max_frames=32)
        kinds = (None, *EVENT_KINDS)
        spec, cpu = FeatureSpec(), torch.device("cpu")
        parts = []
        for index in range(self.videos):
            video = render_video(config, kinds[index % len(kinds)], seed=index)
            chosen = np.linspace(0, video.num_frames - 1, self.frames_per_video).round()
            frames = torch.from_numpy(video.frames[chosen.astype(np.int64)])
            parts.append(preprocess_frames(frames, spec, cpu).contiguous())
        return torch.cat(parts)


#: The calibration set of ``--precision int8``.
DEFAULT_CALIBRATION = CalibrationSet()


def tensor_sha256(images: torch.Tensor) -> str:
    """sha256 of a tensor's float32 bytes (contiguous, native order) and shape."""
    array = images.detach().cpu().float().contiguous().numpy()
    digest = hashlib.sha256(repr(tuple(array.shape)).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def quantized_identity(weights_sha256: str, calibration: CalibrationSet = DEFAULT_CALIBRATION
                       ) -> dict:
    """What an int8 model depends on (its manifest must match all of it).

    Raises:
        EngineError: NNCF or OpenVINO is not installed.
    """
    try:
        import nncf
        import openvino
    except ImportError as exc:
        raise EngineError(f"--precision int8 needs NNCF and OpenVINO ({exc}); "
                          f"{INSTALL_HINT}") from exc
    return {"fp32_graph": graph_identity(weights_sha256), "openvino": openvino.__version__,
            "nncf": nncf.__version__, "calibration": calibration.identity(),
            "format": "openvino-ir", "precision": "int8"}


def quantized_path(weights_sha256: str, cache: Path | None = None,
                   calibration: CalibrationSet = DEFAULT_CALIBRATION) -> Path:
    """Where the int8 model (``.xml``; the weights are the ``.bin`` beside it) is cached."""
    identity = quantized_identity(weights_sha256, calibration)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    stem = graph_path(weights_sha256, cache).stem
    # OpenVINO's version holds its build and branch (``2026.4.1-22982-e213a14-releases/2026/4``):
    # the release names the file, the whole string is in the identity (and the key)
    release = str(identity["openvino"]).split("-")[0]
    name = (f"{stem}-int8-openvino{release}-nncf{identity['nncf']}-"
            f"{CALIBRATION_NAME}-v{CALIBRATION_VERSION}-{key}.xml")
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return graph_path(weights_sha256, cache).with_name(name)


def _manifest_problem(xml: Path, manifest: Path, identity: dict) -> str | None:
    """Why a cached int8 model cannot be used, or ``None`` when it can."""
    weights = xml.with_suffix(".bin")
    if not (xml.is_file() and weights.is_file() and manifest.is_file()):
        return "not built yet"
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    if not isinstance(recorded, dict) or recorded.get("identity") != identity:
        return "built from other weights, versions or calibration"
    if recorded.get("xml_sha256") != sha256_of(xml) \
            or recorded.get("bin_sha256") != sha256_of(weights):
        return "model files do not match their manifest (corrupt or modified)"
    return None


def quantized_graph(net: torch.nn.Module, weights_sha256: str, cache: Path | None = None,
                    calibration: CalibrationSet = DEFAULT_CALIBRATION) -> Path:
    """The verified int8 OpenVINO model of ``net`` (quantised now if the cache has none valid).

    Args:
        net: kornia's ``XFeatModel`` with the verified weights loaded.
        weights_sha256: the weights' hash.
        cache: folder of engine graphs (default: memtsm's engine cache).
        calibration: the frames NNCF calibrates on.

    Returns:
        The ``.xml`` path (its ``.bin`` and ``.json`` manifest beside it).

    Raises:
        EngineError: NNCF/OpenVINO missing, or the export or quantisation failed.
    """
    xml = quantized_path(weights_sha256, cache, calibration)
    manifest = xml.with_suffix(".json")
    identity = quantized_identity(weights_sha256, calibration)
    if _manifest_problem(xml, manifest, identity) is None:
        return xml
    fp32 = exported_graph(net, weights_sha256, cache)
    with exclusive_lock(xml):  # concurrent workers quantise once (see exported_graph)
        problem = _manifest_problem(xml, manifest, identity)
        if problem is None:
            return xml
        _quantize(fp32, xml, manifest, identity, calibration, problem)
    return xml


def _quantize(fp32: Path, xml: Path, manifest: Path, identity: dict,
              calibration: CalibrationSet, problem: str) -> None:
    """Quantise the fp32 graph with NNCF into ``xml`` (+ ``.bin``), then write the manifest."""
    logger.info("quantising XFeat to int8 with NNCF on %d %s v%d frames (%s): %s",
                calibration.videos * calibration.frames_per_video, CALIBRATION_NAME,
                CALIBRATION_VERSION, problem, xml)
    import nncf
    import openvino

    images = calibration.images()
    samples = [images[i:i + 1].numpy() for i in range(images.shape[0])]
    preset = {"mixed": nncf.QuantizationPreset.MIXED,
              "performance": nncf.QuantizationPreset.PERFORMANCE}[calibration.preset]
    tmp_xml = temporary_sibling(xml)
    tmp_bin = tmp_xml.with_suffix(".bin")
    try:
        model = openvino.Core().read_model(str(fp32))
        quantized = nncf.quantize(model, nncf.Dataset(samples), preset=preset,
                                  subset_size=len(samples))
        openvino.save_model(quantized, str(tmp_xml), compress_to_fp16=False)
        # the weights first, then the graph; the manifest last, vouching for both
        tmp_bin.replace(xml.with_suffix(".bin"))
        tmp_xml.replace(xml)
    except Exception as exc:  # noqa: BLE001 - NNCF and OpenVINO raise their own types
        raise EngineError(f"quantising XFeat to int8 failed: {exc}") from exc
    finally:
        tmp_xml.unlink(missing_ok=True)
        tmp_bin.unlink(missing_ok=True)
    atomic_write_text(manifest, json.dumps(
        {"identity": identity, "xml_sha256": sha256_of(xml),
         "bin_sha256": sha256_of(xml.with_suffix(".bin")),
         "calibration_data_sha256": tensor_sha256(images),
         "calibration_frames": int(images.shape[0])}, indent=1) + "\n")
