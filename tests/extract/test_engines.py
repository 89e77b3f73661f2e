"""XFeat inference engines: same features from every fp32 engine, a cache that is never trusted
blindly, and ``auto`` that picks the fastest engine that works here."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from _videos import moving_frames, write_video

from memtsm.extract import ExtractConfig, FeatureSpec
from memtsm.extract.decode import open_video
from memtsm.extract.engines import EngineError, engine_available, open_engine, resolve_engine
from memtsm.extract.engines.graph import graph_path
from memtsm.extract.runner import FeatureExtractor
from memtsm.extract.sources import discover_videos
from memtsm.extract.weights import sha256_of
from memtsm.extract.xfeat import XFeatDescriptor, load_xfeat

CPU = torch.device("cpu")
ONNX_ENGINES = [pytest.param(name, marks=pytest.mark.skipif(
    not engine_available(name), reason=f"{name} not installed"))
    for name in ("openvino", "onnxruntime")]


@pytest.fixture(scope="module")
def net(xfeat_weights):
    return load_xfeat(xfeat_weights)


@pytest.fixture(scope="module")
def sha(xfeat_weights):
    return sha256_of(xfeat_weights)


@pytest.fixture(scope="module")
def real_frames(ucf_videos):
    """16 consecutive RGB frames of a real UCF-Crime clip, ``uint8 [16, 240, 320, 3]``."""
    video = sorted(ucf_videos.glob("*.mp4"))[0]
    with open_video(video) as decoder:
        return next(iter(decoder.batches(16))).frames


@pytest.mark.parametrize("engine", ONNX_ENGINES)
def test_fp32_engines_give_torchs_features(engine, net, sha, real_frames, tmp_path):
    spec = FeatureSpec()
    reference = XFeatDescriptor(net, spec, CPU)
    fast = XFeatDescriptor(open_engine(engine, net, sha, CPU, cache=tmp_path), spec, CPU)
    for frames in (real_frames, real_frames[:5, :200, :300]):  # two sizes, one dynamic graph
        reference.reset()
        fast.reset()
        expected, got = reference.describe(frames), fast.describe(frames)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() < 1e-3
        cosine = torch.nn.functional.cosine_similarity(got, expected, dim=1)
        assert cosine.min() > 0.99999


@pytest.mark.skipif(not engine_available("openvino"), reason="openvino not installed")
def test_openvino_splits_a_batch_over_its_streams_in_order(net, sha, real_frames, tmp_path):
    engine = open_engine("openvino", net, sha, CPU, threads=2, cache=tmp_path)
    if len(engine.requests) < 2:
        pytest.skip("OpenVINO chose one stream on this CPU")
    images = XFeatDescriptor(net, FeatureSpec(), CPU).preprocess(real_frames[:5])
    together = engine.descriptors(images)  # 5 frames over 2+ concurrent requests
    one_by_one = torch.cat([engine.descriptors(images[i:i + 1]) for i in range(5)])
    assert together.shape == (5, 64, 224 // 8, 320 // 8)
    assert (together - one_by_one).abs().max() < 1e-4
    # consecutive real frames differ, so a reordering of the parts would show
    assert (together[1:] - together[:-1]).abs().max() > 1e-2


@pytest.mark.parametrize("engine", ONNX_ENGINES)
def test_extraction_with_any_engine_has_one_identity(engine, xfeat_weights, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    video = write_video(tmp_path / "clip", moving_frames(40))
    sources = discover_videos([video])
    records = {}
    for name in ("torch", engine):
        extractor = FeatureExtractor(ExtractConfig(spec=FeatureSpec(long_side=128), engine=name,
                                                   xfeat_weights=str(xfeat_weights)))
        assert extractor.provenance["engine"] == name
        [(_, record)] = list(extractor.iter_features(sources))
        records[name] = (extractor.identity, record.features)
    assert records["torch"][0] == records[engine][0]
    np.testing.assert_allclose(records[engine][1], records["torch"][1], atol=1e-3)


@pytest.mark.skipif(not engine_available("onnxruntime"), reason="onnxruntime not installed")
def test_cached_graph_is_reused_and_rebuilt_when_stale_or_corrupt(net, sha, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="memtsm.extract.engines.graph")
    open_engine("onnxruntime", net, sha, CPU, cache=tmp_path)
    graph = graph_path(sha, tmp_path)
    assert graph.is_file() and graph.with_suffix(".json").is_file()
    assert "not built yet" in caplog.text
    caplog.clear()
    open_engine("onnxruntime", net, sha, CPU, cache=tmp_path)
    assert "exporting" not in caplog.text  # reused

    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    graph.write_bytes(bytes(data))
    engine = open_engine("onnxruntime", net, sha, CPU, cache=tmp_path)
    assert "corrupt or modified" in caplog.text
    caplog.clear()
    images = torch.rand(2, 1, 64, 96)
    np.testing.assert_allclose(engine.descriptors(images), open_engine(
        "torch", net, sha, CPU).descriptors(images), atol=1e-4)

    manifest = graph.with_suffix(".json")
    manifest.write_text(manifest.read_text().replace(sha, "0" * 64))
    open_engine("onnxruntime", net, sha, CPU, cache=tmp_path)
    assert "other weights or versions" in caplog.text
    caplog.clear()
    manifest.write_text("{not json")
    open_engine("onnxruntime", net, sha, CPU, cache=tmp_path)
    assert "unreadable manifest" in caplog.text


def test_auto_and_named_engines_resolve_by_what_is_installed_and_the_device():
    expected = next(n for n in ("openvino", "onnxruntime", "torch") if engine_available(n))
    assert resolve_engine("auto", CPU) == expected
    assert resolve_engine("auto", torch.device("cuda")) == "torch"
    assert resolve_engine("torch", CPU) == "torch"
    with pytest.raises(EngineError, match="--engine must be one of"):
        resolve_engine("tensorrt", CPU)
    if engine_available("openvino"):
        with pytest.raises(EngineError, match="runs on the CPU only"):
            resolve_engine("openvino", torch.device("cuda:0"))


@pytest.mark.skipif(not (engine_available("openvino") or engine_available("onnxruntime")),
                    reason="no ONNX engine installed")
def test_auto_falls_back_to_torch_when_the_fast_engines_cannot_be_built(net, sha, tmp_path,
                                                                         caplog):
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    engine = open_engine("auto", net, sha, CPU, cache=blocked)
    assert engine.name == "torch"
    assert "does not work here, trying the next" in caplog.text
    with pytest.raises(EngineError, match="cannot create the engine cache"):
        open_engine("onnxruntime" if engine_available("onnxruntime") else "openvino", net, sha,
                    CPU, cache=blocked)


def test_engine_flag_is_checked_and_recorded(tmp_path):
    import json

    from typer.testing import CliRunner

    from memtsm.cli import app

    video = write_video(tmp_path / "clip", moving_frames(20))
    result = CliRunner().invoke(app, ["extract", str(video), "--out", str(tmp_path / "bad"),
                                      "--engine", "tensorrt"])
    assert result.exit_code == 2 and "'tensorrt' is not one of auto, torch" in result.output
    result = CliRunner().invoke(app, ["extract", str(video), "--out", str(tmp_path / "s"),
                                      "--engine", "torch", "--long-side", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    store = json.loads((tmp_path / "s" / "store.json").read_text())
    assert store["provenance"]["engine"] == "torch"
    assert store["provenance"]["extract_config"]["engine"] == "torch"


def _bf16_capable_openvino():
    if not engine_available("openvino"):
        return False
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.parametrize("engine", ["torch", pytest.param("openvino", marks=pytest.mark.skipif(
    not _bf16_capable_openvino(), reason="OpenVINO without BF16 on this CPU"))])
def test_bf16_is_close_to_fp32_but_another_identity(engine, net, sha, real_frames, tmp_path):
    spec = FeatureSpec()
    exact = XFeatDescriptor(net, spec, CPU)
    half = XFeatDescriptor(open_engine(engine, net, sha, CPU, cache=tmp_path,
                                       precision="bf16"), spec, CPU)
    expected, got = exact.describe(real_frames), half.describe(real_frames)
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=1)
    assert cosine.min() > 0.99  # close ...
    assert (got - expected).abs().max() > 1e-4  # ... but not the same numbers
    assert half.engine.precision == "bf16"
    from memtsm.extract.identity import FeatureIdentity

    fp32 = FeatureIdentity.of_extraction(spec, exact.dim, sha)
    bf16 = FeatureIdentity.of_extraction(spec, exact.dim, sha, "bf16")
    assert "network_precision" not in fp32.to_dict()  # as every store written before
    assert fp32.diff(bf16) == {"network_precision": (None, "bf16")}


def test_precision_rules(net, sha, tmp_path):
    with pytest.raises(EngineError, match="onnxruntime runs fp32 only"):
        open_engine("onnxruntime", net, sha, CPU, cache=tmp_path, precision="bf16")
    with pytest.raises(EngineError, match="--precision must be"):
        open_engine("torch", net, sha, CPU, precision="int4")
    assert open_engine("auto", net, sha, CPU, cache=tmp_path,
                       precision="bf16").name in ("openvino", "torch")


def test_fp32_checkpoint_refuses_bf16_features(tmp_path):
    from memtsm.extract.identity import FeatureIdentity
    from memtsm.score.stored import IncompatibleFeaturesError, check_identity

    spec = FeatureSpec()
    fp32 = FeatureIdentity.of_extraction(spec, 128, "a" * 64)
    with pytest.raises(IncompatibleFeaturesError, match="network_precision"):
        check_identity(fp32, FeatureIdentity.of_extraction(spec, 128, "a" * 64, "bf16"))
    check_identity(fp32, FeatureIdentity.of_extraction(spec, 128, "a" * 64))


def test_fp32_convolutions_are_ieee_inside_and_the_setting_is_restored():
    """On CUDA the torch engine turns cuDNN's TF32 off around its fp32 forward, and only there."""
    from memtsm.extract.engines.torch_engine import _ieee_convolutions

    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with _ieee_convolutions():
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before
    assert torch.backends.cudnn.allow_tf32 in (True, False)  # the legacy reader still works


def test_concurrent_first_use_exports_the_graph_once(xfeat_weights, tmp_path, caplog):
    """torchrun workers on a fresh machine all ask for the graph at once: one exports."""
    import threading

    from memtsm.extract.engines.graph import exported_graph

    net, sha = load_xfeat(xfeat_weights, "cpu"), sha256_of(xfeat_weights)
    paths, errors = [], []

    def worker():
        try:
            paths.append(exported_graph(net, sha, tmp_path / "cache"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="memtsm.extract.engines.graph"):
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
    assert not errors and len(paths) == 3 and len(set(paths)) == 1
    assert sum("exporting XFeat to ONNX" in r.getMessage() for r in caplog.records) == 1
    assert exported_graph(net, sha, tmp_path / "cache") == paths[0]  # valid: not rebuilt
