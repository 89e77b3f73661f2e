"""MemTSMScorer: shapes, padding, receptive field, gradients, numerics, learnability."""

from __future__ import annotations

import pytest
import torch

from memtsm.model import (
    LossConfig,
    MemTSMScorer,
    ScorerConfig,
    ScorerOutput,
    build_scorer,
    memtsm_loss,
)

from ._helpers import lengths_mask, tiny_config, tiny_scorer


def test_smoke_and_cardinality() -> None:
    model = tiny_scorer()
    out = model(torch.randn(3, 11, 6))
    assert isinstance(out, ScorerOutput)
    assert out.scores.shape == out.logits.shape == out.recon_error.shape == (3, 11)
    assert out.readout.shape == out.embedding.shape == (3, 11, 16)
    assert out.attention.shape == (3, 11, 5)
    assert torch.all((out.scores > 0) & (out.scores < 1))
    torch.testing.assert_close(out.scores, torch.sigmoid(out.logits))


def test_default_config_builds_documented_architecture() -> None:
    model = build_scorer(ScorerConfig(feature_dim=32))
    assert isinstance(model, MemTSMScorer)
    assert len(model.blocks) == 2
    assert model.blocks[0].conv.kernel_size == (3,)
    assert model.blocks[0].shift.n_div == 8
    assert model.memory.slots.shape == (100, 512)
    assert model.receptive_field == 2 * (1 + 1 + 4)
    out = model(torch.randn(1, 4, 32))
    assert out.scores.shape == (1, 4)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, 2 * (1 + 1 + 2)),
        ({"num_blocks": 3, "temporal_kernel": 5, "se_window": 3}, 3 * (1 + 2 + 1)),
        ({"num_blocks": 1, "temporal_kernel": 1, "se_window": 1}, 1),
    ],
)
def test_receptive_field_is_exact(overrides: dict, expected: int) -> None:
    """A change ``rf`` steps away moves the score of ``t``; one ``rf + 1`` away does not."""
    model = tiny_scorer(dtype=torch.float64, **overrides)
    rf = model.receptive_field
    assert rf == expected
    t, time = 20, 41
    x = torch.randn(1, time, 6, dtype=torch.float64)
    base = model(x).scores[0, t]
    for offset, changes in ((rf, True), (-rf, True), (rf + 1, False), (-rf - 1, False)):
        moved = x.clone()
        moved[0, t + offset] += 3.0
        diff = (model(moved).scores[0, t] - base).abs().item()
        # The outermost influence passes through SE gates and can be ~1e-12 in size, but beyond
        # the receptive field no operation touches the segment, so the difference is exactly 0.
        assert (diff > 0.0) == changes, (offset, diff)


def test_windowed_scores_equal_whole_video_scores() -> None:
    torch.manual_seed(1)
    model = MemTSMScorer(tiny_config(se_window=9)).eval()  # default-sized SE window
    rf = model.receptive_field
    features = torch.randn(2, 50, 6)
    whole = model(features).scores
    begin, end = 10, 30
    lo, hi = max(0, begin - rf), min(50, end + rf)
    window = model(features[:, lo:hi]).scores
    torch.testing.assert_close(
        window[:, begin - lo : end - lo], whole[:, begin:end], atol=1e-5, rtol=0
    )
    # Without the context the scores at the window edges do change.
    bare = model(features[:, begin:end]).scores
    assert (bare[:, -1] - whole[:, end - 1]).abs().max() > 1e-5


def test_window_with_one_segment_too_little_context_differs() -> None:
    model = tiny_scorer(dtype=torch.float64, se_window=9)
    rf = model.receptive_field
    features = torch.randn(1, 50, 6, dtype=torch.float64)
    whole = model(features).scores
    begin, end = 20, 30
    exact = model(features[:, begin - rf : end + rf]).scores[:, rf:-rf]
    torch.testing.assert_close(exact, whole[:, begin:end], atol=1e-12, rtol=0)
    short = model(features[:, begin - rf : end + rf - 1]).scores
    assert (short[0, end - 1 - (begin - rf)] - whole[0, end - 1]).abs().item() > 0.0


def test_padding_mask_independence() -> None:
    model = tiny_scorer()
    short = torch.randn(1, 7, 6)
    longer = torch.randn(1, 15, 6)
    padding = 100.0 * torch.randn(1, 8, 6)  # loud garbage that must not leak
    batch = torch.cat([torch.cat([short, padding], dim=1), longer])
    out = model(batch, lengths_mask([7, 15], 15))
    alone_short = model(short)
    torch.testing.assert_close(out.scores[:1, :7], alone_short.scores, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.recon_error[:1, :7], alone_short.recon_error, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.scores[1:], model(longer).scores, atol=1e-6, rtol=0)


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    model = MemTSMScorer(tiny_config()).train()
    features = torch.randn(4, 9, 6)
    mask = lengths_mask([9, 6, 9, 4], 9)
    labels = torch.tensor([1, 0, 1, 0])
    out = model(features, mask)
    total, _ = memtsm_loss(out, mask, labels, LossConfig(), model.regularizer())
    total.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_gradcheck_float64() -> None:
    model = tiny_scorer(
        dtype=torch.float64,
        channels=4,
        n_div=2,
        mem_size=3,
        head_hidden=3,
        se_window=3,
        feature_dim=3,
    )
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    mask = lengths_mask([3, 4], 4)
    assert torch.autograd.gradcheck(lambda inp: model(inp, mask).scores, (x,))
    assert torch.autograd.gradcheck(lambda inp: model(inp, mask).recon_error, (x,))


@pytest.mark.parametrize("shape", [(2, 8, 6), (2, 1, 6), (1, 1, 6)])
def test_zero_input_and_single_step_are_finite(shape: tuple[int, int, int]) -> None:
    model = MemTSMScorer(tiny_config()).train()
    for features in (torch.zeros(shape), torch.randn(shape)):
        out = model(features)
        labels = torch.tensor([1, 0][: shape[0]])
        total, _ = memtsm_loss(out, None, labels, LossConfig(), model.regularizer())
        total.backward()
        assert all(torch.isfinite(t).all() for t in out)
        assert torch.isfinite(total)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        model.zero_grad()


def test_deterministic_under_fixed_seed() -> None:
    x = torch.randn(2, 10, 6)
    first = tiny_scorer(seed=123)(x)
    second = tiny_scorer(seed=123)(x)
    other = tiny_scorer(seed=124)(x)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.scores, other.scores)


def test_dropout_is_active_only_in_train_mode() -> None:
    model = tiny_scorer(dropout=0.5)
    x = torch.randn(2, 10, 6)
    assert torch.equal(model(x).scores, model(x).scores)
    model.train()
    assert not torch.equal(model(x).scores, model(x).scores)


def test_readable_errors() -> None:
    model = tiny_scorer()
    with pytest.raises(ValueError, match="rank"):
        model(torch.randn(10, 6))
    with pytest.raises(ValueError, match="6 channels"):
        model(torch.randn(1, 10, 5))
    with pytest.raises(ValueError, match="bool"):
        model(torch.randn(1, 10, 6), torch.ones(1, 10))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        model(torch.randn(1, 10, 6), torch.ones(2, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind"):
        MemTSMScorer(tiny_config(kind="mil-mlp"))


def _auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    diff = positive.unsqueeze(1) - negative.unsqueeze(0)
    return ((diff > 0).float() + 0.5 * (diff == 0).float()).mean().item()


def test_overfits_synthetic_weakly_labelled_batch() -> None:
    torch.manual_seed(0)
    batch, time, dim, n_events = 8, 16, 6, 3
    features = torch.randn(batch, time, dim)
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    event = torch.zeros(batch, time, dtype=torch.bool)
    for b in range(4):
        start = int(torch.randint(0, time - n_events + 1, ()))
        event[b, start : start + n_events] = True
    features[event] += 2.0  # anomalous segments: shifted mean
    lengths = [16, 14, 16, 12, 16, 13, 16, 15]
    mask = lengths_mask(lengths, time)
    for b, length in enumerate(lengths):
        event[b, length:] = False
        features[b, length:] = 0.0
    assert event.sum(1)[:4].min() > 0  # every anomalous video keeps at least one event

    model = MemTSMScorer(tiny_config(channels=32, mem_size=8, head_hidden=16, dropout=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    cfg = LossConfig()
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        total, _ = memtsm_loss(model(features, mask), mask, labels, cfg, model.regularizer())
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]
    model.eval()
    with torch.no_grad():
        scores = model(features, mask).scores
    normal_video = mask & (labels == 0).unsqueeze(1)
    # Event segments rank above every segment of normal videos ...
    assert _auc(scores[event], scores[normal_video]) > 0.95
    # ... and above most non-event segments of anomalous videos too (their neighbours share
    # context through the temporal blocks, and weak labels never name them as normal).
    assert _auc(scores[event], scores[mask & ~event]) > 0.8


def test_a_causal_scorer_never_looks_ahead() -> None:
    torch.manual_seed(0)
    model = tiny_scorer(causal=True).eval()
    assert model.lookahead == 0
    x = torch.randn(2, 30, model.config.feature_dim)
    changed = x.clone()
    changed[:, 20:] += 3.0
    with torch.no_grad():
        before, after = model(x).scores, model(changed).scores
    torch.testing.assert_close(after[:, :20], before[:, :20])
    assert not torch.allclose(after[:, 20:], before[:, 20:])
    # its past reach is exact: step 29 ignores steps before 29 - receptive_field
    far = x.clone()
    far[:, : 29 - model.receptive_field] += 3.0
    with torch.no_grad():
        torch.testing.assert_close(model(far).scores[:, 29], before[:, 29])
    bidirectional = tiny_scorer().eval()
    assert bidirectional.lookahead == bidirectional.receptive_field > 0
