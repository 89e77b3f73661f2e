"""Training: config round trip and validation, a tiny real run, determinism, resume, errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from memtsm.evaluate.metrics import f1_threshold
from memtsm.extract.identity import FeatureIdentity
from memtsm.extract.store import FeatureStoreWriter, VideoRecord
from memtsm.model import LossConfig, ScorerConfig
from memtsm.train.checkpoint import load_checkpoint
from memtsm.train.config import ScorerOptions, TrainConfig
from memtsm.train.data import DataError
from memtsm.train.loop import LOSS_TERMS, train

DIM = 64
CLIP = 16
IDENTITY = {"feature_dim": DIM, "layout": "synthetic", "feature_spec": {"clip_len": CLIP},
            "dtype": "float32"}
TINY_SCORER = {"channels": 32, "mem_size": 8, "head_hidden": 16, "se_window": 3,
               "mil_hidden": (32, 16)}


def write_bags(root, n_normal=20, n_anomalous=20, seed=0, dim=DIM, shift=8.0, n_unlabelled=0):
    """Bags of 12-50 clips of N(0, 1) noise; anomalous ones hold 3-6 clips shifted along a
    fixed direction (the signal a scorer must find from video labels only)."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(1234).normal(size=dim)
    direction /= np.linalg.norm(direction)
    identity = {**IDENTITY, "feature_dim": dim}
    with FeatureStoreWriter(root, identity, {"extract_config": {"synthetic": True}}) as writer:
        labels = [0] * n_normal + [1] * n_anomalous + [None] * n_unlabelled
        for i, label in enumerate(labels):
            clips = int(rng.integers(12, 51))
            features = rng.normal(size=(clips, dim)).astype(np.float32)
            if label == 1:
                width = int(rng.integers(3, 7))
                start = int(rng.integers(0, clips - width))
                features[start:start + width] += shift * direction.astype(np.float32)
            starts = np.arange(clips) * CLIP
            writer.add(VideoRecord(
                video_id=f"v{i:03d}", features=features,
                clip_frames=np.stack([starts, starts + CLIP], axis=1), fps=30.0,
                num_frames=clips * CLIP, label=label,
                class_name={0: "Normal", 1: "Anomaly", None: ""}[label]))
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_bags(tmp_path_factory.mktemp("store"), n_unlabelled=2)


def tiny_config(store, out, **changes):
    base = TrainConfig(features=(str(store),), out=str(out), epochs=8, lr=1e-2, batch_size=8,
                       steps_per_epoch=3,
                       scorer=ScorerOptions.from_dict(TINY_SCORER))
    return base.replace(**changes)


def strip_time(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- config ----------------------------------------------------------------------------------


def test_scorer_options_mirror_scorer_config():
    mine = {f.name for f in dataclasses.fields(ScorerOptions)}
    theirs = {f.name for f in dataclasses.fields(ScorerConfig)} - {"feature_dim", "kind",
                                                                    "members"}
    assert mine == theirs
    cfg = TrainConfig(features="s", out="o", model="mil-mlp").scorer_config(4096)
    assert cfg == ScorerConfig(feature_dim=4096, kind="mil-mlp")


def test_config_yaml_round_trip_and_overrides(tmp_path):
    cfg = TrainConfig(features=("a", "b"), out="run", lr=3e-4, scorer=ScorerOptions(channels=64),
                      loss=LossConfig(topk=5))
    path = tmp_path / "run.yaml"
    cfg.to_yaml(path)
    assert TrainConfig.from_yaml(path) == cfg
    # CLI > YAML > defaults; None means "flag not given"; nested dicts merge key by key
    got = TrainConfig.from_yaml(path, {"lr": None, "epochs": 3, "scorer": {"mem_size": 10}})
    assert got.lr == 3e-4 and got.epochs == 3
    assert got.scorer.channels == 64 and got.scorer.mem_size == 10
    assert got.replace(loss={"topk": 2}).loss == LossConfig(topk=2)
    assert TrainConfig.from_yaml(None, {"features": ["x"], "out": "o"}).features == ("x",)


@pytest.mark.parametrize("changes, message", [
    ({"lr": 0.0}, "--lr must be > 0"),
    ({"batch_size": 7}, "--batch-size must be an even"),
    ({"model": "transformer"}, "--model must be one of memtsm, mil-mlp"),
    ({"val_fraction": 1.0}, "--val-fraction"),
    ({"device": "tpu"}, "--device"),
    ({"features": ()}, "--features"),
    ({"scorer": {"channels": 3}}, "invalid scorer option: channels"),
    ({"loss": {"topk": 0}}, "topk"),
    ({"epochs": 0}, "--epochs"),
])
def test_config_errors_name_the_flag(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(features=("s",), out="o").replace(**changes)


def test_config_rejects_unknown_yaml_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("features: [s]\nout: o\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown train option.*learning_rate"):
        TrainConfig.from_yaml(path)


def test_f1_threshold_is_between_the_classes():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    threshold, f1 = f1_threshold(scores, np.array([0, 0, 0, 1, 1]))
    assert threshold == pytest.approx(0.5) and f1 == 1.0
    threshold, f1 = f1_threshold(np.array([0.9, 0.2, 0.6]), np.array([1, 1, 0]))
    assert threshold == pytest.approx(0.2) and f1 == pytest.approx(0.8)  # flag all


# -- a tiny real run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def memtsm_run(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "memtsm"
    return train(tiny_config(store, out)), out


def test_tiny_run_writes_the_run_dir_and_learns(memtsm_run):
    result, out = memtsm_run
    for name in ("config.yaml", "split.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png"):
        assert (out / name).is_file(), name
    rows = read_jsonl(out / "metrics.jsonl")
    assert len(rows) == 8 and rows == [json.loads(json.dumps(r)) for r in result.metrics]
    for row in rows:
        for term in LOSS_TERMS:
            assert np.isfinite(row[f"loss_{term}"])
        for key in ("train_auc", "val_auc", "val_ap", "val_loss", "lr", "seconds",
                    "val_video_threshold"):
            assert row[key] is not None
    assert rows[-1]["loss_focal"] > 0 and rows[-1]["loss_reconstruction"] > 0
    assert rows[-1]["loss_total"] < rows[0]["loss_total"]
    assert rows[0]["lr"] == pytest.approx(1e-2) and rows[-1]["lr"] < rows[0]["lr"]
    assert result.best_val_auc > 0.8
    assert result.best_val_auc == max(r["val_auc"] for r in rows)
    assert 0.0 < result.val_video_threshold < 1.0
    # config.yaml holds the values used: the recipe's optimiser fields are filled in.
    assert (TrainConfig.from_yaml(out / "config.yaml")
            == tiny_config(store_path(result), out).resolved())


def store_path(result):
    return load_checkpoint(result.best_checkpoint).train_config.features[0]


def test_best_checkpoint_is_plain_and_self_describing(memtsm_run):
    result, out = memtsm_run
    raw = torch.load(out / "best.pt", weights_only=True)
    assert raw["format"] == "memtsm-scorer" and raw["training_state"] is None
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt.epoch == result.best_epoch
    assert ckpt.val_video_threshold == result.val_video_threshold
    assert ckpt.feature_identity == FeatureIdentity.from_dict(IDENTITY)
    assert ckpt.extract_config == {"synthetic": True}
    assert ckpt.scorer_config.feature_dim == DIM and ckpt.scorer_config.channels == 32
    assert ckpt.val_metrics["val_auc"] == result.best_val_auc
    last = load_checkpoint(out / "last.pt")
    assert last.epoch == 8 and last.training_state is not None
    assert len(last.training_state.history) == 8


def test_training_is_deterministic(memtsm_run, store, tmp_path):
    result, out = memtsm_run
    again = train(tiny_config(store, tmp_path / "again"))
    assert strip_time(again.metrics) == strip_time(result.metrics)
    a = load_checkpoint(out / "last.pt").state_dict
    b = load_checkpoint(tmp_path / "again" / "last.pt").state_dict
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class StopAfter:
    """A progress display whose user presses Ctrl-C after ``n`` epochs."""

    def __init__(self, n):
        self.n, self.done = n, 0

    def start(self, total_items, total_units, unit):
        pass

    def advance(self, units):
        pass

    def item_done(self, name, ok, info=""):
        self.done += 1
        if self.done == self.n:
            raise KeyboardInterrupt

    def close(self):
        pass


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(store, tmp_path):
    full = train(tiny_config(store, tmp_path / "full", epochs=4))
    cfg = tiny_config(store, tmp_path / "cut", epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, StopAfter(2))
    assert load_checkpoint(tmp_path / "cut" / "last.pt").epoch == 2
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)
    with pytest.raises(ValueError, match="lr"):
        train(cfg.replace(resume=True, lr=5e-3))
    resumed = train(cfg.replace(resume=True))
    assert strip_time(resumed.metrics) == strip_time(full.metrics)
    assert len(read_jsonl(tmp_path / "cut" / "metrics.jsonl")) == 4
    a = load_checkpoint(tmp_path / "full" / "last.pt").state_dict
    b = load_checkpoint(tmp_path / "cut" / "last.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.best_epoch == full.best_epoch
    assert resumed.val_video_threshold == full.val_video_threshold


def test_feature_noise_changes_training_only_and_is_reproducible(memtsm_run, store, tmp_path):
    """Noise perturbs the training batches (other weights), is seeded (same run twice gives the
    same weights, also after an interruption), and validation still sees clean features."""
    _, clean_out = memtsm_run
    noisy = train(tiny_config(store, tmp_path / "noisy", feature_noise=0.5))
    clean = load_checkpoint(clean_out / "last.pt").state_dict
    first = load_checkpoint(tmp_path / "noisy" / "last.pt").state_dict
    assert not all(torch.equal(clean[k], first[k]) for k in clean)
    cfg = tiny_config(store, tmp_path / "cut", feature_noise=0.5)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, StopAfter(3))
    resumed = train(cfg.replace(resume=True))
    again = load_checkpoint(tmp_path / "cut" / "last.pt").state_dict
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert strip_time(resumed.metrics) == strip_time(noisy.metrics)
    # the first epoch already trains on other inputs than the clean run
    assert noisy.metrics[0]["loss_total"] != pytest.approx(memtsm_run[0].metrics[0]["loss_total"])
    with pytest.raises(ValueError, match="--feature-noise"):
        tiny_config(store, tmp_path / "bad", feature_noise=-0.1)


def test_mil_mlp_runs_with_the_ranking_loss(store, tmp_path):
    # Sultani et al.'s recipe (Adagrad, lr 0.01, halves capped at the larger class), 80 steps.
    result = train(tiny_config(store, tmp_path / "mil", model="mil-mlp", lr=None,
                               batch_size=None, steps_per_epoch=None, steps=80))
    rows = read_jsonl(tmp_path / "mil" / "metrics.jsonl")
    assert len(rows) == 8 and rows[0]["loss_ranking"] > 0
    assert rows[-1]["loss_ranking"] < rows[0]["loss_ranking"]
    assert result.best_val_auc > 0.8
    config = load_checkpoint(result.best_checkpoint).train_config
    assert (config.optimizer, config.lr, config.batch_size, config.steps) == (
        "adagrad", 0.01, 32, 80)
    assert rows[0]["loss_focal"] == 0 and rows[0]["loss_reconstruction"] == 0
    assert load_checkpoint(result.best_checkpoint).scorer_config.kind == "mil-mlp"
    assert (tmp_path / "mil" / "curves.png").is_file()


# -- errors ----------------------------------------------------------------------------------


def test_no_anomalous_videos(tmp_path):
    root = write_bags(tmp_path / "s", n_normal=6, n_anomalous=0)
    with pytest.raises(DataError, match="no anomalous"):
        train(tiny_config(root, tmp_path / "run"))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_mismatched_feature_dims(tmp_path):
    a = write_bags(tmp_path / "a", 3, 3)
    b = write_bags(tmp_path / "b", 3, 3, dim=32)
    with pytest.raises(DataError, match="feature_dim: the first has 64, this one has 32"):
        train(tiny_config(a, tmp_path / "run").replace(features=(str(a), str(b))))


def test_too_few_videos_to_validate(tmp_path):
    root = write_bags(tmp_path / "s", n_normal=5, n_anomalous=1)
    with pytest.raises(DataError, match="at least 2 of each"):
        train(tiny_config(root, tmp_path / "run"))


def test_resume_without_a_committed_epoch_starts_the_run(store, tmp_path, caplog):
    """A job script can always pass --resume; a run killed before epoch 1 ended starts over."""
    fresh = train(tiny_config(store, tmp_path / "fresh", epochs=2))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("")  # killed before its first epoch ended
    with caplog.at_level("WARNING"):
        resumed = train(tiny_config(store, tmp_path / "run", epochs=2, resume=True))
    assert "no epoch was committed" in caplog.text
    assert strip_time(read_jsonl(tmp_path / "run" / "metrics.jsonl")) == \
        strip_time(read_jsonl(tmp_path / "fresh" / "metrics.jsonl"))
    assert resumed.best_epoch == fresh.best_epoch
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(tiny_config(store, tmp_path / "run", epochs=2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_an_error(store, tmp_path):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        train(tiny_config(store, tmp_path / "run", device="cuda"))


def test_non_finite_loss_stops_the_run(tmp_path):
    # finite features so large that the scorer overflows: the loss turns NaN in epoch 1
    root = write_bags(tmp_path / "s", 6, 6, shift=3e38)
    with pytest.raises(RuntimeError, match="non-finite training loss in epoch 1"):
        train(tiny_config(root, tmp_path / "run"))
    assert not (tmp_path / "run" / "last.pt").exists()


# -- validation too small to rank ------------------------------------------------------------


def test_tiny_validation_is_warned_about_and_recorded(tmp_path, caplog):
    """Six videos: validation of 1 + 1 whose AUC is 0 or 1 is warned about, and audited."""
    root = write_bags(tmp_path / "s", n_normal=2, n_anomalous=4)
    with caplog.at_level("WARNING", logger="memtsm.train.loop"):
        result = train(tiny_config(root, tmp_path / "run", epochs=2))
    assert "validation holds only 1 normal and 1 anomalous video(s), fewer than 5 of each" in \
        caplog.text and "can take only 2 values" in caplog.text
    assert result.warnings and result.warnings[0].startswith("validation holds only 1 normal")
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    held_out = split["validation"]["normal"] + split["validation"]["anomalous"]
    assert len(split["validation"]["normal"]) == 1 and len(split["validation"]["anomalous"]) == 1
    trained = split["train"]["normal"] + split["train"]["anomalous"]
    assert sorted(held_out + trained) == [f"v{i:03d}" for i in range(6)]
    assert split["warning"] == result.warnings[0] and split["min_val_videos_per_class"] == 5
    for name in ("best.pt", "last.pt"):
        assert sorted(load_checkpoint(tmp_path / "run" / name).val_video_ids) == sorted(held_out)
    assert sorted(result.val_video_ids) == sorted(held_out)
    # the stores changed under a run (a video added): the split differs, resume refuses
    with FeatureStoreWriter(root, IDENTITY) as writer:
        starts = np.arange(20) * CLIP
        writer.add(VideoRecord(video_id="v999", features=np.zeros((20, DIM), np.float32),
                               clip_frames=np.stack([starts, starts + CLIP], axis=1), fps=30.0,
                               num_frames=20 * CLIP, label=0, class_name="Normal"))
    with pytest.raises(ValueError, match="validation videos differ"):
        train(tiny_config(root, tmp_path / "run", epochs=2, resume=True))


def test_validation_warning_threshold():
    from memtsm.train.data import MIN_VAL_VIDEOS_PER_CLASS, validation_warning

    assert MIN_VAL_VIDEOS_PER_CLASS == 5
    assert validation_warning([0] * 5 + [1] * 5) is None
    assert "5 normal and 4 anomalous" in validation_warning([0] * 5 + [1] * 4)
    assert "21 values" in validation_warning([0] * 5 + [1] * 4)


def test_saturated_or_chance_validation_auc_is_warned_about():
    from memtsm.train.loop import _selection_warnings

    rows = [{"val_auc": auc} for auc in (0.0, 0.0, 0.0)]
    assert "no better than chance" in _selection_warnings(rows, 1, "latest")[0]
    rows = [{"val_auc": auc} for auc in (0.5, 1.0, 1.0)]
    saturated = _selection_warnings(rows, 3, "latest")[0]
    assert "saturated at 1.0 in 2 of 3 epochs" in saturated and "latest" in saturated
    assert "validation loss" in _selection_warnings(rows, 2, "val-loss")[0]
    assert "undefined" in _selection_warnings([{"val_auc": None}], 1, "latest")[0]
    assert _selection_warnings([{"val_auc": auc} for auc in (0.6, 0.9, 1.0)], 3, "latest") == []


def test_cli_says_the_best_epoch_is_unreliable(tmp_path):
    from typer.testing import CliRunner

    from memtsm.cli import app

    root = write_bags(tmp_path / "s", n_normal=2, n_anomalous=4)
    result = CliRunner().invoke(app, [
        "train", "-f", str(root), "-o", str(tmp_path / "run"), "--epochs", "1",
        "--steps", "2", "--channels", "32", "--mem-size", "8", "--batch-size", "8",
        "--device", "cpu",
        "--quiet"])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "validation holds only 1 normal" in result.output
    assert "(unreliable: see the warnings above; held-out videos in split.json)" in result.output
