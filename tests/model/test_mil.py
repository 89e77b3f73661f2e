"""MILScorer: the Sultani et al. per-segment MLP baseline."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memtsm.model import MILScorer, ScorerConfig, ScorerOutput, build_scorer, memtsm_loss, mil_loss

from ._helpers import lengths_mask, tiny_mil


def test_default_architecture_is_sultani() -> None:
    model = build_scorer(ScorerConfig(feature_dim=64, kind="mil-mlp"))
    assert isinstance(model, MILScorer)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 512), (512, 32), (32, 1)]
    dropouts = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [0.6, 0.6]
    # The released Keras model: ReLU after the first layer only, Glorot-normal kernels, zero bias.
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 1
    assert isinstance(model.body[1], nn.ReLU) and isinstance(model.body[4], nn.Identity)
    assert all(torch.all(m.bias == 0) for m in linears)
    first = linears[0].weight
    assert abs(float(first.detach().std()) - (2 / (64 + 512)) ** 0.5) < 0.01
    assert model.receptive_field == 0


def test_legacy_relu_variant_keeps_the_second_relu() -> None:
    model = build_scorer(ScorerConfig(feature_dim=8, kind="mil-mlp", mil_linear_second=False))
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2


def test_smoke_cardinality_and_memory_placeholders() -> None:
    model = tiny_mil()
    out = model(torch.randn(3, 7, 6))
    assert isinstance(out, ScorerOutput)
    assert out.scores.shape == out.logits.shape == (3, 7)
    assert torch.all((out.scores > 0) & (out.scores < 1))
    torch.testing.assert_close(out.scores, torch.sigmoid(out.logits))
    assert out.embedding.shape == out.readout.shape == (3, 7, 4)
    assert torch.all(out.readout == 0) and torch.all(out.recon_error == 0)
    assert out.recon_error.shape == (3, 7) and out.attention.shape == (3, 7, 0)
    assert model.regularizer().item() == 0.0


def test_segments_are_scored_independently() -> None:
    model = tiny_mil()
    x = torch.randn(1, 6, 6)
    moved = x.clone()
    moved[0, 3] += 1.0
    diff = (model(moved).scores - model(x).scores).abs()[0]
    assert diff[3] > 0
    assert torch.all(diff[[0, 1, 2, 4, 5]] == 0)


def test_padding_mask_independence() -> None:
    model = tiny_mil()
    short, longer = torch.randn(1, 3, 6), torch.randn(1, 8, 6)
    batch = torch.cat([torch.cat([short, 50 * torch.randn(1, 5, 6)], dim=1), longer])
    out = model(batch, lengths_mask([3, 8], 8))
    torch.testing.assert_close(out.scores[:1, :3], model(short).scores)
    torch.testing.assert_close(out.scores[1:], model(longer).scores)


def test_every_parameter_gets_a_gradient() -> None:
    model = tiny_mil().train()
    torch.manual_seed(1)
    mask = lengths_mask([5, 3, 5, 4], 5)
    labels = torch.tensor([1, 1, 0, 0])
    total, terms = mil_loss(model(torch.randn(4, 5, 6), mask), mask, labels)
    total.backward()
    assert terms.ranking > 0
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_memtsm_loss_also_runs_on_the_baseline() -> None:
    model = tiny_mil()
    labels = torch.tensor([1, 0])
    out = model(torch.randn(2, 5, 6))
    total, terms = memtsm_loss(out, None, labels, None, model.regularizer())
    assert terms.reconstruction.item() == 0.0 and terms.memory_reg.item() == 0.0
    torch.testing.assert_close(total, terms.focal)


def test_gradcheck_float64() -> None:
    model = tiny_mil(dtype=torch.float64, mil_hidden=(5, 3), feature_dim=3)
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: model(inp).scores, (x,))


@pytest.mark.parametrize("shape", [(2, 4, 6), (1, 1, 6)])
def test_zero_input_and_single_step_are_finite(shape: tuple[int, int, int]) -> None:
    model = tiny_mil().train()
    labels = torch.tensor([1, 0][: shape[0]])
    for x in (torch.zeros(shape), torch.randn(shape)):
        out = model(x)
        total, _ = mil_loss(out, None, labels)
        total.backward()
        assert torch.isfinite(out.scores).all() and torch.isfinite(total)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_deterministic_under_fixed_seed() -> None:
    x = torch.randn(2, 4, 6)
    assert torch.equal(tiny_mil(seed=5)(x).scores, tiny_mil(seed=5)(x).scores)
    assert not torch.equal(tiny_mil(seed=5)(x).scores, tiny_mil(seed=6)(x).scores)


def test_readable_errors() -> None:
    model = tiny_mil()
    with pytest.raises(ValueError, match="rank"):
        model(torch.randn(4, 6))
    with pytest.raises(ValueError, match="6 channels"):
        model(torch.randn(1, 4, 7))
    with pytest.raises(ValueError, match="bool"):
        model(torch.randn(1, 4, 6), torch.ones(1, 4))
    with pytest.raises(ValueError, match="kind"):
        MILScorer(ScorerConfig(feature_dim=6))
