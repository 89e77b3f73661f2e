"""XFeat's descriptor head exported once to ONNX, cached, and verified before every use.

The graph takes ``images float32 [N, 1, H, W]`` (any batch and size, multiples of 32) and gives
``descriptors float32 [N, 64, H/8, W/8]``. It is exported from the verified official weights
with torch's TorchScript-based exporter and cached (in ``$MEMTSM_ENGINE_CACHE``, else
``$XDG_CACHE_HOME/memtsm/engines``) as
``xfeat-<weights sha256[:16]>-opset<N>-torch<version>-kornia<version>.onnx`` with a ``.json``
manifest that holds the weights sha256, the versions and the graph file's own sha256.
A graph whose manifest is missing, unreadable, for other weights or versions, or whose bytes do
not hash to the manifest's value is rebuilt, never trusted. Writes are atomic, so a crash never
leaves a half-written graph that a later run would load.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from memtsm.extract.engines.base import EngineError
from memtsm.extract.weights import cache_dir, sha256_of
from memtsm.runtime.files import atomic_path, atomic_write_text, exclusive_lock

logger = logging.getLogger(__name__)

OPSET = 17
#: The export's example input; the graph's batch, height and width are dynamic.
EXAMPLE_SHAPE = (2, 1, 64, 96)


class _DescriptorHead(torch.nn.Module):
    """XFeatModel restricted to its descriptor output (the keypoint heads are not used)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(images)[0]


def graph_identity(weights_sha256: str) -> dict[str, str | int]:
    """What an exported graph depends on (the manifest must match all of it)."""
    import kornia

    return {"weights_sha256": weights_sha256, "opset": OPSET, "torch": torch.__version__,
            "kornia": kornia.__version__, "inputs": "images[N,1,H,W]",
            "outputs": "descriptors[N,64,H/8,W/8]"}


def graph_path(weights_sha256: str, cache: Path | None = None) -> Path:
    """Where the graph of these weights (and these versions) is cached."""
    identity = graph_identity(weights_sha256)
    name = (f"xfeat-{weights_sha256[:16]}-opset{OPSET}-torch{identity['torch']}"
            f"-kornia{identity['kornia']}.onnx").replace("+", "_")
    return (cache or engine_cache_dir()) / name


def engine_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$MEMTSM_ENGINE_CACHE``, else ``engines/`` in memtsm's cache folder."""
    return Path(environ["MEMTSM_ENGINE_CACHE"]) if environ.get("MEMTSM_ENGINE_CACHE") \
        else cache_dir(environ) / "engines"


def _manifest_problem(graph: Path, manifest: Path, identity: dict) -> str | None:
    """Why a cached graph cannot be used, or ``None`` when it can."""
    if not graph.is_file() or not manifest.is_file():
        return "not built yet"
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    if recorded.get("identity") != identity:
        return "built from other weights or versions"
    if recorded.get("graph_sha256") != sha256_of(graph):
        return "graph file does not match its manifest (corrupt or modified)"
    return None


def exported_graph(net: torch.nn.Module, weights_sha256: str, cache: Path | None = None) -> Path:
    """The verified ONNX graph of ``net`` (exported now if the cache has no valid one).

    Raises:
        EngineError: the export failed (the message says why).
    """
    graph = graph_path(weights_sha256, cache)
    manifest = graph.with_suffix(".json")
    identity = graph_identity(weights_sha256)
    if _manifest_problem(graph, manifest, identity) is None:
        return graph
    try:
        graph.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"cannot create the engine cache {graph.parent}: {exc}") from exc
    # workers starting together (torchrun) export once: the others wait, then find it valid
    with exclusive_lock(graph):
        problem = _manifest_problem(graph, manifest, identity)
        if problem is None:
            return graph
        _export(net, graph, problem)
        atomic_write_text(manifest, json.dumps(  # the manifest last: it vouches for the graph
            {"identity": identity, "graph_sha256": sha256_of(graph)}, indent=1) + "\n")
    return graph


def _export(net: torch.nn.Module, graph: Path, problem: str) -> None:
    """Export ``net``'s descriptor head to ``graph`` (atomically)."""
    logger.info("exporting XFeat to ONNX (%s): %s", problem, graph)
    head = _DescriptorHead(net).eval().to(device="cpu")
    try:
        with atomic_path(graph) as tmp, warnings.catch_warnings():
            # the TorchScript-based exporter is deprecated in favour of the dynamo one, which
            # needs onnxscript; this one exports XFeat with dynamic shapes as is
            warnings.simplefilter("ignore")
            torch.onnx.export(
                head, (torch.rand(*EXAMPLE_SHAPE),), str(tmp), input_names=["images"],
                output_names=["descriptors"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                              "descriptors": {0: "batch", 2: "height8", 3: "width8"}})
    except Exception as exc:  # noqa: BLE001 - any exporter failure is reported the same way
        raise EngineError(f"exporting XFeat to ONNX failed: {exc}") from exc
