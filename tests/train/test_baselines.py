"""The baselines train through the same loop with their own recipes; defaults on tiny data."""

from __future__ import annotations

import json

from test_loop import tiny_config, write_bags

from memtsm.train.checkpoint import load_checkpoint
from memtsm.train.loop import _is_better, train


def test_rtfm_learns_with_its_recipe(tmp_path):
    store = write_bags(tmp_path / "store")
    result = train(tiny_config(store, tmp_path / "rtfm", model="rtfm", lr=None, batch_size=None,
                               steps_per_epoch=None, steps=40, epochs=4,
                               scorer={"rtfm_channels": 32, "rtfm_hidden": (16, 8)}))
    rows = [json.loads(line) for line in (tmp_path / "rtfm" / "metrics.jsonl").open()]
    assert rows[0]["loss_separability"] > 0 and rows[0]["loss_classification"] > 0
    assert rows[-1]["loss_total"] < rows[0]["loss_total"]
    assert rows[0]["loss_focal"] == rows[0]["loss_ranking"] == 0
    assert result.best_val_auc > 0.8
    checkpoint = load_checkpoint(result.best_checkpoint)
    assert checkpoint.scorer_config.kind == "rtfm"
    config = checkpoint.train_config
    assert (config.optimizer, config.lr, config.weight_decay, config.schedule) == (
        "adam", 1e-3, 5e-3, "constant")


def test_defaults_train_seven_videos_for_the_minimum_steps(tmp_path):
    """No tuning flags on a Ped2-sized set: 500 steps, not 20 one-batch epochs."""
    store = write_bags(tmp_path / "store", n_normal=5, n_anomalous=4)
    result = train(tiny_config(store, tmp_path / "run", lr=None, batch_size=None,
                               steps_per_epoch=None, epochs=20))
    assert sum(row["steps"] for row in result.metrics) == 500
    config = load_checkpoint(result.best_checkpoint).train_config
    assert config.steps == 500 and config.batch_size == 8  # 4 + 4 bags: the classes' sizes


def test_tie_breaks():
    # (auc, loss, best_auc, best_loss, best_epoch): a higher AUC always wins.
    assert _is_better(0.9, 5.0, 0.8, 0.1, 3, "latest")
    assert not _is_better(0.7, 0.0, 0.8, 0.1, 3, "val-loss")
    # Saturated validation: "latest" keeps the most trained epoch, "val-loss" the lowest loss.
    assert _is_better(1.0, 0.5, 1.0, 0.1, 3, "latest")
    assert not _is_better(1.0, 0.5, 1.0, 0.1, 3, "val-loss")
    assert _is_better(1.0, 0.05, 1.0, 0.1, 3, "val-loss")
    assert _is_better(None, 1.0, None, None, 0, "latest")  # the first epoch is always taken


def test_train_causal_flag_gives_a_scorer_without_look_ahead(tmp_path):
    from typer.testing import CliRunner

    from memtsm.cli import app
    from memtsm.train.checkpoint import build_model_from_checkpoint

    store = write_bags(tmp_path / "store", n_normal=5, n_anomalous=4)
    result = CliRunner().invoke(app, [
        "train", "-f", str(store), "-o", str(tmp_path / "run"), "--causal", "--steps", "2",
        "--epochs", "1", "--channels", "16", "--mem-size", "4", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(tmp_path / "run" / "best.pt")
    assert checkpoint.scorer_config.causal
    assert build_model_from_checkpoint(checkpoint, "cpu").lookahead == 0
