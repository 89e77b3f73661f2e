"""Typed configuration of the segment scorers and of their training losses.

Both configs are frozen dataclasses made of plain JSON-able values, so they can be stored in a
checkpoint (:meth:`ScorerConfig.to_dict`) and rebuilt exactly (:meth:`ScorerConfig.from_dict`).
Every default lives here as a named module constant; the ``nn.Module`` constructors reuse these
constants as their own defaults so there is exactly one place where a number is chosen.

This module imports only the standard library (and memtsm's stdlib-only config reader).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from memtsm.runtime.configs import config_from_dict

#: Scorer kinds understood by :func:`memtsm.model.build_scorer`.
SCORER_KINDS = ("memtsm", "mil-mlp", "rtfm")

#: Width of the temporal trunk (after the input projection).
DEFAULT_CHANNELS = 512
#: Number of shift -> conv -> SE residual blocks.
DEFAULT_NUM_BLOCKS = 2
#: TSM shifts ``C // n_div`` channels each way (1/8 back + 1/8 forward, as in the TSM paper).
DEFAULT_N_DIV = 8
#: Kernel of the temporal Conv1d in every block (must be odd, "same" padding).
DEFAULT_TEMPORAL_KERNEL = 3
#: Bottleneck ratio of the squeeze-and-excitation MLP (``C -> C // r -> C``).
DEFAULT_SE_REDUCTION = 4
#: Width (segments, odd) of the *local* masked moving average that SE squeezes over.
DEFAULT_SE_WINDOW = 9
#: Number of learnable memory slots.
DEFAULT_MEM_SIZE = 100
#: Softmax temperature of the cosine-similarity memory addressing. Cosines live in ``[-1, 1]``;
#: 0.1 maps them to logits in ``[-10, 10]``: peaked enough that a segment is explained by a few
#: prototypes (as in contrastive learning, where 0.07-0.2 is standard), yet not one-hot, so every
#: slot keeps receiving gradient early in training.
DEFAULT_MEM_TEMPERATURE = 0.1
#: Dropout of the MemTSM trunk and head. The inputs are frozen, pre-trained clip features and the
#: weakly-labelled datasets are small (UCF-Crime: ~1.6k training videos), so a mild rate is used; a
#: high rate such as the baseline's 0.6 would fight the memory read-out, which needs stable
#: embeddings to match against the slots.
DEFAULT_DROPOUT = 0.1
#: Hidden width of the per-segment scoring head of MemTSM.
DEFAULT_HEAD_HIDDEN = 128
#: Hidden widths of the Sultani et al. (CVPR 2018) baseline MLP ``D -> 512 -> 32 -> 1``.
DEFAULT_MIL_HIDDEN = (512, 32)
#: Dropout of the baseline MLP (60 %, as in Sultani et al.).
DEFAULT_MIL_DROPOUT = 0.6
#: Sultani et al.'s released model has no activation after its 32-wide layer (Keras ``Dense(32)``).
DEFAULT_MIL_LINEAR_SECOND = True
#: Width of RTFM's multi-scale temporal network (its features are 2,048-d I3D: C = 2048 there;
#: here every input is first projected to C, so the network has one size whatever the features).
DEFAULT_RTFM_CHANNELS = 512
#: Hidden widths of RTFM's snippet classifier ``C -> 512 -> 128 -> 1``.
DEFAULT_RTFM_HIDDEN = (512, 128)
#: Dropout of RTFM's snippet classifier (70 %, as in Tian et al.).
DEFAULT_RTFM_DROPOUT = 0.7

#: Focal-loss weight of the positive (anomalous) class.
DEFAULT_FOCAL_ALPHA = 0.85
#: Focal-loss focusing parameter (Lin et al., ICCV 2017).
DEFAULT_FOCAL_GAMMA = 2.0
#: Weight of the memory reconstruction error on normal videos.
DEFAULT_RECON_WEIGHT = 0.5
#: Weight of the slot-diversity regulariser of the memory bank.
DEFAULT_MEM_REG_WEIGHT = 0.01
#: Number of top segment scores averaged into the video score.
DEFAULT_TOPK = 3
#: Temporal smoothness / sparsity weights of Sultani et al. (lambda_1 = lambda_2 = 8e-5).
SULTANI_SMOOTHNESS = 8e-5
SULTANI_SPARSITY = 8e-5
#: RTFM's feature-magnitude margin m and its smoothness / sparsity weights (Tian et al.).
RTFM_MARGIN = 100.0
RTFM_SMOOTHNESS = 8e-4
RTFM_SPARSITY = 8e-4
#: Weight of RTFM's magnitude hinge. The paper's equation adds it unweighted; its released code
#: weights a squared form by 1e-4, whose gradient at the start (magnitudes ~0) is 2 * 1e-4 * m =
#: 0.02 per unit of magnitude. The hinge here gets that same initial gradient.
RTFM_SEPARABILITY_WEIGHT = 2e-4 * RTFM_MARGIN


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_int(name: str, value: object, minimum: int) -> None:
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _require_odd(name: str, value: object) -> None:
    _require_int(name, value, 1)
    if value % 2 != 1:  # type: ignore[operator]
        raise ValueError(f"{name} must be odd (centred 'same' window), got {value!r}")


def _require_unit_interval(name: str, value: object, *, closed_right: bool) -> None:
    ok = _is_real(value) and (
        0.0 <= value <= 1.0 if closed_right else 0.0 <= value < 1.0  # type: ignore[operator]
    )
    if not ok:
        bound = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must be a number in {bound}, got {value!r}")


def _require_non_negative(name: str, value: object) -> None:
    if not _is_real(value) or value < 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class ScorerOptions:
    """Architecture knobs of a scorer: every :class:`ScorerConfig` field but the two a run fixes.

    ``feature_dim`` is known only once a feature store is opened and ``kind`` is the model a run
    trains, so a training config holds these options and builds the full config at run time
    (:meth:`to_scorer_config`). Fields that a kind does not use are still validated (so a stored
    config is always coherent) but otherwise ignored.

    Raises:
        ValueError: On construction, naming the offending field, if a value is out of range.
    """

    channels: int = DEFAULT_CHANNELS
    """C: width of the MemTSM trunk and of the memory slots."""
    num_blocks: int = DEFAULT_NUM_BLOCKS
    """Number of temporal-shift blocks."""
    n_div: int = DEFAULT_N_DIV
    """TSM shift fraction: ``C // n_div`` channels move back and as many move forward."""
    temporal_kernel: int = DEFAULT_TEMPORAL_KERNEL
    """Kernel (odd) of the temporal Conv1d of every block."""
    se_reduction: int = DEFAULT_SE_REDUCTION
    """Squeeze-and-excitation bottleneck ratio."""
    se_window: int = DEFAULT_SE_WINDOW
    """Odd width, in segments, of the local temporal window SE squeezes over."""
    mem_size: int = DEFAULT_MEM_SIZE
    """M: number of memory slots."""
    mem_temperature: float = DEFAULT_MEM_TEMPERATURE
    """Softmax temperature of the memory addressing (> 0)."""
    dropout: float = DEFAULT_DROPOUT
    """Dropout of the MemTSM trunk and head, in ``[0, 1)``."""
    head_hidden: int = DEFAULT_HEAD_HIDDEN
    """Hidden width of the MemTSM scoring head."""
    temporal_shift: bool = True
    """MemTSM blocks shift channels in time (False: an ablation)."""
    squeeze_excite: bool = True
    """MemTSM blocks gate channels with the local SE (False: an ablation)."""
    head_readout: bool = True
    """MemTSM's head reads the memory read-out beside the embedding (False: an ablation)."""
    causal: bool = False
    """MemTSM's temporal operations look only backwards: streaming scores are final at once."""
    mil_hidden: tuple[int, int] = DEFAULT_MIL_HIDDEN
    """Hidden widths of the baseline MLP."""
    mil_dropout: float = DEFAULT_MIL_DROPOUT
    """Dropout of the baseline MLP, in ``[0, 1)``."""
    mil_linear_second: bool = DEFAULT_MIL_LINEAR_SECOND
    """No ReLU after the baseline MLP's second layer (Sultani et al.'s released model)."""
    rtfm_channels: int = DEFAULT_RTFM_CHANNELS
    """C of RTFM's multi-scale temporal network (a multiple of 8)."""
    rtfm_hidden: tuple[int, int] = DEFAULT_RTFM_HIDDEN
    """Hidden widths of RTFM's snippet classifier."""
    rtfm_dropout: float = DEFAULT_RTFM_DROPOUT
    """Dropout of RTFM's snippet classifier, in ``[0, 1)``."""

    def __post_init__(self) -> None:
        for name in ("mil_hidden", "rtfm_hidden"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _require_int("n_div", self.n_div, 2)
        _require_int("channels", self.channels, self.n_div)
        _require_int("num_blocks", self.num_blocks, 1)
        _require_odd("temporal_kernel", self.temporal_kernel)
        _require_int("se_reduction", self.se_reduction, 1)
        _require_odd("se_window", self.se_window)
        _require_int("mem_size", self.mem_size, 1)
        if not _is_real(self.mem_temperature) or self.mem_temperature <= 0:
            raise ValueError(f"mem_temperature must be > 0, got {self.mem_temperature!r}")
        _require_unit_interval("dropout", self.dropout, closed_right=False)
        _require_int("head_hidden", self.head_hidden, 1)
        for name in ("mil_hidden", "rtfm_hidden"):
            hidden = getattr(self, name)
            if (
                not isinstance(hidden, tuple)
                or len(hidden) != 2
                or not all(_is_int(h) and h >= 1 for h in hidden)
            ):
                raise ValueError(f"{name} must be a tuple of two ints >= 1, got {hidden!r}")
        _require_unit_interval("mil_dropout", self.mil_dropout, closed_right=False)
        for name in ("mil_linear_second", "temporal_shift", "squeeze_excite", "head_readout",
                     "causal"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _require_int("rtfm_channels", self.rtfm_channels, 8)
        if self.rtfm_channels % 8:
            raise ValueError(f"rtfm_channels must be a multiple of 8, got {self.rtfm_channels!r}")
        _require_unit_interval("rtfm_dropout", self.rtfm_dropout, closed_right=False)

    def options(self) -> dict[str, Any]:
        """The :class:`ScorerOptions` fields with their Python types (tuples kept)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ScorerOptions)}

    def to_scorer_config(self, feature_dim: int, kind: str) -> ScorerConfig:
        """The full architecture for features of width ``feature_dim``.

        Raises:
            ValueError: If ``feature_dim`` or ``kind`` is invalid.
        """
        return ScorerConfig(feature_dim=feature_dim, kind=kind, **self.options())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["mil_hidden"] = list(self.mil_hidden)
        data["rtfm_hidden"] = list(self.rtfm_hidden)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Rebuild a config from :meth:`to_dict` output; missing fields take their defaults.

        Lists are accepted for tuples.

        Raises:
            ValueError: On unknown keys or invalid values.
        """
        return config_from_dict(cls, dict(data), cls._ERROR_NAME)

    _ERROR_NAME: ClassVar[str] = "scorer"


@dataclass(frozen=True, kw_only=True)
class ScorerConfig(ScorerOptions):
    """Architecture of a per-segment anomaly scorer (MemTSM or one of the baselines).

    The :class:`ScorerOptions` plus the input width and the kind; ``feature_dim`` is the only
    required field (all fields are keyword-only).

    Raises:
        ValueError: On construction, naming the offending field, if a value is out of range.
    """

    feature_dim: int
    """D: width of the input clip features ``[B, T, D]``."""
    kind: str = "memtsm"
    """Which scorer to build: ``"memtsm"``, ``"mil-mlp"`` (Sultani et al.) or ``"rtfm"``."""
    members: int = 1
    """Independently trained copies whose segment scores are averaged (``memtsm train
    --ensemble``; :class:`memtsm.model.ScorerEnsemble`); 1: one scorer."""

    _ERROR_NAME: ClassVar[str] = "ScorerConfig"

    def __post_init__(self) -> None:
        if self.kind not in SCORER_KINDS:
            raise ValueError(f"kind must be one of {SCORER_KINDS}, got {self.kind!r}")
        _require_int("feature_dim", self.feature_dim, 1)
        _require_int("members", self.members, 1)
        super().__post_init__()


@dataclass(frozen=True)
class LossConfig:
    """Weights of the MemTSM training objective (see :func:`memtsm.model.memtsm_loss`).

    Raises:
        ValueError: On construction, naming the offending field, if a value is out of range.
    """

    focal_alpha: float = DEFAULT_FOCAL_ALPHA
    """Weight of the positive (anomalous) class in the focal loss, in ``[0, 1]``."""
    focal_gamma: float = DEFAULT_FOCAL_GAMMA
    """Focal focusing parameter (>= 0; 0 gives alpha-weighted cross-entropy)."""
    recon_weight: float = DEFAULT_RECON_WEIGHT
    """Weight of the memory reconstruction error on normal videos."""
    mem_reg_weight: float = DEFAULT_MEM_REG_WEIGHT
    """Weight of the memory slot-diversity regulariser."""
    topk: int = DEFAULT_TOPK
    """Number of highest segment scores averaged into the video score."""
    smoothness_weight: float = 0.0
    """Weight of the temporal smoothness of anomalous-video scores (off by default)."""
    sparsity_weight: float = 0.0
    """Weight of the sparsity of anomalous-video scores (off by default)."""

    def __post_init__(self) -> None:
        _require_unit_interval("focal_alpha", self.focal_alpha, closed_right=True)
        _require_non_negative("focal_gamma", self.focal_gamma)
        _require_non_negative("recon_weight", self.recon_weight)
        _require_non_negative("mem_reg_weight", self.mem_reg_weight)
        _require_int("topk", self.topk, 1)
        _require_non_negative("smoothness_weight", self.smoothness_weight)
        _require_non_negative("sparsity_weight", self.sparsity_weight)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossConfig:
        """Rebuild a config from :meth:`to_dict` output.

        Raises:
            ValueError: On unknown keys or invalid values.
        """
        return config_from_dict(cls, data, cls.__name__)
