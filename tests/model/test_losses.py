"""Loss functions: hand-computed cases, masking, edge cases, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from memtsm.model import (
    LossConfig,
    ScorerOutput,
    focal_loss,
    memory_reconstruction_loss,
    memtsm_loss,
    mil_loss,
    mil_ranking_hinge,
    sparsity_loss,
    sultani_ranking_loss,
    temporal_smoothness_loss,
    topk_video_score,
)

T_ = True
F_ = False


def make_output(scores: torch.Tensor, recon: torch.Tensor) -> ScorerOutput:
    b, t = scores.shape
    return ScorerOutput(
        scores=scores,
        logits=torch.logit(scores),
        readout=torch.zeros(b, t, 2),
        recon_error=recon,
        attention=torch.zeros(b, t, 3),
        embedding=torch.zeros(b, t, 2),
    )


# ----------------------------------------------------------------------------- top-k


def test_topk_hand_computed() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.2, 0.4, 0.3, 0.6]])
    torch.testing.assert_close(topk_video_score(scores, None, 2), torch.tensor([0.8, 0.5]))
    torch.testing.assert_close(topk_video_score(scores, None, 1), torch.tensor([0.9, 0.6]))


def test_topk_ignores_padding_and_clips_k() -> None:
    scores = torch.tensor([[0.1, 0.3, 0.99, 0.99], [0.2, 0.4, 0.3, 0.6]])
    mask = torch.tensor([[T_, T_, F_, F_], [T_, T_, T_, T_]])
    # video 0: only 2 valid segments -> k clipped to 2; the padded 0.99s never count.
    torch.testing.assert_close(topk_video_score(scores, mask, 3), torch.tensor([0.2, 13 / 30]))
    # k larger than T
    torch.testing.assert_close(topk_video_score(scores, mask, 10), torch.tensor([0.2, 0.375]))


def test_topk_gradient_reaches_only_selected_segments() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7]], requires_grad=True)
    topk_video_score(scores, None, 2).sum().backward()
    torch.testing.assert_close(scores.grad, torch.tensor([[0.0, 0.5, 0.0, 0.5]]))


def test_topk_errors() -> None:
    with pytest.raises(ValueError, match="rank"):
        topk_video_score(torch.rand(4), None, 2)
    with pytest.raises(ValueError, match="k must"):
        topk_video_score(torch.rand(2, 4), None, 0)
    with pytest.raises(ValueError, match="valid segment"):
        topk_video_score(torch.rand(2, 4), torch.tensor([[T_] * 4, [F_] * 4]), 2)


# ----------------------------------------------------------------------------- focal


def test_focal_hand_computed() -> None:
    # p=0.9, y=1: 0.85 * (1 - 0.9)^2 * -ln(0.9)
    expected_pos = 0.85 * 0.01 * -math.log(0.9)
    got = focal_loss(torch.tensor([0.9]), torch.tensor([1]))
    assert got.item() == pytest.approx(expected_pos, rel=1e-5)
    # p=0.2, y=0: (1 - 0.85) * 0.2^2 * -ln(0.8)
    expected_neg = 0.15 * 0.04 * -math.log(0.8)
    got = focal_loss(torch.tensor([0.2]), torch.tensor([0.0]))
    assert got.item() == pytest.approx(expected_neg, rel=1e-5)
    both = focal_loss(torch.tensor([0.9, 0.2]), torch.tensor([1, 0]))
    assert both.item() == pytest.approx((expected_pos + expected_neg) / 2, rel=1e-5)


def test_focal_with_gamma_zero_is_weighted_bce() -> None:
    prob = torch.tensor([0.3, 0.8, 0.6, 0.1], dtype=torch.float64)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    weights = torch.where(target > 0, 0.7, 0.3).to(torch.float64)
    expected = F.binary_cross_entropy(prob, target, weight=weights)
    torch.testing.assert_close(focal_loss(prob, target, alpha=0.7, gamma=0.0), expected)


def test_focal_down_weights_easy_examples_and_is_finite_at_extremes() -> None:
    easy = focal_loss(torch.tensor([0.95]), torch.tensor([1]))
    hard = focal_loss(torch.tensor([0.3]), torch.tensor([1]))
    assert hard > 50 * easy
    prob = torch.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    loss = focal_loss(prob, torch.tensor([1, 0, 0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(prob.grad).all()


def test_focal_errors() -> None:
    with pytest.raises(ValueError, match="rank 1"):
        focal_loss(torch.rand(2, 3), torch.ones(2))
    with pytest.raises(ValueError, match="target"):
        focal_loss(torch.rand(3), torch.ones(2))
    with pytest.raises(ValueError, match="alpha"):
        focal_loss(torch.rand(3), torch.ones(3), alpha=1.5)


# ----------------------------------------------------------------------------- memory


def test_reconstruction_hand_computed() -> None:
    recon = torch.tensor([[1.0, 2.0, 30.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    mask = torch.tensor([[T_, T_, F_], [T_, T_, T_], [T_, F_, F_]])
    labels = torch.tensor([0, 1, 0])
    # normal videos 0 and 2, valid segments: 1, 2, 7 -> 10 / 3
    got = memory_reconstruction_loss(recon, mask, labels)
    assert got.item() == pytest.approx(10 / 3)


def test_reconstruction_is_zero_without_normal_videos() -> None:
    recon = torch.rand(2, 3, requires_grad=True)
    got = memory_reconstruction_loss(recon, None, torch.tensor([1, 1]))
    assert got.item() == 0.0
    got.backward()  # still part of the graph
    assert torch.all(recon.grad == 0)


def test_reconstruction_errors() -> None:
    with pytest.raises(ValueError, match="labels"):
        memory_reconstruction_loss(torch.rand(2, 3), None, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="rank"):
        memory_reconstruction_loss(torch.rand(2, 3, 1), None, torch.tensor([0, 1]))


# ----------------------------------------------------------------------------- Sultani


def test_sultani_hand_computed() -> None:
    scores = torch.tensor([[0.2, 0.8, 0.6], [0.3, 0.5, 0.4]])
    labels = torch.tensor([1, 0])
    # hinge: 1 - 0.8 + 0.5 = 0.7; smoothness (anomalous only): 0.6^2 + 0.2^2 = 0.4;
    # sparsity (anomalous only): 1.6
    assert mil_ranking_hinge(scores, None, labels).item() == pytest.approx(0.7)
    assert temporal_smoothness_loss(scores, None, labels).item() == pytest.approx(0.4)
    assert sparsity_loss(scores, None, labels).item() == pytest.approx(1.6)
    got = sultani_ranking_loss(scores, None, labels, smooth=0.1, sparse=0.01)
    assert got.item() == pytest.approx(0.7 + 0.1 * 0.4 + 0.01 * 1.6)
    default = sultani_ranking_loss(scores, None, labels)
    assert default.item() == pytest.approx(0.7 + 8e-5 * 0.4 + 8e-5 * 1.6)


def test_sultani_averages_over_all_pairs_and_respects_mask() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.4, 0.2, 0.95], [0.6, 0.1, 0.0]])
    mask = torch.tensor([[T_, T_, F_], [T_, T_, F_], [T_, T_, T_]])
    labels = torch.tensor([1, 1, 0])
    # maxima over valid: 0.9, 0.4 (the padded 0.95 is ignored), normal 0.6
    # pairs: (0.9, 0.6) -> 0.7, (0.4, 0.6) -> 1.2; mean 0.95
    assert mil_ranking_hinge(scores, mask, labels).item() == pytest.approx(0.95)
    # smoothness over valid neighbours only: 0.8^2 and 0.2^2 -> mean over 2 videos
    assert temporal_smoothness_loss(scores, mask, labels).item() == pytest.approx((0.64 + 0.04) / 2)
    assert sparsity_loss(scores, mask, labels).item() == pytest.approx((1.0 + 0.6) / 2)


def test_sultani_without_pairs_is_zero_hinge() -> None:
    scores = torch.rand(2, 4)
    assert mil_ranking_hinge(scores, None, torch.tensor([1, 1])).item() == 0.0
    assert mil_ranking_hinge(scores, None, torch.tensor([0, 0])).item() == 0.0
    assert sparsity_loss(scores, None, torch.tensor([0, 0])).item() == 0.0


def test_sultani_errors() -> None:
    with pytest.raises(ValueError, match="rank"):
        sultani_ranking_loss(torch.rand(4), None, torch.tensor([1, 0, 1, 0]))
    with pytest.raises(ValueError, match="labels"):
        sultani_ranking_loss(torch.rand(2, 4), None, torch.tensor([1]))


# ----------------------------------------------------------------------------- combined


def test_memtsm_loss_composition_hand_computed() -> None:
    scores = torch.tensor([[0.9, 0.2, 0.7], [0.1, 0.3, 0.2]])
    recon = torch.tensor([[5.0, 5.0, 5.0], [1.0, 2.0, 9.0]])
    mask = torch.tensor([[T_, T_, T_], [T_, T_, F_]])
    labels = torch.tensor([1, 0])
    reg = torch.tensor(0.4)
    cfg = LossConfig(topk=2)
    total, terms = memtsm_loss(make_output(scores, recon), mask, labels, cfg, reg)
    video = torch.tensor([0.8, 0.2])  # top-2 means
    focal = (0.85 * 0.2**2 * -math.log(0.8) + 0.15 * 0.2**2 * -math.log(0.8)) / 2
    assert terms.focal.item() == pytest.approx(focal, rel=1e-5)
    torch.testing.assert_close(terms.focal, focal_loss(video, labels))
    assert terms.reconstruction.item() == pytest.approx(1.5)  # normal video, valid: 1, 2
    assert terms.memory_reg.item() == pytest.approx(0.4)
    assert terms.ranking.item() == 0.0
    assert total.item() == pytest.approx(focal + 0.5 * 1.5 + 0.01 * 0.4, rel=1e-5)
    assert terms.total is total


def test_memtsm_loss_optional_smoothness_and_sparsity() -> None:
    scores = torch.tensor([[0.9, 0.2, 0.7], [0.1, 0.3, 0.2]])
    out = make_output(scores, torch.zeros(2, 3))
    labels = torch.tensor([1, 0])
    base, terms = memtsm_loss(out, None, labels, LossConfig(), None)
    cfg = LossConfig(smoothness_weight=0.5, sparsity_weight=0.25)
    weighted, _ = memtsm_loss(out, None, labels, cfg, None)
    assert terms.smoothness.item() == pytest.approx(0.49 + 0.25)
    assert terms.sparsity.item() == pytest.approx(1.8)
    assert weighted.item() == pytest.approx(base.item() + 0.5 * 0.74 + 0.25 * 1.8, rel=1e-5)


def test_memtsm_loss_rejects_non_scalar_regularizer() -> None:
    out = make_output(torch.rand(2, 3) * 0.8 + 0.1, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="scalar"):
        memtsm_loss(out, None, torch.tensor([1, 0]), LossConfig(), torch.ones(2))


def test_mil_loss_terms() -> None:
    scores = torch.tensor([[0.2, 0.8, 0.6], [0.3, 0.5, 0.4]])
    labels = torch.tensor([1, 0])
    total, terms = mil_loss(make_output(scores, torch.zeros(2, 3)), None, labels)
    torch.testing.assert_close(total, sultani_ranking_loss(scores, None, labels))
    assert terms.ranking.item() == pytest.approx(0.7)
    assert terms.focal.item() == terms.reconstruction.item() == terms.memory_reg.item() == 0.0


def test_losses_gradcheck_float64() -> None:
    torch.manual_seed(0)
    scores = (torch.rand(3, 5, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    mask = torch.tensor([[T_] * 5, [T_, T_, T_, F_, F_], [T_] * 5])
    labels = torch.tensor([1, 0, 1])
    prob = (torch.rand(3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: topk_video_score(s, mask, 3), (scores,))
    assert torch.autograd.gradcheck(lambda p: focal_loss(p, labels), (prob,))
    assert torch.autograd.gradcheck(lambda s: sultani_ranking_loss(s, mask, labels), (scores,))
    assert torch.autograd.gradcheck(
        lambda s: memory_reconstruction_loss(s, mask, labels), (scores,)
    )
