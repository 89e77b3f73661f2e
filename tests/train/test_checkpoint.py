"""Checkpoints: plain round trip, rebuilt model, atomic writes, unsafe files refused."""

from __future__ import annotations

import builtins
import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from memtsm.extract.identity import FeatureIdentity
from memtsm.model import LossConfig, ScorerConfig, build_scorer
from memtsm.train.checkpoint import (
    CHECKPOINT_VERSION,
    Checkpoint,
    CheckpointError,
    TrainingState,
    build_model_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from memtsm.train.config import TrainConfig

IDENTITY = {"feature_dim": 16, "layout": "max128", "feature_spec": {"clip_len": 16},
            "xfeat_weights_sha256": "ab" * 32}


def make_checkpoint(kind="memtsm", with_state=False):
    torch.manual_seed(0)
    config = ScorerConfig(feature_dim=16, kind=kind, channels=16, mem_size=4, head_hidden=8,
                          se_window=3, mil_hidden=(8, 4))
    model = build_scorer(config)
    state = None
    if with_state:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model(torch.randn(2, 5, 16)).scores.sum().backward()
        optimizer.step()
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
        state = TrainingState(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                              rng_state=torch.get_rng_state(), best_epoch=1, best_val_auc=0.9,
                              best_val_loss=0.3, history=({"epoch": 1, "val_auc": 0.9},))
    ckpt = Checkpoint(
        scorer_config=config, state_dict=model.state_dict(), feature_identity=IDENTITY,
        loss_config=LossConfig(topk=2), train_config=TrainConfig(features=("/f",), out="/o"),
        extract_config={"spec": {"clip_len": 16}}, val_video_threshold=0.42, epoch=3,
        val_metrics={"val_auc": np.float64(0.9), "val_ap": None}, training_state=state)
    return ckpt, model


def test_round_trip_is_plain_and_complete(tmp_path):
    ckpt, model = make_checkpoint(with_state=True)
    path = save_checkpoint(tmp_path / "last.pt", ckpt)
    raw = torch.load(path, weights_only=True)  # tensors and plain Python types only
    assert raw["format"] == "memtsm-scorer" and raw["format_version"] == CHECKPOINT_VERSION
    assert type(raw["val_metrics"]["val_auc"]) is float  # numpy scalar stored as float
    assert type(raw["torch_version"]) is str
    got = load_checkpoint(path)
    assert got.scorer_config == ckpt.scorer_config and got.loss_config == LossConfig(topk=2)
    assert got.train_config == ckpt.train_config
    assert got.feature_identity == FeatureIdentity.from_dict(IDENTITY)
    assert got.extract_config == ckpt.extract_config
    assert got.val_video_threshold == 0.42 and got.epoch == 3 and got.val_metrics["val_auc"] == 0.9
    assert got.training_state.history == ({"epoch": 1, "val_auc": 0.9},)
    assert torch.equal(got.training_state.rng_state, ckpt.training_state.rng_state)
    assert got.training_state.optimizer["state"].keys() == \
        ckpt.training_state.optimizer["state"].keys()
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("kind", ["memtsm", "mil-mlp"])
def test_rebuilt_model_matches_and_is_in_eval_mode(tmp_path, kind):
    ckpt, model = make_checkpoint(kind)
    save_checkpoint(tmp_path / "best.pt", ckpt)
    rebuilt = build_model_from_checkpoint(tmp_path / "best.pt")
    assert not rebuilt.training
    x = torch.randn(2, 7, 16)
    model.eval()
    torch.testing.assert_close(rebuilt(x).scores, model(x).scores, rtol=0, atol=0)


def evil_reduce(marker):
    class Evil:
        def __reduce__(self):
            return (builtins.open, (str(marker), "w"))  # would create the marker file
    return Evil()


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_checkpoint_is_refused_without_running_code(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "memtsm-scorer", "format_version": 1, "x": evil_reduce(marker)}
    with open(path, "wb") as handle:
        if writer == "pickle":
            pickle.dump(payload, handle)
        else:
            torch.save(payload, handle)
    with pytest.raises(CheckpointError, match="refused.*nothing was executed"):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        build_model_from_checkpoint(path)
    assert not marker.exists()
    # the same file with unrestricted unpickling does run code: the test can fail
    with open(path, "rb") as handle:
        if writer == "pickle":
            pickle.load(handle)
        else:
            torch.load(handle, weights_only=False)
    assert marker.exists()


def test_foreign_or_newer_files_are_refused(tmp_path):
    ckpt, model = make_checkpoint()
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a memtsm scorer checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    data = ckpt.to_dict()
    data["format_version"] = CHECKPOINT_VERSION + 1
    torch.save(data, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(tmp_path / "future.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "garbage.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_must_fit_the_architecture(tmp_path):
    ckpt, _ = make_checkpoint()
    other = ScorerConfig(feature_dim=16, channels=32, mem_size=4, head_hidden=8, se_window=3)
    bad = Checkpoint(scorer_config=other, state_dict=ckpt.state_dict, feature_identity=IDENTITY)
    with pytest.raises(CheckpointError, match="do not fit"):
        build_model_from_checkpoint(bad)


def test_failed_save_leaves_the_previous_file_intact(tmp_path):
    ckpt, _ = make_checkpoint()
    path = save_checkpoint(tmp_path / "best.pt", ckpt)
    before = path.read_bytes()
    bad = Checkpoint(scorer_config=ckpt.scorer_config, state_dict=ckpt.state_dict,
                     feature_identity=IDENTITY, val_metrics={"f": lambda: 0})
    with pytest.raises(TypeError, match="not a tensor or plain Python type"):
        save_checkpoint(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


LEGACY = Path(__file__).parents[1] / "data" / "legacy"


def test_non_checkpoints_are_named_for_what_they_are(tmp_path, ucf_videos):
    """A video, an HDF5 shard, a zip or a text file as --checkpoint: say what it is."""
    import zipfile

    from memtsm.train.checkpoint import load_checkpoint_bytes

    (tmp_path / "notes.txt").write_text("Abuse028_x264.mp4  Abuse  165  240  -1  -1\n")
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("model/weights.bin", b"\x00" * 8)
    cases = {
        ucf_videos / "Assault018_x264.mp4": "an MP4/ISO media file",
        LEGACY / "store-v0.1.0" / "shard-00000.h5": "an HDF5 file",
        tmp_path / "bundle.zip": "a zip archive without data.pkl .*model/weights.bin",
        tmp_path / "notes.txt": "a text file .*Abuse028_x264.mp4",
    }
    for path, what in cases.items():
        with pytest.raises(CheckpointError, match=f"not a memtsm checkpoint: it is {what}") as err:
            load_checkpoint(path)
        assert "WeightsUnpickler" not in str(err.value) and "refused" not in str(err.value)
        with pytest.raises(CheckpointError, match=f"not a memtsm checkpoint: it is {what}"):
            load_checkpoint_bytes(path.read_bytes(), path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="it is an empty file"):
        load_checkpoint(tmp_path / "empty.pt")


def test_refusal_of_unsafe_pickles_gives_torchs_reason(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": evil_reduce(tmp_path / "pwned")}, path)
    with pytest.raises(CheckpointError, match=r"nothing was executed \(torch: .*io\.open") as err:
        load_checkpoint(path)
    assert not str(err.value).rstrip().endswith(":")
    with open(path.with_suffix(".pkl"), "wb") as handle:
        pickle.dump({"x": 1}, handle, protocol=4)  # a plain pickle: not torch.load's format
    with pytest.raises(CheckpointError, match=r"nothing was executed \(torch: Unsupported"):
        load_checkpoint(path.with_suffix(".pkl"))


def test_foreign_torch_file_says_what_it_holds(tmp_path):
    _, model = make_checkpoint()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="not a memtsm scorer checkpoint: it is a torch "
                       "file holding a state dict of"):
        load_checkpoint(tmp_path / "weights.pt")


def test_validation_video_ids_round_trip_and_are_optional(tmp_path):
    ckpt, _ = make_checkpoint()
    ckpt = dataclasses.replace(ckpt, val_video_ids=("Normal/n1", "Assault/a1"))
    got = load_checkpoint(save_checkpoint(tmp_path / "best.pt", ckpt))
    assert got.val_video_ids == ("Normal/n1", "Assault/a1")
    raw = torch.load(tmp_path / "best.pt", weights_only=True)
    assert raw["format_version"] == CHECKPOINT_VERSION and raw["val_video_ids"] == list(
        got.val_video_ids)
    del raw["val_video_ids"]  # a file written before the field existed still loads
    torch.save(raw, tmp_path / "older.pt")
    assert load_checkpoint(tmp_path / "older.pt").val_video_ids is None
