"""Temporal shift: vectorised implementation against a literal per-timestep loop."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memtsm.model import TemporalShift, temporal_shift


def naive_shift(x: torch.Tensor, n_div: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """TSM (Lin et al. 2019), written out step by step.

    fold = C // n_div; channels [0, fold) take x[t + 1] ("shift left"), channels [fold, 2 fold)
    take x[t - 1] ("shift right"), zero outside [0, T); the rest are copied. Padded steps are
    zeroed before shifting and in the output.
    """
    b_size, t_size, c_size = x.shape
    fold = c_size // n_div

    def value(b: int, t: int, c: int) -> torch.Tensor:
        if not 0 <= t < t_size:
            return x.new_zeros(())
        if mask is not None and not bool(mask[b, t]):
            return x.new_zeros(())
        return x[b, t, c]

    rows = []
    for b in range(b_size):
        steps = []
        for t in range(t_size):
            chans = []
            for c in range(c_size):
                if mask is not None and not bool(mask[b, t]):
                    chans.append(x.new_zeros(()))
                elif c < fold:
                    chans.append(value(b, t + 1, c))
                elif c < 2 * fold:
                    chans.append(value(b, t - 1, c))
                else:
                    chans.append(value(b, t, c))
            steps.append(torch.stack(chans))
        rows.append(torch.stack(steps))
    return torch.stack(rows)


@st.composite
def shift_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, int, torch.Tensor | None]:
    b = draw(st.integers(1, 3))
    t = draw(st.integers(1, 6))
    c = draw(st.integers(2, 10))
    n_div = draw(st.integers(2, c))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, c, generator=gen, dtype=torch.float64)
    use_mask = draw(st.booleans())
    mask = torch.rand(b, t, generator=gen) > 0.3 if use_mask else None
    return x, n_div, mask


@settings(max_examples=40, deadline=None, database=None)
@given(shift_inputs())
def test_matches_naive_loop_forward_and_gradient(args: tuple) -> None:
    x, n_div, mask = args
    x_fast = x.clone().requires_grad_(True)
    x_slow = x.clone().requires_grad_(True)
    out_fast = temporal_shift(x_fast, n_div, mask)
    out_slow = naive_shift(x_slow, n_div, mask)
    torch.testing.assert_close(out_fast, out_slow, rtol=0, atol=0)
    weights = torch.randn_like(out_fast)
    # "+ 0 * x.sum()" keeps a graph when every output channel is a zero fill (e.g. T=1, C=2).
    ((out_fast * weights).sum() + 0 * x_fast.sum()).backward()
    ((out_slow * weights).sum() + 0 * x_slow.sum()).backward()
    torch.testing.assert_close(x_fast.grad, x_slow.grad, rtol=0, atol=0)


def test_known_small_case() -> None:
    # B=1, T=3, C=4, n_div=4: channel 0 shifts back, channel 1 forward, channels 2-3 stay.
    x = torch.arange(1.0, 13.0).reshape(1, 3, 4)
    expected = torch.tensor([[[5.0, 0.0, 3.0, 4.0], [9.0, 2.0, 7.0, 8.0], [0.0, 6.0, 11.0, 12.0]]])
    torch.testing.assert_close(temporal_shift(x, 4), expected)


def test_default_fraction_is_one_eighth_each_way() -> None:
    x = torch.randn(2, 5, 16)
    out = temporal_shift(x)  # n_div=8 -> 2 channels each way
    torch.testing.assert_close(out[:, :-1, :2], x[:, 1:, :2])
    torch.testing.assert_close(out[:, 1:, 2:4], x[:, :-1, 2:4])
    torch.testing.assert_close(out[:, :, 4:], x[:, :, 4:])
    assert torch.all(out[:, -1, :2] == 0) and torch.all(out[:, 0, 2:4] == 0)


def test_single_step_sequence_zero_fills() -> None:
    x = torch.randn(2, 1, 8)
    out = temporal_shift(x, 4)
    assert torch.all(out[..., :4] == 0)
    torch.testing.assert_close(out[..., 4:], x[..., 4:])


def test_padding_never_leaks_into_valid_steps() -> None:
    n_div, length, padded = 4, 5, 9
    short = torch.randn(1, length, 8)
    garbage = 1e3 * torch.randn(1, padded - length, 8)
    batched = torch.cat([short, garbage], dim=1)
    mask = torch.arange(padded).unsqueeze(0) < length
    out = temporal_shift(batched, n_div, mask)
    alone = temporal_shift(short, n_div)
    torch.testing.assert_close(out[:, :length], alone)
    assert torch.all(out[:, length:] == 0)
    # The last valid step sees zeros, not the first padded step.
    assert torch.all(out[0, length - 1, :2] == 0)


def test_module_is_parameter_free_and_matches_function() -> None:
    module = TemporalShift(4)
    assert list(module.parameters()) == []
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(module(x), temporal_shift(x, 4))
    assert module.receptive_field == 1


def test_gradcheck_float64() -> None:
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    assert torch.autograd.gradcheck(lambda inp: temporal_shift(inp, 3, mask), (x,))


@pytest.mark.parametrize(
    ("x", "n_div", "mask", "message"),
    [
        (torch.randn(4, 8), 4, None, "rank"),
        (torch.randn(1, 2, 4, 8), 4, None, "rank"),
        (torch.randn(1, 4, 3), 4, None, "channels"),
        (torch.randn(1, 4, 8), 1, None, "n_div"),
        (torch.randint(0, 3, (1, 4, 8)), 4, None, "floating"),
        (torch.randn(1, 4, 8), 4, torch.ones(1, 4), "bool"),
        (torch.randn(1, 4, 8), 4, torch.ones(1, 5, dtype=torch.bool), r"\[B, T\]"),
    ],
)
def test_readable_errors(x: torch.Tensor, n_div: int, mask: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        temporal_shift(x, n_div, mask)  # type: ignore[arg-type]


def test_module_rejects_bad_n_div() -> None:
    with pytest.raises(ValueError, match="n_div"):
        TemporalShift(0)
