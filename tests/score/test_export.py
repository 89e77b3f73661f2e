"""`memtsm export`: the exported graphs, run by ONNX Runtime, give `memtsm score`'s numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _videos import moving_frames, write_video
from typer.testing import CliRunner

from memtsm import score_video
from memtsm.cli import app
from memtsm.extract import ExtractConfig, FeatureSpec, extract
from memtsm.extract.decode import open_video
from memtsm.extract.weights import sha256_of
from memtsm.extract.xfeat import XFeatDescriptor
from memtsm.train.config import ScorerOptions, TrainConfig
from memtsm.train.loop import train

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    videos = root / "videos"
    for i in range(3):
        for folder, name, speed in (("Normal", f"Normal_{i}", 1), ("Running", f"Running{i}", 6)):
            (videos / folder).mkdir(parents=True, exist_ok=True)
            write_video(videos / folder / name, moving_frames(36, seed=i, speed=speed))
    store = root / "features"
    extract([videos], store, ExtractConfig(spec=FeatureSpec(long_side=96, frame_stride=2)))
    run = train(TrainConfig(features=(str(store),), out=str(root / "run"), epochs=1, steps=2,
                            val_fraction=0.34, scorer=ScorerOptions(channels=16, mem_size=8),
                            device="cpu"))
    probe = write_video(root / "probe", moving_frames(75, seed=7, speed=4))
    return run.best_checkpoint, probe, root


def run_exported(folder, video):
    """The whole pipeline from the exported files: decode, preprocess, two graphs."""
    manifest = json.loads((folder / "manifest.json").read_text())
    spec = FeatureSpec.from_dict(manifest["feature_spec"])
    features = ort.InferenceSession(str(folder / "features.onnx"))
    scorer = ort.InferenceSession(str(folder / "scorer.onnx"))
    resize = XFeatDescriptor(torch.nn.Identity(), spec, torch.device("cpu"))  # preprocess only
    sums, counts, previous, has_previous = {}, {}, None, 0.0
    with open_video(video, luma=True) as decoder:
        for batch in decoder.batches(16, want=spec.sampled):
            images = resize.preprocess(batch.frames).contiguous().numpy()
            if previous is None:
                previous = np.zeros((1, 64, images.shape[2] // 8, images.shape[3] // 8),
                                    np.float32)
            vectors, previous = features.run(None, {
                "images": images, "previous": previous,
                "has_previous": np.array([has_previous], np.float32)})
            has_previous = 1.0
            for index, vector in zip(batch.indices.tolist(), vectors):
                clip = index // manifest["clip_len"]
                sums[clip] = sums.get(clip, 0) + vector.astype(np.float64)
                counts[clip] = counts.get(clip, 0) + 1
    clips = np.stack([sums[c] / counts[c] for c in sorted(sums)]).astype(np.float32)
    scores, recon = scorer.run(None, {"features": clips[None]})
    return manifest, scores[0], recon[0]


def test_exported_graphs_reproduce_score(trained, tmp_path):
    checkpoint, probe, _ = trained
    result = CliRunner().invoke(app, ["export", "--checkpoint", str(checkpoint), "--out",
                                      str(tmp_path / "exported")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "exported"
    manifest, scores, recon = run_exported(folder, probe)
    expected = score_video(probe, checkpoint)
    assert len(scores) == len(expected.segments) == 5
    np.testing.assert_allclose(scores, [s.score for s in expected.segments], atol=1e-3)
    np.testing.assert_allclose(recon, [s.recon_error for s in expected.segments], atol=1e-3)
    assert manifest["val_video_threshold"] == pytest.approx(expected.val_video_threshold)
    assert manifest["feature_spec"]["frame_stride"] == 2
    assert manifest["receptive_field"] > 0
    assert manifest["checkpoint_sha256"] == sha256_of(checkpoint)
    for name, digest in manifest["files"].items():
        assert sha256_of(folder / name) == digest
    assert {"features.onnx", "scorer.onnx"} <= set(manifest["files"])


def test_an_ensemble_exports_as_one_scorer(trained, tmp_path):
    """`train --ensemble`'s checkpoint: one scorer graph that averages its members."""
    _, probe, root = trained
    run = train(TrainConfig(features=(str(root / "features"),), out=str(tmp_path / "ens"),
                            epochs=1, steps=2, val_fraction=0.34, ensemble=2,
                            scorer=ScorerOptions(channels=16, mem_size=8), device="cpu"))
    result = CliRunner().invoke(app, ["export", "--checkpoint", str(run.best_checkpoint),
                                      "--out", str(tmp_path / "exported")])
    assert result.exit_code == 0, result.output
    manifest, scores, _ = run_exported(tmp_path / "exported", probe)
    assert manifest["scorer_config"]["members"] == 2
    expected = score_video(probe, run.best_checkpoint)
    np.testing.assert_allclose(scores, [s.score for s in expected.segments], atol=1e-3)
    members = [score_video(probe, m.best_checkpoint) for m in run.members]
    np.testing.assert_allclose(scores, np.mean([[s.score for s in m.segments] for m in members],
                                               axis=0), atol=1e-3)


def test_export_of_imported_features_is_refused(shared_data, tmp_path):
    from memtsm.extract.external import import_features

    ucf = shared_data / "ucf_crime"
    store = tmp_path / "c3d"
    import_features([ucf / "c3d_sultani"], store, "sultani-txt",
                    frame_counts=ucf / "meta" / "Test_Annotation.txt")
    run = train(TrainConfig(features=(str(store),), out=str(tmp_path / "run"), epochs=1, steps=2,
                            val_fraction=0.5, scorer=ScorerOptions(channels=16), device="cpu"))
    result = CliRunner().invoke(app, ["export", "--checkpoint", str(run.best_checkpoint),
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "cannot compute from raw video" in result.output
    assert not (tmp_path / "x").exists()
