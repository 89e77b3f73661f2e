"""MemTSM: temporal-shift trunk + learnable memory of normal prototypes -> per-segment scores.

Architecture, for segment features ``[B, T, D]`` and an optional padding mask ``[B, T]``::

    x = dropout(gelu(Linear(D -> C)(features)))                     per segment
    repeat num_blocks times (TemporalBlock):
        h = temporal_shift(x, n_div, mask)                          reach 1
        h = dropout(gelu(Conv1d(C, C, k, padding=k // 2)(h)))       reach k // 2
        h = SqueezeExcite(C, r, window=se_window)(h, mask)          reach se_window // 2
        x = LayerNorm(x + h)
    embedding = x
    readout, attention, recon_error = MemoryBank(embedding)         per segment
    logit = MLP(concat(embedding, readout, embedding - readout))    per segment
    score = sigmoid(logit)

Receptive field. Only the shift, the temporal conv and the SE squeeze look at other segments, so
one output segment depends on exactly ::

    receptive_field = num_blocks * (1 + temporal_kernel // 2 + se_window // 2)

segments on each side (defaults: ``2 * (1 + 1 + 4) = 12``). The SE squeeze is deliberately a
*local* masked moving average over ``se_window`` segments instead of the classic global average
over the whole video: with a global squeeze every score would depend on every segment of the
video (an infinite receptive field) and a streaming / windowed scorer could never reproduce the
whole-video scores. With the local squeeze, scoring a window that carries at least
``receptive_field`` segments of real context on each side (or reaches the true video start / end)
gives the same scores, up to float rounding, as scoring the whole video, in eval mode.

Padding. Every temporal operation zeroes padded steps (mask False) before it mixes time, and the
SE squeeze only counts valid steps, so a padded step contributes exactly what a step past the end
of an unpadded video does -- nothing. A video's scores therefore do not depend on the length it is
padded to. Outputs at padded steps are unspecified.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import check_mask, check_sequence
from .config import (
    DEFAULT_DROPOUT,
    DEFAULT_N_DIV,
    DEFAULT_SE_REDUCTION,
    DEFAULT_SE_WINDOW,
    DEFAULT_TEMPORAL_KERNEL,
    ScorerConfig,
)
from .memory import MemoryBank
from .outputs import ScorerOutput
from .se import SqueezeExcite
from .tsm import TemporalShift


class TemporalBlock(nn.Module):
    """Temporal shift -> masked temporal conv -> local SE -> residual -> LayerNorm.

    Args:
        channels: C, width of the block.
        n_div: TSM shift fraction.
        kernel: Odd kernel of the temporal Conv1d ("same" padding).
        se_reduction: SE bottleneck ratio.
        se_window: Odd width of the local SE squeeze.
        dropout: Dropout after the conv activation.
        shift: Apply the temporal shift (off: an ablation).
        squeeze_excite: Apply the SE gate (off: an ablation).
        causal: Every temporal operation looks only backwards (shift, conv and SE window).
    """

    def __init__(
        self,
        channels: int,
        n_div: int = DEFAULT_N_DIV,
        kernel: int = DEFAULT_TEMPORAL_KERNEL,
        se_reduction: int = DEFAULT_SE_REDUCTION,
        se_window: int = DEFAULT_SE_WINDOW,
        dropout: float = DEFAULT_DROPOUT,
        shift: bool = True,
        squeeze_excite: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd int >= 1, got {kernel!r}")
        if se_window is None:
            raise ValueError(
                "se_window must be an odd int: a global SE squeeze has no finite reach"
            )
        self.causal = causal
        self.shift = TemporalShift(n_div, causal) if shift else None
        # causal: pad k - 1 steps on the left only (in forward); otherwise "same" padding
        self.conv = nn.Conv1d(channels, channels, kernel, padding=0 if causal else kernel // 2)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.se = (SqueezeExcite(channels, se_reduction, window=se_window, causal=causal)
                   if squeeze_excite else None)
        self.norm = nn.LayerNorm(channels)

    @property
    def receptive_field(self) -> int:
        """Segments on each side of ``t`` that influence output ``t`` of this block."""
        kernel = self.conv.kernel_size[0]
        conv_reach = kernel - 1 if self.causal else kernel // 2
        shift_reach = 0 if self.shift is None else self.shift.receptive_field
        se_reach = 0 if self.se is None else int(self.se.receptive_field)
        return shift_reach + conv_reach + se_reach

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mix each segment with its temporal neighbourhood.

        Args:
            x: Segment embeddings.
            mask: Optional padding mask, True = valid.

        Returns:
            The updated embeddings.

        Shape:
            - x: ``[B, T, C]``
            - mask: ``[B, T]`` (bool)
            - output: ``[B, T, C]``
        """
        # The shift zeroes padded steps in its input *and* output, so the conv's zero padding and
        # the padded steps of a short video look the same to the conv.
        if self.shift is not None:
            h = self.shift(x, mask)
        else:
            h = x if mask is None else x * mask.unsqueeze(-1).to(x.dtype)
        h = h.transpose(1, 2)
        if self.causal:
            h = nn.functional.pad(h, (self.conv.kernel_size[0] - 1, 0))
        h = self.conv(h).transpose(1, 2)
        h = self.dropout(self.act(h))
        if self.se is not None:
            h = self.se(h, mask)
        return self.norm(x + h)


class MemTSMScorer(nn.Module):
    """Per-segment anomaly scorer: TSM trunk, memory bank and scoring head (see module docs).

    Args:
        config: Architecture; ``config.kind`` must be ``"memtsm"``.

    Raises:
        ValueError: If ``config`` is not a :class:`ScorerConfig` of kind ``"memtsm"``.
    """

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        if not isinstance(config, ScorerConfig):
            raise ValueError(f"config must be a ScorerConfig, got {type(config).__name__}")
        if config.kind != "memtsm":
            raise ValueError(f"MemTSMScorer needs config.kind == 'memtsm', got {config.kind!r}")
        self.config = config
        c = config.channels
        self.input_proj = nn.Sequential(
            nn.Linear(config.feature_dim, c), nn.GELU(), nn.Dropout(config.dropout)
        )
        self.blocks = nn.ModuleList(
            TemporalBlock(
                c,
                n_div=config.n_div,
                kernel=config.temporal_kernel,
                se_reduction=config.se_reduction,
                se_window=config.se_window,
                dropout=config.dropout,
                shift=config.temporal_shift,
                squeeze_excite=config.squeeze_excite,
                causal=config.causal,
            )
            for _ in range(config.num_blocks)
        )
        self.memory = MemoryBank(config.mem_size, channels=c, temperature=config.mem_temperature)
        # concat(embedding, readout, embedding - readout), or the embedding alone (ablation)
        head_in = 3 * c if config.head_readout else c
        self.head = nn.Sequential(
            nn.Linear(head_in, config.head_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.head_hidden, 1),
        )

    @property
    def receptive_field(self) -> int:
        """Segments on each side of ``t`` that influence the score of segment ``t``.

        ``num_blocks * (1 + temporal_kernel // 2 + se_window // 2)``; the input projection, the
        memory and the head are per segment. A window scored with at least this much real context
        on each side reproduces the whole-video scores of its interior (eval mode).
        """
        return sum(block.receptive_field for block in self.blocks)

    @property
    def lookahead(self) -> int:
        """Future segments that influence the score of segment ``t``: 0 for a causal scorer."""
        return 0 if self.config.causal else self.receptive_field

    def regularizer(self) -> Tensor:
        """Slot-diversity penalty of the memory (see :meth:`MemoryBank.regularizer`).

        Shape:
            - output: ``[]``
        """
        return self.memory.regularizer()

    def forward(self, features: Tensor, mask: Tensor | None = None) -> ScorerOutput:
        """Score every segment.

        Args:
            features: Segment features.
            mask: Optional padding mask, True = valid segment. ``None`` means all valid.

        Returns:
            :class:`ScorerOutput`; values at padded steps are unspecified.

        Shape:
            - features: ``[B, T, D]``
            - mask: ``[B, T]`` (bool)
            - scores, logits, recon_error: ``[B, T]``
            - readout, embedding: ``[B, T, C]``
            - attention: ``[B, T, M]``

        Raises:
            ValueError: If ``features`` is not ``[B, T, feature_dim]`` or the mask does not match.
        """
        check_sequence(features, "features", self.config.feature_dim)
        check_mask(mask, features.shape[0], features.shape[1])
        x = self.input_proj(features)
        for block in self.blocks:
            x = block(x, mask)
        read = self.memory(x)
        head_in = (torch.cat([x, read.readout, x - read.readout], dim=-1)  # [B, T, 3C]
                   if self.config.head_readout else x)
        logits = self.head(head_in).squeeze(-1)
        return ScorerOutput(
            scores=logits.sigmoid(),
            logits=logits,
            readout=read.readout,
            recon_error=read.recon_error,
            attention=read.attention,
            embedding=x,
        )
