"""Squeeze-and-excitation with a local (or global) masked temporal squeeze."""

from __future__ import annotations

import math

import pytest
import torch

from memtsm.model import SqueezeExcite, masked_global_average, masked_moving_average

from ._helpers import lengths_mask


def naive_moving_average(x: torch.Tensor, window: int, mask: torch.Tensor) -> torch.Tensor:
    half = window // 2
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            steps = [s for s in range(t - half, t + half + 1) if 0 <= s < x.shape[1] and mask[b, s]]
            if steps:
                out[b, t] = x[b, steps].mean(dim=0)
    return out


def test_moving_average_matches_loop() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    mask = torch.rand(3, 7) > 0.3
    mask[2] = False  # a video without valid steps -> zeros
    for window in (1, 3, 5, 9):
        torch.testing.assert_close(
            masked_moving_average(x, window, mask), naive_moving_average(x, window, mask)
        )


def test_global_average_ignores_padding() -> None:
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(masked_global_average(x, mask), torch.tensor([[[2.0]]]))


def test_shape_and_gate_range() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(8, reduction=4, window=3)
    x = torch.randn(2, 6, 8)
    y = se(x)
    assert y.shape == (2, 6, 8)
    gate = y / x
    assert torch.all((gate > 0) & (gate < 1))


def test_global_squeeze_is_classic_se() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(8, reduction=2, window=None)
    x = torch.randn(2, 5, 8)
    lin1, _, lin2, _ = se.excite
    squeezed = x.mean(dim=1, keepdim=True)
    expected = x * torch.sigmoid(lin2(torch.relu(lin1(squeezed))))
    torch.testing.assert_close(se(x), expected)
    assert lin1.out_features == 4


def test_local_squeeze_receptive_field_is_half_window() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(8, reduction=1, window=5).double()
    assert se.receptive_field == 2
    x = torch.randn(1, 15, 8, dtype=torch.float64)
    t = 7
    base = se(x)[0, t]
    near, far = x.clone(), x.clone()
    near[0, t + 2] += 1.0
    far[0, t + 3] += 1.0
    assert not torch.allclose(se(near)[0, t], base)
    torch.testing.assert_close(se(far)[0, t], base, rtol=0, atol=0)


def test_global_squeeze_has_unbounded_reach() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(8, reduction=1, window=None).double()
    assert se.receptive_field == math.inf
    x = torch.randn(1, 30, 8, dtype=torch.float64)
    far = x.clone()
    far[0, 29] += 1.0
    assert not torch.allclose(se(far)[0, 0], se(x)[0, 0])


@pytest.mark.parametrize("window", [3, None])
def test_padding_independence(window: int | None) -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(8, window=window)
    short = torch.randn(1, 4, 8)
    longer = torch.randn(1, 9, 8)
    batch = torch.cat([torch.cat([short, 1e3 * torch.randn(1, 5, 8)], dim=1), longer])
    out = se(batch, lengths_mask([4, 9], 9))
    torch.testing.assert_close(out[:1, :4], se(short))
    torch.testing.assert_close(out[1:], se(longer))


def test_gradcheck_float64() -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(4, reduction=2, window=3).double()
    x = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = lengths_mask([3, 5], 5)
    assert torch.autograd.gradcheck(lambda inp: se(inp, mask), (x,))


def test_zero_input_and_single_step_are_finite() -> None:
    se = SqueezeExcite(8)
    for x in (torch.zeros(2, 5, 8, requires_grad=True), torch.randn(2, 1, 8, requires_grad=True)):
        y = se(x)
        y.sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()


def test_readable_errors() -> None:
    se = SqueezeExcite(8)
    with pytest.raises(ValueError, match="rank"):
        se(torch.randn(5, 8))
    with pytest.raises(ValueError, match="8 channels"):
        se(torch.randn(1, 5, 6))
    with pytest.raises(ValueError, match="window"):
        SqueezeExcite(8, window=4)
    with pytest.raises(ValueError, match="reduction"):
        SqueezeExcite(8, reduction=0)
    with pytest.raises(ValueError, match="window"):
        masked_moving_average(torch.randn(1, 5, 8), 0)
