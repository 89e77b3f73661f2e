"""MIL-MLP baseline: an MLP applied to every segment independently.

From Sultani, Chen and Shah, "Real-world Anomaly Detection in Surveillance Videos", CVPR 2018.

``D -> 512 -> 32 -> 1`` as in the authors' released Keras model: ReLU after the first layer, none
after the second (``mil_linear_second``; memtsm before 0.2 had a ReLU there), 60 % dropout after
each hidden layer, a sigmoid on the output, Glorot-normal weights and zero biases (Keras'
``glorot_normal``). Widths and rate come from :class:`ScorerConfig`. It is trained with
:func:`memtsm.model.mil_loss` (hinge ranking + smoothness + sparsity) and the recipe in
:mod:`memtsm.train.recipes` (Adagrad, 30 + 30 bags, L2 on the kernels).
"""

from __future__ import annotations

from torch import Tensor, nn

from ._checks import check_mask, check_sequence
from .config import ScorerConfig
from .outputs import ScorerOutput


class MILScorer(nn.Module):
    """Per-segment MLP scorer (Sultani et al. baseline) with the :class:`ScorerOutput` interface.

    It has no memory: ``readout`` is zeros like ``embedding`` (the 32-d last hidden layer),
    ``recon_error`` is zeros ``[B, T]`` and ``attention`` is an empty ``[B, T, 0]`` tensor (zero
    slots). These are constants without gradient, so memory loss terms evaluate to exactly 0.

    Args:
        config: Architecture; ``config.kind`` must be ``"mil-mlp"``.

    Raises:
        ValueError: If ``config`` is not a :class:`ScorerConfig` of kind ``"mil-mlp"``.
    """

    #: Each segment is scored on its own.
    receptive_field = 0

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        if not isinstance(config, ScorerConfig):
            raise ValueError(f"config must be a ScorerConfig, got {type(config).__name__}")
        if config.kind != "mil-mlp":
            raise ValueError(f"MILScorer needs config.kind == 'mil-mlp', got {config.kind!r}")
        self.config = config
        hidden1, hidden2 = config.mil_hidden
        self.body = nn.Sequential(
            nn.Linear(config.feature_dim, hidden1),
            nn.ReLU(),
            nn.Dropout(config.mil_dropout),
            nn.Linear(hidden1, hidden2),
            nn.Identity() if config.mil_linear_second else nn.ReLU(),
            nn.Dropout(config.mil_dropout),
        )
        self.head = nn.Linear(hidden2, 1)
        for layer in (self.body[0], self.body[3], self.head):
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def regularizer(self) -> Tensor:
        """Return 0 (no memory), so training code can treat both scorers alike.

        Shape:
            - output: ``[]``
        """
        return self.head.weight.new_zeros(())

    def forward(self, features: Tensor, mask: Tensor | None = None) -> ScorerOutput:
        """Score every segment independently.

        Args:
            features: Segment features.
            mask: Optional padding mask, True = valid; only validated (segments do not interact).

        Returns:
            :class:`ScorerOutput` with zero / empty memory fields (see the class docstring).

        Shape:
            - features: ``[B, T, D]``
            - mask: ``[B, T]`` (bool)
            - scores, logits, recon_error: ``[B, T]``
            - readout, embedding: ``[B, T, mil_hidden[1]]``
            - attention: ``[B, T, 0]``

        Raises:
            ValueError: If ``features`` is not ``[B, T, feature_dim]`` or the mask does not match.
        """
        check_sequence(features, "features", self.config.feature_dim)
        batch, time = features.shape[:2]
        check_mask(mask, batch, time)
        embedding = self.body(features)
        logits = self.head(embedding).squeeze(-1)
        return ScorerOutput.without_memory(logits, embedding)
