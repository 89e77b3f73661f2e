"""``memtsm benchmark`` end to end on generated features in XD-Violence's published layout.

Five-crop I3D files ``<Name>__k.npy`` (``[T, 1024]``) with VGGish audio, the ``annotations.txt``
ground truth, two seeds of a few optimisation steps: import (training crops as bags, test crops
averaged), train, evaluate, tabulate.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memtsm.benchmark.runner import BenchmarkConfig, BenchmarkError, FeatureInput, run_benchmark
from memtsm.cli import app
from memtsm.extract.store import FeatureStore
from memtsm.runtime.world import SINGLE_PROCESS
from memtsm.train.config import TrainConfig

T, CROPS, DIM = 6, 5, 1024


def _video(root: Path, name: str, anomalous_snippets: range, seed: int) -> None:
    rng = np.random.default_rng(seed)
    crops = rng.standard_normal((T, CROPS, DIM)).astype(np.float32) * 0.1
    crops[list(anomalous_snippets), :, :8] += 2.0  # a direction that tells the event apart
    for k in range(CROPS):
        np.save(root / f"{name}__{k}.npy", crops[:, k])
    audio = root.parent / (root.name + "-audio")
    audio.mkdir(exist_ok=True)
    np.save(audio / f"{name}__vggish.npy", rng.standard_normal((T, 128)).astype(np.float32))


@pytest.fixture(scope="module")
def xd_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xd")
    (root / "train").mkdir()
    (root / "test").mkdir()
    lines = []
    for i in range(8):
        _video(root / "train", f"v=train{i:02d}__#1_label_B1-0-0", range(2, 5), i)
        _video(root / "train", f"v=train{i:02d}__#1_label_A", range(0), 100 + i)
    for i in range(3):
        name = f"v=test{i:02d}__#1_label_B2-0-0"
        _video(root / "test", name, range(1, 3), 200 + i)
        lines.append(f"{name} 16 48\n")  # snippets 1 and 2, as 0-based half-open frames
        _video(root / "test", f"v=test{i:02d}__#1_label_A", range(0), 300 + i)
    (root / "annotations.txt").write_text("".join(lines))
    return root  # labels: XD-Violence's names (_label_A normal, _label_B1... anomalous)


def test_benchmark_end_to_end(xd_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["benchmark", "xd-violence", "--train-features", str(xd_data / "train"),
            "--test-features", str(xd_data / "test"), "-a", str(xd_data / "annotations.txt"),
            "--format", "crop-files", "--train-audio", str(xd_data / "train-audio"),
            "--test-audio", str(xd_data / "test-audio"),
            "--feature-name", "i3d+vggish", "--train-crops", "each", "--model", "mil-mlp",
            "--seeds", "0-1",
            "--set", "epochs=2", "--set", "steps_per_epoch=2", "--set", "batch_size=4",
            "--device", "cpu", "--threads", "1", "--quiet", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert [s["status"] for s in results["seeds"]] == ["ok", "ok"]
    assert results["headline"] == "pr_auc" and results["protocol"] == "xd-violence"
    # each seed's numbers are its evaluation's, the table their mean and sample std
    values = []
    for seed in results["seeds"]:
        test = json.loads((Path(seed["run_dir"]) / "test.json").read_text())
        assert seed["metrics"]["pr_auc"] == test["pr_auc"]
        assert test["card"]["test_videos"] == 6 and test["card"]["frames"] == 6 * T * 16
        assert test["card"]["anomalous_frames"] == 3 * 32
        assert test["card"]["checkpoint"]["model"] == "mil-mlp"
        values.append(test["pr_auc"])
    row = results["table"]["pr_auc"]
    assert row["mean"] == pytest.approx(statistics.fmean(values))
    assert row["std"] == pytest.approx(statistics.stdev(values))
    markdown = (out / "results.md").read_text()
    assert "# XD-Violence: mil-mlp" in markdown and "frame AP (headline)" in markdown
    assert "test videos   6 (3 anomalous, 3 normal)" in markdown
    assert "held-out training videos" in markdown
    train_store = FeatureStore(out / "features" / "train")
    # every training crop its own bag; the test videos are crop means: scoring accepts both
    assert train_store.identity.feature_dim == DIM + 128 and len(train_store) == 16 * CROPS
    assert [e.label for e in train_store.entries].count(1) == 8 * CROPS
    assert "crops         test: mean of 5 crops; training: each of 5 crops as its own bag" \
        in markdown
    # one seed again through `memtsm evaluate --protocol`: the same headline and card
    seed0 = results["seeds"][0]
    evaluated = CliRunner().invoke(app, [
        "evaluate", "-c", str(Path(seed0["run_dir"]) / "best.pt"), "-f",
        str(out / "features" / "test"), "-a", str(xd_data / "annotations.txt"),
        "--protocol", "xd-violence", "--device", "cpu", "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    assert evaluated.output.startswith(f"frame AP {seed0['metrics']['pr_auc']:.4f}")
    assert "protocol card: XD-Violence: frame AP" in evaluated.output
    # a rerun continues (nothing is trained again) and gives the same table
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["table"] == results["table"]
    # another benchmark in the same directory is refused
    other = CliRunner().invoke(app, [*args[:-2], "--seeds", "3", "-o", str(out)])
    assert other.exit_code == 2 and "holds another benchmark" in other.output


def test_benchmark_reads_stores_and_checks_inputs(xd_data: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="name the file layout"):
        run_benchmark(BenchmarkConfig(
            name="xd-violence", train=FeatureInput((str(xd_data / "train"),)),
            test=FeatureInput((str(xd_data / "test"),)),
            annotations=str(xd_data / "annotations.txt"), out=str(tmp_path / "b"),
            base=TrainConfig(features=("x",), out="x", epochs=1)), world=SINGLE_PROCESS)
    with pytest.raises(ValueError, match="unknown protocol"):
        BenchmarkConfig(name="kinetics", train=FeatureInput(("a",)), test=FeatureInput(("b",)),
                        annotations="a", out="o")
    result = CliRunner().invoke(app, [
        "benchmark", "xd-violence", "--train-features", "a", "--test-features", "b", "-a", "c",
        "-o", str(tmp_path / "o"), "--set", "lr=1e-3,1e-4"])
    assert result.exit_code == 2 and "give one value" in result.output


def _sh_data(root: Path) -> Path:
    """ShanghaiTech in RTFM's layout: ``<id>_i3d.npy`` ``[T, 10, 2048]``, lists, frame masks."""
    for side in ("train", "test"):
        (root / side).mkdir(parents=True)
    masks = root / "test_frame_mask"
    masks.mkdir()
    names = {"train": [f"01_{i:04d}" for i in range(1, 7)] + [f"01_{i:03d}" for i in range(1, 7)],
             "test": ["02_0001", "02_0002", "02_001", "02_002"]}
    for side, ids in names.items():
        for i, video in enumerate(ids):
            rng = np.random.default_rng(hash((side, i)) % 2**32)
            crops = rng.standard_normal((4, 10, 2048)).astype(np.float32) * 0.1
            anomalous = len(video.split("_")[1]) == 4
            if anomalous:
                crops[1:3, :, :8] += 2.0
            np.save(root / side / f"{video}_i3d.npy", crops)
            if side == "test":  # masks one snippet's worth of frames shorter than 4 x 16
                gt = np.zeros(60, np.int64)
                gt[16:48] = int(anomalous)
                np.save(masks / f"{video}.npy", gt)
        (root / f"shanghai-i3d-{side}-10crop.list").write_text(
            "".join(f"/home/someone/SH_{side}/{v}_i3d.npy\n" for v in ids))
    return root


def test_shanghaitech_seeds_spread_over_two_ranks(tmp_path: Path) -> None:
    """Two processes with torchrun's environment: rank 0 imports; each trains its seed."""
    import os
    import subprocess
    import sys

    data = _sh_data(tmp_path / "sh")
    out = tmp_path / "bench"
    args = [sys.executable, "-m", "memtsm", "benchmark", "shanghaitech", "--format", "rtfm",
            "--train-features", str(data / "train"),
            "--train-list", str(data / "shanghai-i3d-train-10crop.list"),
            "--test-features", str(data / "test"),
            "--test-list", str(data / "shanghai-i3d-test-10crop.list"),
            "-a", str(data / "test_frame_mask"), "--model", "mil-mlp", "--seeds", "0,1",
            "--set", "epochs=1", "--set", "steps_per_epoch=2", "--set", "batch_size=4",
            "--set", "val_fraction=0.34", "--device", "cpu", "--threads", "1", "--quiet",
            "-o", str(out)]
    ranks = []
    for rank in (0, 1):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}
        ranks.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [process.communicate(timeout=240)[0] for process in ranks]
    assert [process.returncode for process in ranks] == [0, 0], outputs
    main = json.loads((out / "results.json").read_text())
    assert [s["status"] for s in main["seeds"]] == ["ok", "ok"]
    trained_by = {json.loads((Path(s["run_dir"]) / "result.json").read_text())["rank"]
                  for s in main["seeds"]}
    assert trained_by == {0, 1}
    test = json.loads((Path(main["seeds"][0]["run_dir"]) / "test.json").read_text())
    # frames come from the masks (60 per video, 4 videos), labels from the ids
    assert test["card"]["frames"] == 240 and test["card"]["anomalous_frames"] == 64
    assert test["card"]["anomalous_videos"] == 2
    assert "ShanghaiTech (weakly supervised split): frame ROC-AUC" in outputs[0]
    assert FeatureStore(out / "features" / "train").identity.crops == \
        {"count": 10, "use": "mean"}
