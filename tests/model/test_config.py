"""ScorerConfig / LossConfig: defaults, validation and JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from memtsm.model import LossConfig, ScorerConfig, build_scorer


def test_documented_defaults() -> None:
    cfg = ScorerConfig(feature_dim=64)
    assert (cfg.kind, cfg.channels, cfg.num_blocks, cfg.n_div) == ("memtsm", 512, 2, 8)
    assert (cfg.mem_size, cfg.se_reduction, cfg.se_window, cfg.temporal_kernel) == (100, 4, 9, 3)
    assert cfg.mil_hidden == (512, 32) and cfg.mil_dropout == 0.6
    loss = LossConfig()
    assert (loss.focal_alpha, loss.focal_gamma, loss.recon_weight) == (0.85, 2.0, 0.5)
    assert (loss.mem_reg_weight, loss.topk) == (0.01, 3)
    assert loss.smoothness_weight == loss.sparsity_weight == 0.0


def test_json_round_trip() -> None:
    cfg = ScorerConfig(feature_dim=64, kind="mil-mlp", channels=64, mil_hidden=(128, 16))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["mil_hidden"] == [128, 16]
    assert ScorerConfig.from_dict(data) == cfg
    loss = LossConfig(topk=5, recon_weight=1.0)
    assert LossConfig.from_dict(json.loads(json.dumps(loss.to_dict()))) == loss


def test_frozen() -> None:
    cfg = ScorerConfig(feature_dim=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.channels = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "transformer"),
        ("feature_dim", 0),
        ("channels", 4),  # < n_div
        ("num_blocks", 0),
        ("n_div", 1),
        ("temporal_kernel", 2),
        ("se_reduction", 0),
        ("se_window", 4),
        ("mem_size", 0),
        ("mem_temperature", 0.0),
        ("dropout", 1.0),
        ("head_hidden", 0),
        ("mil_hidden", (512,)),
        ("mil_dropout", -0.1),
        ("channels", True),
    ],
)
def test_scorer_validation_names_the_field(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"feature_dim": 8, field: value}
    with pytest.raises(ValueError, match=field):
        ScorerConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("focal_alpha", 1.2),
        ("focal_gamma", -1.0),
        ("recon_weight", -0.5),
        ("mem_reg_weight", -1.0),
        ("topk", 0),
        ("smoothness_weight", -1.0),
        ("sparsity_weight", -1.0),
    ],
)
def test_loss_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        LossConfig(**{field: value})  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(ValueError, match="colour"):
        ScorerConfig.from_dict({"feature_dim": 8, "colour": "red"})
    with pytest.raises(ValueError, match="feature_dim"):
        ScorerConfig.from_dict({"channels": 8})


def test_build_scorer_rejects_non_config() -> None:
    with pytest.raises(ValueError, match="ScorerConfig"):
        build_scorer({"feature_dim": 8})  # type: ignore[arg-type]
