"""RTFM baseline: a multi-scale temporal network whose feature magnitudes separate anomalies.

From Tian, Pang, Chen, Singh, Verjans and Carneiro, "Weakly-supervised Video Anomaly Detection with
Robust Temporal Feature Magnitude Learning", ICCV 2021; written from the paper, not its code.
Trained with :func:`memtsm.model.rtfm_loss`. For segment features ``[B, T, D]``::

    x   = relu(Linear(D -> C)(features))                           input projection (see below)
    pdc = [relu(Conv1d(C, C/4, 3, dilation=d)(x)) for d in 1, 2, 4]  pyramid of dilated convs
    h   = relu(Conv1d(C, C/4, 1)(x))
    tsa = h + Linear(C/8 -> C/4)(softmax(q k^T / sqrt(C/8)) v)    non-local self-attention over
                                                                  the valid snippets (q, k, v:
                                                                  Linear(C/4 -> C/8) of h)
    embedding = x + relu(Conv1d(C, C, 3)(concat(pdc, tsa)))        C-d snippet features
    score = sigmoid(MLP(C -> 512 -> 128 -> 1, ReLU, dropout 0.7)(embedding))

The paper's network takes 2,048-d I3D features and keeps C = 2048 throughout. memtsm projects any
input width D to C (default 512) first, so the same network runs on 128-d XFeat and 4,096-d C3D
features at one size. The magnitude ``||embedding_t||`` is what the loss separates.

Receptive field: the self-attention sees the whole video, so a window of the video does not give
the whole video's scores (``receptive_field`` is ``None``: scoring runs in one pass).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._checks import check_mask, check_sequence
from .config import ScorerConfig
from .outputs import ScorerOutput

#: Dilations of the pyramid of dilated convolutions.
PDC_DILATIONS = (1, 2, 4)


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x [B, T, C]`` with padded steps zeroed (so a temporal conv sees nothing there)."""
    return x if mask is None else x * mask.unsqueeze(-1).to(x.dtype)


class NonLocalAttention(nn.Module):
    """Residual self-attention over the valid steps of ``[B, T, C]`` (inner width ``C / 2``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = channels // 2
        self.qkv = nn.Linear(channels, 3 * inner)
        self.out = nn.Linear(inner, channels)
        self.scale = 1.0 / math.sqrt(inner)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """``[B, T, C] -> [B, T, C]``; padded keys get no attention."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        logits = torch.einsum("btc,bsc->bts", q, k) * self.scale
        if mask is not None:
            logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return x + self.out(torch.einsum("bts,bsc->btc", logits.softmax(dim=-1), v))


class RTFMScorer(nn.Module):
    """RTFM's multi-scale temporal network and snippet classifier (module docstring).

    Args:
        config: Architecture; ``config.kind`` must be ``"rtfm"``.

    Raises:
        ValueError: If ``config`` is not a :class:`ScorerConfig` of kind ``"rtfm"``.
    """

    #: The self-attention spans the whole video: no finite window reproduces its scores.
    receptive_field = None

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        if not isinstance(config, ScorerConfig):
            raise ValueError(f"config must be a ScorerConfig, got {type(config).__name__}")
        if config.kind != "rtfm":
            raise ValueError(f"RTFMScorer needs config.kind == 'rtfm', got {config.kind!r}")
        self.config = config
        channels, branch = config.rtfm_channels, config.rtfm_channels // 4
        self.project = nn.Linear(config.feature_dim, channels)
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, branch, 3, padding=d, dilation=d) for d in PDC_DILATIONS)
        self.reduce = nn.Linear(channels, branch)
        self.attention = NonLocalAttention(branch)
        self.fuse = nn.Conv1d(channels, channels, 3, padding=1)
        hidden1, hidden2 = config.rtfm_hidden
        self.classifier = nn.Sequential(
            nn.Linear(channels, hidden1), nn.ReLU(), nn.Dropout(config.rtfm_dropout),
            nn.Linear(hidden1, hidden2), nn.ReLU(), nn.Dropout(config.rtfm_dropout),
            nn.Linear(hidden2, 1))

    def regularizer(self) -> Tensor:
        """Return 0 (no memory), so training code can treat every scorer alike.

        Shape:
            - output: ``[]``
        """
        return self.fuse.weight.new_zeros(())

    def forward(self, features: Tensor, mask: Tensor | None = None) -> ScorerOutput:
        """Score every snippet.

        Returns:
            :class:`ScorerOutput`; ``embedding`` holds the features whose magnitudes RTFM
            separates, ``readout`` / ``recon_error`` are zeros, ``attention`` is ``[B, T, 0]``.

        Shape:
            - features: ``[B, T, D]``; mask: ``[B, T]`` (bool)
            - scores, logits, recon_error: ``[B, T]``
            - readout, embedding: ``[B, T, C]``; attention: ``[B, T, 0]``

        Raises:
            ValueError: If ``features`` is not ``[B, T, feature_dim]`` or the mask does not match.
        """
        check_sequence(features, "features", self.config.feature_dim)
        batch, time = features.shape[:2]
        check_mask(mask, batch, time)
        x = _masked(torch.relu(self.project(features)), mask)  # [B, T, C]
        x_ct = x.transpose(1, 2)  # [B, C, T]
        branches = [torch.relu(conv(x_ct)).transpose(1, 2) for conv in self.dilated]
        reduced = _masked(torch.relu(self.reduce(x)), mask)
        branches.append(self.attention(reduced, mask))
        fused = _masked(torch.cat(branches, dim=-1), mask).transpose(1, 2)  # [B, C, T]
        embedding = x + torch.relu(self.fuse(fused)).transpose(1, 2)
        logits = self.classifier(embedding).squeeze(-1)
        return ScorerOutput.without_memory(logits, embedding)
