"""Training objectives of the scorers: pure functions of the batch tensors.

Everything that depends on the batch -- padding masks ``[B, T]`` (True = valid segment) and video
labels ``[B]`` (0 = normal, 1 = anomalous; any value >= 0.5 counts as anomalous) -- is passed as
an argument, never stored in an object.

MemTSM objective (:func:`memtsm_loss`)::

    video score   v_b   = mean of the top-k valid segment scores of video b
    focal               = mean_b FL(v_b, y_b)                        (Lin et al., ICCV 2017)
    reconstruction      = mean memory recon. error over valid segments of NORMAL videos
    memory_reg          = ||K K^T - I||_F^2 / M^2 on the unit-norm slots K
    total = focal + recon_weight * reconstruction + mem_reg_weight * memory_reg
            (+ smoothness_weight * smoothness + sparsity_weight * sparsity, both 0 by default)

The reconstruction term is restricted to normal videos because only their segments are known to
be normal under weak (video-level) labels; an anomalous video's normal-looking segments are not
identifiable, and its anomalous ones must stay *badly* reconstructed.

RTFM objective (:func:`rtfm_loss`, Tian et al., ICCV 2021): a feature-magnitude hinge between
the top-k snippets of anomalous and normal videos, cross-entropy on the mean score of those
snippets, smoothness and sparsity (see the function).

MIL baseline objective (:func:`mil_loss`, Sultani et al., CVPR 2018)::

    ranking    = mean over (anomalous a, normal n) pairs of max(0, 1 - max_t s_a + max_t s_n)
    smoothness = mean over anomalous videos of sum_t (s_t - s_{t+1})^2   (valid neighbours only)
    sparsity   = mean over anomalous videos of sum_t s_t                 (valid segments only)
    total = ranking + smooth * smoothness + sparse * sparsity
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import check_labels, check_mask, check_scores
from .config import (
    DEFAULT_FOCAL_ALPHA,
    DEFAULT_FOCAL_GAMMA,
    DEFAULT_TOPK,
    RTFM_MARGIN,
    RTFM_SEPARABILITY_WEIGHT,
    RTFM_SMOOTHNESS,
    RTFM_SPARSITY,
    SULTANI_SMOOTHNESS,
    SULTANI_SPARSITY,
    LossConfig,
)
from .outputs import ScorerOutput

#: Probabilities are clamped to ``[PROB_EPS, 1 - PROB_EPS]`` before taking logs.
PROB_EPS = 1e-7
#: Labels at or above this value are anomalous.
LABEL_THRESHOLD = 0.5
#: Margin of the MIL hinge ranking loss (Sultani et al.).
RANKING_MARGIN = 1.0


class LossTerms(NamedTuple):
    """Every term of an objective, separately, for logging.

    The individual terms are *unweighted*; ``total`` is the weighted sum that is optimised.
    Terms an objective does not use are zero tensors.

    Attributes:
        total: Weighted sum of the terms below.
        focal: Focal loss on the top-k video scores.
        reconstruction: Memory reconstruction error on normal videos.
        memory_reg: Memory slot-diversity regulariser.
        ranking: MIL hinge ranking loss.
        smoothness: Temporal smoothness of anomalous-video scores.
        sparsity: Sparsity of anomalous-video scores.
        classification: RTFM's cross-entropy on the video scores of its top-magnitude snippets.
        separability: RTFM's feature-magnitude hinge between anomalous and normal videos.
    """

    total: Tensor
    focal: Tensor
    reconstruction: Tensor
    memory_reg: Tensor
    ranking: Tensor
    smoothness: Tensor
    sparsity: Tensor
    classification: Tensor
    separability: Tensor


def _valid(scores: Tensor, mask: Tensor | None) -> Tensor:
    check_scores(scores)
    check_mask(mask, scores.shape[0], scores.shape[1])
    if mask is None:
        return torch.ones_like(scores, dtype=torch.bool)
    return mask


def _anomalous(labels: Tensor, batch: int) -> Tensor:
    check_labels(labels, batch)
    return labels >= LABEL_THRESHOLD


def _mean_over(values: Tensor, select: Tensor) -> Tensor:
    """Mean of ``values`` where ``select`` is True, 0 (with graph) when nothing is selected."""
    total = torch.where(select, values, torch.zeros_like(values)).sum()
    return total / select.sum().clamp_min(1).to(values.dtype)


def topk_video_score(scores: Tensor, mask: Tensor | None = None, k: int = DEFAULT_TOPK) -> Tensor:
    """Video score: mean of the ``k`` highest valid segment scores of each video.

    ``k`` is clipped, per video, to its number of valid segments.

    Args:
        scores: Per-segment scores.
        mask: Optional padding mask, True = valid.
        k: Number of top segments to average (>= 1).

    Returns:
        One score per video.

    Shape:
        - scores: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - output: ``[B]``

    Raises:
        ValueError: On wrong shapes, ``k < 1`` or a video without valid segments.
    """
    valid = _valid(scores, mask)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    n_valid = valid.sum(dim=1)
    if bool((n_valid == 0).any()):
        raise ValueError("every video needs at least one valid segment (mask row all False)")
    k_max = min(k, scores.shape[1])
    top = scores.masked_fill(~valid, float("-inf")).topk(k_max, dim=1).values  # [B, k_max]
    k_eff = n_valid.clamp(max=k)  # [B]
    keep = torch.arange(k_max, device=scores.device) < k_eff.unsqueeze(1)
    return torch.where(keep, top, torch.zeros_like(top)).sum(dim=1) / k_eff.to(scores.dtype)


def focal_loss(
    prob: Tensor,
    target: Tensor,
    alpha: float = DEFAULT_FOCAL_ALPHA,
    gamma: float = DEFAULT_FOCAL_GAMMA,
) -> Tensor:
    """Binary focal loss on probabilities (Lin et al., ICCV 2017), mean over the batch.

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p_t = p`` and ``alpha_t = alpha`` for
    positives (target 1), ``p_t = 1 - p`` and ``alpha_t = 1 - alpha`` for negatives (target 0).
    Probabilities are clamped to ``[PROB_EPS, 1 - PROB_EPS]``.

    Args:
        prob: Predicted probabilities of the positive class.
        target: Binary targets (0 or 1, any dtype).
        alpha: Weight of the positive class, in ``[0, 1]``.
        gamma: Focusing parameter (>= 0); 0 gives alpha-weighted binary cross-entropy.

    Returns:
        Scalar loss.

    Shape:
        - prob: ``[B]``
        - target: ``[B]``
        - output: ``[]``

    Raises:
        ValueError: On wrong shapes or out-of-range ``alpha`` / ``gamma``.
    """
    if not isinstance(prob, Tensor) or prob.dim() != 1 or prob.shape[0] < 1:
        shape = tuple(prob.shape) if isinstance(prob, Tensor) else type(prob).__name__
        raise ValueError(f"prob must have shape [B] (rank 1, B >= 1), got {shape}")
    check_labels(target, prob.shape[0], "target")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    p = prob.clamp(PROB_EPS, 1.0 - PROB_EPS)
    t = target.to(p.dtype)
    p_t = t * p + (1.0 - t) * (1.0 - p)
    alpha_t = t * alpha + (1.0 - t) * (1.0 - alpha)
    return (-alpha_t * (1.0 - p_t).pow(gamma) * torch.log(p_t)).mean()


def memory_reconstruction_loss(recon_error: Tensor, mask: Tensor | None, labels: Tensor) -> Tensor:
    """Mean reconstruction error over the valid segments of normal videos (0 if there are none).

    Args:
        recon_error: Per-segment memory reconstruction error.
        mask: Optional padding mask, True = valid.
        labels: Video labels, 0 = normal.

    Returns:
        Scalar loss (still attached to the graph when it is 0).

    Shape:
        - recon_error: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - output: ``[]``

    Raises:
        ValueError: On wrong shapes.
    """
    valid = _valid(recon_error, mask)
    normal = ~_anomalous(labels, recon_error.shape[0])
    return _mean_over(recon_error, valid & normal.unsqueeze(1))


def _masked_max(scores: Tensor, valid: Tensor) -> Tensor:
    """Per-video max over valid segments; ``-inf`` for a video without valid segments."""
    return scores.masked_fill(~valid, float("-inf")).amax(dim=1)


def mil_ranking_hinge(scores: Tensor, mask: Tensor | None, labels: Tensor) -> Tensor:
    """Mean over all (anomalous, normal) video pairs of ``max(0, 1 - max s_a + max s_n)``.

    Returns 0 when the batch lacks either class.

    Shape:
        - scores: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - output: ``[]``

    Raises:
        ValueError: On wrong shapes.
    """
    valid = _valid(scores, mask)
    anomalous = _anomalous(labels, scores.shape[0])
    has_valid = valid.any(dim=1)
    top = _masked_max(scores, valid)
    top = torch.where(has_valid, top, torch.zeros_like(top))  # excluded from pairs below
    hinge = torch.relu(RANKING_MARGIN - top.unsqueeze(1) + top.unsqueeze(0))  # [A-row, N-col]
    pairs = (anomalous & has_valid).unsqueeze(1) & (~anomalous & has_valid).unsqueeze(0)
    return _mean_over(hinge, pairs)


def temporal_smoothness_loss(scores: Tensor, mask: Tensor | None, labels: Tensor) -> Tensor:
    """Mean over anomalous videos of ``sum_t (s_t - s_{t+1})^2`` over valid neighbours.

    Shape:
        - scores: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - output: ``[]``

    Raises:
        ValueError: On wrong shapes.
    """
    valid = _valid(scores, mask)
    anomalous = _anomalous(labels, scores.shape[0])
    diff2 = (scores[:, 1:] - scores[:, :-1]).pow(2)
    both = valid[:, 1:] & valid[:, :-1]
    per_video = torch.where(both, diff2, torch.zeros_like(diff2)).sum(dim=1)
    return _mean_over(per_video, anomalous)


def sparsity_loss(scores: Tensor, mask: Tensor | None, labels: Tensor) -> Tensor:
    """Mean over anomalous videos of the sum of their valid segment scores.

    Shape:
        - scores: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - output: ``[]``

    Raises:
        ValueError: On wrong shapes.
    """
    valid = _valid(scores, mask)
    anomalous = _anomalous(labels, scores.shape[0])
    per_video = torch.where(valid, scores, torch.zeros_like(scores)).sum(dim=1)
    return _mean_over(per_video, anomalous)


def sultani_ranking_loss(
    scores: Tensor,
    mask: Tensor | None,
    labels: Tensor,
    smooth: float = SULTANI_SMOOTHNESS,
    sparse: float = SULTANI_SPARSITY,
) -> Tensor:
    """MIL ranking loss of Sultani et al. (CVPR 2018): hinge + smoothness + sparsity.

    ``mil_ranking_hinge + smooth * temporal_smoothness_loss + sparse * sparsity_loss``; the last
    two apply to anomalous videos only.

    Args:
        scores: Per-segment scores in ``[0, 1]``.
        mask: Optional padding mask, True = valid.
        labels: Video labels, 1 = anomalous.
        smooth: Weight of the temporal smoothness term (lambda_1).
        sparse: Weight of the sparsity term (lambda_2).

    Returns:
        Scalar loss.

    Shape:
        - scores: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - output: ``[]``

    Raises:
        ValueError: On wrong shapes.
    """
    return (
        mil_ranking_hinge(scores, mask, labels)
        + smooth * temporal_smoothness_loss(scores, mask, labels)
        + sparse * sparsity_loss(scores, mask, labels)
    )


def memtsm_loss(
    output: ScorerOutput,
    mask: Tensor | None,
    labels: Tensor,
    loss_config: LossConfig | None = None,
    memory_regularizer: Tensor | None = None,
) -> tuple[Tensor, LossTerms]:
    """MemTSM objective: focal on top-k video scores + memory reconstruction + slot diversity.

    Args:
        output: Scorer output for the batch.
        mask: Optional padding mask, True = valid.
        labels: Video labels, 1 = anomalous.
        loss_config: Weights; defaults to ``LossConfig()``.
        memory_regularizer: Scalar from ``scorer.regularizer()``; ``None`` counts as 0.

    Returns:
        ``(total, terms)`` where ``terms.total is total``; ``terms.ranking`` is 0.

    Shape:
        - output.scores, output.recon_error: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - total: ``[]``

    Raises:
        ValueError: On wrong shapes or a non-scalar regulariser.
    """
    cfg = LossConfig() if loss_config is None else loss_config
    scores = output.scores
    video = topk_video_score(scores, mask, cfg.topk)
    focal = focal_loss(video, labels, cfg.focal_alpha, cfg.focal_gamma)
    recon = memory_reconstruction_loss(output.recon_error, mask, labels)
    if memory_regularizer is None:
        reg = scores.new_zeros(())
    elif not isinstance(memory_regularizer, Tensor) or memory_regularizer.dim() != 0:
        raise ValueError("memory_regularizer must be a scalar tensor or None")
    else:
        reg = memory_regularizer
    smoothness = temporal_smoothness_loss(scores, mask, labels)
    sparsity = sparsity_loss(scores, mask, labels)
    total = (
        focal
        + cfg.recon_weight * recon
        + cfg.mem_reg_weight * reg
        + cfg.smoothness_weight * smoothness
        + cfg.sparsity_weight * sparsity
    )
    zero = scores.new_zeros(())
    terms = LossTerms(
        total=total,
        focal=focal,
        reconstruction=recon,
        memory_reg=reg,
        ranking=zero,
        smoothness=smoothness,
        sparsity=sparsity,
        classification=zero,
        separability=zero,
    )
    return total, terms


def mil_loss(
    output: ScorerOutput,
    mask: Tensor | None,
    labels: Tensor,
    smooth: float = SULTANI_SMOOTHNESS,
    sparse: float = SULTANI_SPARSITY,
) -> tuple[Tensor, LossTerms]:
    """Sultani et al. objective for the MIL baseline (see :func:`sultani_ranking_loss`).

    Args:
        output: Scorer output for the batch (only ``scores`` is used).
        mask: Optional padding mask, True = valid.
        labels: Video labels, 1 = anomalous.
        smooth: Weight of the temporal smoothness term.
        sparse: Weight of the sparsity term.

    Returns:
        ``(total, terms)``; ``focal``, ``reconstruction`` and ``memory_reg`` are 0.

    Shape:
        - output.scores: ``[B, T]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - total: ``[]``

    Raises:
        ValueError: On wrong shapes.
    """
    scores = output.scores
    ranking = mil_ranking_hinge(scores, mask, labels)
    smoothness = temporal_smoothness_loss(scores, mask, labels)
    sparsity = sparsity_loss(scores, mask, labels)
    total = ranking + smooth * smoothness + sparse * sparsity
    zero = scores.new_zeros(())
    terms = LossTerms(
        total=total,
        focal=zero,
        reconstruction=zero,
        memory_reg=zero,
        ranking=ranking,
        smoothness=smoothness,
        sparsity=sparsity,
        classification=zero,
        separability=zero,
    )
    return total, terms


def rtfm_loss(
    output: ScorerOutput,
    mask: Tensor | None,
    labels: Tensor,
    k: int = DEFAULT_TOPK,
    margin: float = RTFM_MARGIN,
    separability_weight: float = RTFM_SEPARABILITY_WEIGHT,
    smooth: float = RTFM_SMOOTHNESS,
    sparse: float = RTFM_SPARSITY,
) -> tuple[Tensor, LossTerms]:
    """RTFM objective (Tian et al., ICCV 2021), written from the paper's equations.

    With ``m_t = ||embedding_t||_2`` the feature magnitude of snippet t and ``Omega_k(b)`` the
    ``k`` valid snippets of video b with the largest magnitudes::

        d_b            = mean_{t in Omega_k(b)} m_t        top-k mean feature magnitude
        separability   = mean over (a, n) pairs of max(0, margin - d_a + d_n)
        theta_b        = mean_{t in Omega_k(b)} s_t        video score from those snippets
        classification = mean_b BCE(theta_b, y_b)
        total = classification + separability_weight * separability
                + smooth * smoothness + sparse * sparsity  (anomalous videos' scores)

    ``output.embedding`` may be ``[B, T, 1]`` holding the magnitudes themselves (what a
    distributed run gathers): the norm of a non-negative 1-vector is its value.

    Returns:
        ``(total, terms)``; ``focal``, ``reconstruction``, ``memory_reg`` and ``ranking`` are 0.

    Shape:
        - output.scores: ``[B, T]``; output.embedding: ``[B, T, C]``
        - mask: ``[B, T]`` (bool)
        - labels: ``[B]``
        - total: ``[]``

    Raises:
        ValueError: On wrong shapes or ``k < 1``.
    """
    scores = output.scores
    valid = _valid(scores, mask)
    anomalous = _anomalous(labels, scores.shape[0])
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    magnitude = output.embedding.norm(dim=-1)  # [B, T]
    k_max = min(k, scores.shape[1])
    top = magnitude.masked_fill(~valid, float("-inf")).topk(k_max, dim=1).indices  # [B, k]
    keep = (torch.arange(k_max, device=scores.device)
            < valid.sum(dim=1).clamp(min=1, max=k).unsqueeze(1))  # [B, k]
    count = keep.sum(dim=1).to(scores.dtype)
    zeros = torch.zeros_like(scores[:, :k_max])
    top_magnitude = torch.where(keep, magnitude.gather(1, top), zeros).sum(dim=1) / count
    theta = torch.where(keep, scores.gather(1, top), zeros).sum(dim=1) / count
    hinge = torch.relu(margin - top_magnitude.unsqueeze(1) + top_magnitude.unsqueeze(0))
    separability = _mean_over(hinge, anomalous.unsqueeze(1) & ~anomalous.unsqueeze(0))
    target = anomalous.to(scores.dtype)
    theta = theta.clamp(PROB_EPS, 1.0 - PROB_EPS)
    classification = -(target * theta.log() + (1.0 - target) * (1.0 - theta).log()).mean()
    smoothness = temporal_smoothness_loss(scores, mask, labels)
    sparsity = sparsity_loss(scores, mask, labels)
    total = (classification + separability_weight * separability + smooth * smoothness
             + sparse * sparsity)
    zero = scores.new_zeros(())
    terms = LossTerms(total=total, focal=zero, reconstruction=zero, memory_reg=zero,
                      ranking=zero, smoothness=smoothness, sparsity=sparsity,
                      classification=classification, separability=separability)
    return total, terms
