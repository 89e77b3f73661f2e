"""RTFMScorer and rtfm_loss: the feature-magnitude baseline of Tian et al. (ICCV 2021)."""

from __future__ import annotations

import math

import pytest
import torch

from memtsm.model import RTFMScorer, ScorerConfig, ScorerOutput, build_scorer, rtfm_loss
from memtsm.model.config import RTFM_MARGIN, RTFM_SEPARABILITY_WEIGHT


def tiny_rtfm(dim: int = 6) -> RTFMScorer:
    torch.manual_seed(0)
    return build_scorer(ScorerConfig(feature_dim=dim, kind="rtfm", rtfm_channels=16,
                                     rtfm_hidden=(8, 4)))


def output_of(scores: list[list[float]], magnitudes: list[list[float]]) -> ScorerOutput:
    """An output whose embeddings are ``[m, 0]`` vectors: their norms are the magnitudes."""
    s = torch.tensor(scores)
    m = torch.tensor(magnitudes)
    embedding = torch.stack([m, torch.zeros_like(m)], dim=-1)
    zeros = torch.zeros_like(s)
    return ScorerOutput(scores=s, logits=torch.logit(s), readout=embedding, recon_error=zeros,
                        attention=s.new_zeros(*s.shape, 0), embedding=embedding)


def test_shapes_and_unbounded_receptive_field() -> None:
    model = tiny_rtfm()
    assert isinstance(model, RTFMScorer) and model.receptive_field is None
    out = model(torch.randn(3, 9, 6))
    assert out.scores.shape == (3, 9) and out.embedding.shape == (3, 9, 16)
    assert torch.all((out.scores > 0) & (out.scores < 1))
    assert out.attention.shape == (3, 9, 0) and torch.all(out.recon_error == 0)
    assert model.regularizer().item() == 0.0


def test_scores_do_not_depend_on_padding() -> None:
    model = tiny_rtfm().eval()
    video = torch.randn(1, 7, 6)
    alone = model(video).scores
    padded = torch.cat([video, torch.randn(1, 5, 6) * 100], dim=1)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, :7] = True
    torch.testing.assert_close(model(padded, mask).scores[:, :7], alone, atol=1e-6, rtol=1e-5)


def test_attention_reaches_the_whole_video() -> None:
    model = tiny_rtfm().eval()
    video = torch.randn(1, 40, 6)
    changed = video.clone()
    changed[0, -1] += 5.0  # 39 steps away from the first: no conv reaches that far
    with torch.no_grad():
        moved = (model(video).embedding[0, 0] - model(changed).embedding[0, 0]).abs().max()
    assert moved > 1e-5


def test_loss_by_hand() -> None:
    # Video 0 normal, video 1 anomalous; k = 2. Top-2 magnitudes: normal {5, 3} -> 4 with
    # scores {0.2, 0.4} -> 0.3; anomalous {9, 7} -> 8 with scores {0.8, 0.6} -> 0.7.
    out = output_of([[0.2, 0.1, 0.4], [0.5, 0.8, 0.6]], [[5.0, 1.0, 3.0], [2.0, 9.0, 7.0]])
    labels = torch.tensor([0.0, 1.0])
    total, terms = rtfm_loss(out, None, labels, k=2, margin=10.0, separability_weight=0.5,
                             smooth=0.0, sparse=0.0)
    assert terms.separability.item() == pytest.approx(10.0 - 8.0 + 4.0)
    bce = -(math.log(0.7) + math.log(1 - 0.3)) / 2
    assert terms.classification.item() == pytest.approx(bce, rel=1e-6)
    assert total.item() == pytest.approx(bce + 0.5 * 6.0, rel=1e-6)
    assert terms.focal.item() == terms.ranking.item() == terms.reconstruction.item() == 0.0


def test_loss_ignores_padded_snippets_and_uses_paper_weights() -> None:
    out = output_of([[0.2, 0.9], [0.7, 0.99]], [[4.0, 50.0], [6.0, 80.0]])
    mask = torch.tensor([[True, False], [True, False]])
    labels = torch.tensor([0.0, 1.0])
    _, terms = rtfm_loss(out, mask, labels, k=3)
    assert terms.separability.item() == pytest.approx(RTFM_MARGIN - 6.0 + 4.0)
    bce = -(math.log(0.7) + math.log(0.8)) / 2
    assert terms.classification.item() == pytest.approx(bce, rel=1e-6)
    assert RTFM_SEPARABILITY_WEIGHT == pytest.approx(2e-4 * RTFM_MARGIN)


def test_magnitudes_alone_give_the_same_loss() -> None:
    """A distributed run gathers only the magnitudes ``[B, T, 1]``: same loss."""
    model = tiny_rtfm()
    features, labels = torch.randn(4, 8, 6), torch.tensor([0.0, 0.0, 1.0, 1.0])
    out = model(features)
    full, _ = rtfm_loss(out, None, labels)
    gathered = out._replace(embedding=out.embedding.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(rtfm_loss(gathered, None, labels)[0], full)


def test_separability_raises_anomalous_magnitudes() -> None:
    model = tiny_rtfm()
    features = torch.randn(4, 8, 6)
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    norms = model(features).embedding.detach().norm(dim=-1)
    gap_before = float(norms[2:].amax(dim=1).mean() - norms[:2].amax(dim=1).mean())
    for _ in range(30):
        _, terms = rtfm_loss(model(features), None, labels, separability_weight=1.0)
        optimizer.zero_grad()
        terms.separability.backward()
        optimizer.step()
    norms = model(features).embedding.detach().norm(dim=-1)
    gap_after = float(norms[2:].amax(dim=1).mean() - norms[:2].amax(dim=1).mean())
    assert gap_after > gap_before + 5.0
