"""Sweeps: settings parsing, a real 2 seeds x 2 values sweep, its table, reruns, torchrun."""

from __future__ import annotations

import csv
import json
import math

import pytest
from test_distributed import torchrun
from test_loop import read_jsonl, tiny_config, write_bags
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.train.checkpoint import load_checkpoint
from memtsm.train.sweep import (
    SWEEP_METRICS,
    SweepConfig,
    SweepError,
    parse_seeds,
    parse_setting,
    run_sweep,
)

SETTINGS = ["lr=0.01,0.003", "epochs=2", "steps_per_epoch=2"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_bags(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def sweep(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "seq"
    plan = SweepConfig.from_settings(tiny_config(store, out), (0, 1), SETTINGS)
    return run_sweep(plan), plan.resolved()


# -- settings --------------------------------------------------------------------------------


def test_settings_are_typed_like_the_config_fields():
    assert parse_setting("lr=1e-3,3e-4") == ("lr", (1e-3, 3e-4))
    assert parse_setting("scorer.channels=64,128") == ("scorer.channels", (64, 128))
    assert parse_setting("loss.topk=5") == ("loss.topk", (5,))
    assert parse_setting("steps_per_epoch=none,4") == ("steps_per_epoch", (None, 4))
    assert parse_setting("model=mil-mlp") == ("model", ("mil-mlp",))
    assert parse_seeds("0,1,2") == (0, 1, 2) and parse_seeds("3-5") == (3, 4, 5)


@pytest.mark.parametrize("text, message", [
    ("learning_rate=0.1", "unknown setting 'learning_rate'.*settings: .*scorer.channels"),
    ("seed=1,2", "seed is set by the sweep itself"),
    ("epochs=1.5", "epochs: '1.5' is not an int"),
    ("scorer.mil_hidden=32", "cannot be swept from the command line"),
    ("lr", "expected key=value"),
    ("lr=0.1,", "empty value"),
    ("lr=0.1,0.1", "repeated"),
])
def test_bad_settings_name_the_culprit(text, message):
    with pytest.raises(SweepError, match=message):
        parse_setting(text)


def test_invalid_values_and_variants_are_refused_before_training(store, tmp_path):
    base = tiny_config(store, tmp_path / "s")
    with pytest.raises(SweepError, match="variant lr=-1.0: --lr must be > 0"):
        SweepConfig.from_settings(base, (0,), ["lr=0.1,-1"])
    with pytest.raises(SweepError, match="batch_size=7: --batch-size must be an even"):
        SweepConfig.from_settings(base, (0,), ["batch_size=7"])
    with pytest.raises(SweepError, match="names a setting twice"):
        SweepConfig.from_settings(base, (0,), ["lr=0.1", "lr=0.2,0.3"])
    assert not (tmp_path / "s").exists()


def test_one_value_settings_change_the_base_and_the_grid_is_every_combination(store, tmp_path):
    plan = SweepConfig.from_settings(tiny_config(store, tmp_path), (0, 1, 2),
                                     ["epochs=3", "lr=0.1,0.2", "scorer.channels=16,32"])
    assert plan.base.epochs == 3 and [k for k, _ in plan.grid] == ["lr", "scorer.channels"]
    runs = plan.runs()
    assert len(runs) == 12 and [r.index for r in runs] == list(range(12))
    assert runs[0].variant == "lr=0.1,scorer.channels=16" and runs[0].seed == 0
    assert runs[-1].config.lr == 0.2 and runs[-1].config.scorer.channels == 32
    assert runs[-1].config.seed == 2 and runs[-1].config.epochs == 3
    assert len({r.run_dir for r in runs}) == 12


# -- a real sweep ----------------------------------------------------------------------------


def best_row(run_dir):
    """The metrics.jsonl row of the epoch saved as best.pt."""
    epoch = load_checkpoint(run_dir / "best.pt").epoch
    return epoch, read_jsonl(run_dir / "metrics.jsonl")[epoch - 1]


def test_table_holds_mean_and_std_of_each_runs_own_metrics(sweep):
    result, plan = sweep
    out = result.out
    with open(out / "sweep.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["lr"] for row in table] == ["0.01", "0.003"]
    for row, settings in zip(table, plan.variants()):
        runs = [r for r in plan.runs() if r.settings == settings]
        assert [r.seed for r in runs] == [0, 1] and row["n"] == "2" and row["failed"] == "0"
        values = {m: [] for m in SWEEP_METRICS}
        for run in runs:
            epoch, metrics = best_row(run.run_dir)
            assert len(read_jsonl(run.run_dir / "metrics.jsonl")) == 2  # epochs=2 applied
            for metric in SWEEP_METRICS:
                values[metric].append(epoch if metric == "best_epoch" else metrics[metric])
        for metric, (a, b) in values.items():
            mean = (a + b) / 2
            assert float(row[f"{metric}_mean"]) == pytest.approx(mean, rel=1e-12, abs=1e-15)
            assert float(row[f"{metric}_std"]) == pytest.approx(abs(a - b) / math.sqrt(2),
                                                                rel=1e-9, abs=1e-15)
    losses = [float(row["val_loss_mean"]) for row in table]
    assert losses[0] != losses[1]  # the variants really differ
    assert "±" in (out / "sweep.md").read_text()
    data = json.loads((out / "sweep.json").read_text())
    assert len(data["runs"]) == 4 and data["sweep"]["seeds"] == [0, 1]
    assert (out / "sweep.yaml").is_file()


def test_rerun_skips_finished_runs_and_refuses_another_sweep(sweep):
    result, plan = sweep
    stamps = {r.index: (r.run_dir / "last.pt").stat().st_mtime_ns for r in plan.runs()}
    again = run_sweep(plan)
    assert again.table == result.table
    assert stamps == {r.index: (r.run_dir / "last.pt").stat().st_mtime_ns for r in plan.runs()}
    other = SweepConfig.from_settings(plan.base, (0, 1, 2), ["lr=0.01,0.003"])
    with pytest.raises(SweepError, match="holds another sweep.*seeds"):
        run_sweep(other)


def test_torchrun_shares_the_runs_between_ranks(sweep, store, tmp_path):
    sequential, _ = sweep
    args = ["sweep", "--features", store, "--out", tmp_path / "ddp", "--seeds", "0,1",
            "--device", "cpu", "--quiet"]
    for setting in SETTINGS:
        args += ["--set", setting]
    config = tmp_path / "base.yaml"
    tiny_config(store, tmp_path / "unused").to_yaml(config)
    result = torchrun(*args, "--config", config)
    assert result.returncode == 0, result.stderr
    assert "| lr | seeds | val_auc" in result.stdout and result.stdout.count("| 0.01 |") == 1
    data = json.loads((tmp_path / "ddp" / "sweep.json").read_text())
    assert [r["rank"] for r in data["runs"]] == [0, 1, 0, 1]
    for mine, theirs in zip(data["table"], sequential.table):
        for key, value in theirs.items():
            assert mine[key] == (pytest.approx(value, rel=1e-5)
                                 if isinstance(value, float) else value), key


def test_failed_runs_are_reported_and_exit_1(tmp_path):
    bad = write_bags(tmp_path / "bad", 6, 6, shift=3e38)  # the loss overflows in epoch 1
    result = CliRunner().invoke(app, ["sweep", "-f", str(bad), "-o", str(tmp_path / "s"),
                                      "--seeds", "0,1", "--set", "scorer.channels=32",
                                      "--set", "batch_size=8", "--device", "cpu", "-q"])
    assert result.exit_code == 1, result.output
    assert "non-finite training loss in epoch 1" in result.output
    data = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [r["status"] for r in data["runs"]] == ["failed", "failed"]
    assert data["table"][0]["n"] == 0 and data["table"][0]["failed"] == 2
