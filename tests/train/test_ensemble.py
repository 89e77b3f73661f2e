"""`memtsm train --ensemble N`: members alike but for their seeds, one averaging checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_loop import StopAfter, tiny_config, write_bags
from typer.testing import CliRunner

from memtsm.cli import app
from memtsm.evaluate.metrics import f1_threshold
from memtsm.model import ScorerConfig, ScorerEnsemble, build_scorer, topk_video_score
from memtsm.score.stored import score_store
from memtsm.train.checkpoint import build_model_from_checkpoint, load_checkpoint
from memtsm.train.config import TrainConfig
from memtsm.train.data import load_bags
from memtsm.train.loop import _evaluate, _forward_all, split_bags, train

MEMBERS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_bags(tmp_path_factory.mktemp("store"), shift=3.0)


@pytest.fixture(scope="module")
def ensemble_run(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ensemble"
    return train(tiny_config(store, out, epochs=4, ensemble=MEMBERS)), out


def test_run_dir_holds_the_members_and_one_ensemble_checkpoint(ensemble_run):
    result, out = ensemble_run
    for name in ("config.yaml", "split.json", "ensemble.json", "best.pt"):
        assert (out / name).is_file(), name
    assert not (out / "last.pt").exists()
    assert len(result.members) == MEMBERS
    for k, member in enumerate(result.members):
        assert member.run_dir == out / "members" / str(k)
        assert (member.run_dir / "best.pt").is_file()
        assert member.val_video_ids == result.val_video_ids  # one split for all
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt.scorer_config.members == MEMBERS
    assert ckpt.train_config.ensemble == MEMBERS
    assert ckpt.val_video_ids == result.val_video_ids
    assert ckpt.val_video_threshold == result.val_video_threshold
    summary = json.loads((out / "ensemble.json").read_text())
    assert summary["val_auc"] == result.best_val_auc
    assert [m["best_epoch"] for m in summary["members"]] == [m.best_epoch for m in
                                                              result.members]
    assert TrainConfig.from_yaml(out / "config.yaml").ensemble == MEMBERS


def test_member_zero_is_the_plain_run_and_the_others_differ(ensemble_run, store, tmp_path):
    result, out = ensemble_run
    plain = train(tiny_config(store, tmp_path / "plain", epochs=4))
    weights = [load_checkpoint(m.run_dir / "last.pt").state_dict for m in result.members]
    alone = load_checkpoint(plain.last_checkpoint).state_dict
    assert all(torch.equal(alone[k], weights[0][k]) for k in alone)
    for other in weights[1:]:
        assert not all(torch.equal(weights[0][k], other[k]) for k in other)


def test_ensemble_scores_are_the_mean_of_its_members(ensemble_run, store):
    result, out = ensemble_run
    together = score_store(out / "best.pt", store, device="cpu")
    alone = [score_store(m.best_checkpoint, store, device="cpu") for m in result.members]
    spread = 0.0
    for video, scored in together.items():
        members = np.stack([a[video].scores for a in alone])
        np.testing.assert_allclose(scored.scores, members.mean(axis=0), atol=1e-6)
        spread = max(spread, float(np.ptp(members, axis=0).max()))
    assert spread > 1e-3  # the members really disagree somewhere: the mean is not trivial


def test_threshold_and_auc_are_the_ensembles_own_on_validation(ensemble_run):
    """Chosen on the validation videos' scores of the averaged model, not of any member."""
    result, out = ensemble_run
    ckpt = load_checkpoint(out / "best.pt")
    config = ckpt.train_config
    data = load_bags(config.features, config.num_segments)
    _, val_idx = split_bags(config, data)
    assert tuple(data.bags[i].video_id for i in val_idx) == result.val_video_ids
    val = _evaluate(build_model_from_checkpoint(ckpt), config, data, val_idx,
                    torch.device("cpu"), with_loss=False)
    threshold, _ = f1_threshold(val["video_scores"], val["labels"])
    assert ckpt.val_video_threshold == threshold == result.val_video_threshold
    assert ckpt.val_metrics["val_auc"] == val["auc"] == result.best_val_auc > 0.8
    # video score = top-k mean of the members' averaged segment scores
    outputs = [_forward_all(build_model_from_checkpoint(m.best_checkpoint), data, val_idx,
                            torch.device("cpu")) for m in result.members]
    mean_scores = torch.stack([output.scores for output, _ in outputs]).mean(dim=0)
    expected = topk_video_score(mean_scores, outputs[0][1], ckpt.loss_config.topk)
    np.testing.assert_allclose(val["video_scores"], expected.numpy(), atol=1e-6)


def test_resume_joins_again_and_refuses_to_overwrite(store, tmp_path):
    cfg = tiny_config(store, tmp_path / "cut", epochs=3, ensemble=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, StopAfter(4))  # member 0 finished, member 1 stopped after one epoch
    assert (tmp_path / "cut" / "members" / "0" / "best.pt").is_file()
    assert not (tmp_path / "cut" / "best.pt").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)
    resumed = train(cfg.replace(resume=True))
    full = train(tiny_config(store, tmp_path / "full", epochs=3, ensemble=2))
    assert resumed.val_video_threshold == full.val_video_threshold
    assert [m.best_epoch for m in resumed.members] == [m.best_epoch for m in full.members]
    a = load_checkpoint(tmp_path / "cut" / "best.pt").state_dict
    b = load_checkpoint(tmp_path / "full" / "best.pt").state_dict
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ensemble_over_a_single_run_is_refused(store, tmp_path):
    train(tiny_config(store, tmp_path / "run", epochs=1))
    with pytest.raises(FileExistsError, match="single training run"):
        train(tiny_config(store, tmp_path / "run", epochs=1, ensemble=2, resume=True))


@pytest.mark.parametrize(("changes", "message"), [
    ({"ensemble": 0}, "--ensemble must be an int >= 1"),
    ({"member": -1}, "--member must be an int >= 0"),
    ({"ensemble": 2, "member": 1}, "cannot be an ensemble"),
])
def test_config_errors(store, tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(store, tmp_path, **changes)


def test_scorer_ensemble_module():
    config = ScorerConfig(feature_dim=8, channels=16, mem_size=4, head_hidden=8, members=2)
    model = build_scorer(config).eval()
    assert isinstance(model, ScorerEnsemble) and len(model.members) == 2
    single = build_scorer(ScorerConfig(feature_dim=8, channels=16, mem_size=4, head_hidden=8))
    assert model.receptive_field == single.receptive_field
    features = torch.randn(2, 10, 8)
    mask = torch.ones(2, 10, dtype=torch.bool)
    out = model(features, mask)
    members = [m(features, mask) for m in model.members]
    torch.testing.assert_close(out.scores, (members[0].scores + members[1].scores) / 2)
    torch.testing.assert_close(out.logits.sigmoid(), out.scores)
    assert out.attention.shape == (2, 10, 8)  # both members' slots
    with pytest.raises(ValueError, match="at least 2"):
        ScorerEnsemble([single])
    with pytest.raises(ValueError, match="members must be an int >= 1"):
        ScorerConfig(feature_dim=8, members=0)


def test_cli_trains_an_ensemble(store, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, [
        "train", "--features", str(store), "--out", str(out), "--ensemble", "2", "--epochs",
        "1", "--steps", "2", "--channels", "16", "--mem-size", "4", "--device", "cpu",
        "--quiet"])
    assert result.exit_code == 0, result.output
    assert "ensemble of 2 (member best epochs 1, 1)" in result.output
    model = build_model_from_checkpoint(out / "best.pt")
    assert isinstance(model, ScorerEnsemble)
