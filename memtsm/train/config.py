"""Typed configuration of a training run (``memtsm train``).

:class:`TrainConfig` is a frozen dataclass of plain values. It round-trips through YAML
(:meth:`TrainConfig.to_yaml` / :meth:`TrainConfig.from_yaml`) and through a plain dict (stored in
every checkpoint). Precedence CLI > YAML > defaults is the CLI's job; this module gives it the
pieces: :meth:`TrainConfig.from_yaml` takes ``overrides`` (``None`` values mean "flag not given"
and are ignored) and :meth:`TrainConfig.replace` changes fields, merging nested ``scorer`` /
``loss`` dicts key by key.

The scorer architecture is the model's typed :class:`~memtsm.model.config.ScorerOptions`: every
:class:`ScorerConfig` field except ``feature_dim`` (known only once the feature store is opened)
and ``kind`` (given by :attr:`TrainConfig.model`). :meth:`TrainConfig.scorer_config` builds the
full :class:`ScorerConfig`.

Validation errors name the command-line flag (``--lr must be > 0, got 0.0``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtsm.model.config import SCORER_KINDS, LossConfig, ScorerConfig, ScorerOptions
from memtsm.runtime.configs import config_from_dict
from memtsm.runtime.files import atomic_write_text
from memtsm.train.recipes import (
    OPTIMIZER_NAMES,
    RECIPES,
    SCHEDULE_NAMES,
    fitted_batch_size,
    plan_steps,
)

#: Models ``memtsm train --model`` accepts (the scorer kinds of :mod:`memtsm.model`).
MODEL_NAMES = SCORER_KINDS
#: Validation rounds: the run's optimiser steps are split over this many epochs, each ending with
#: a validation (a checkpoint candidate).
DEFAULT_EPOCHS = 20
#: Fraction of each class held out for validation (model selection and the threshold).
DEFAULT_VAL_FRACTION = 0.2
#: Segments every training bag is resampled to (the 32 of Sultani et al.).
DEFAULT_NUM_SEGMENTS = 32
#: How epochs with the same validation ROC-AUC are told apart (see :mod:`memtsm.train.loop`).
TIE_BREAKS = ("latest", "val-loss")
DEFAULT_TIE_BREAK = "latest"
#: Std of the Gaussian noise added to training segments, as a fraction of each feature
#: dimension's std over the training bags (0: no augmentation).
DEFAULT_FEATURE_NOISE = 0.0
#: Fields a model's :class:`~memtsm.train.recipes.Recipe` fills when left at ``None``.
RECIPE_FIELDS = ("optimizer", "lr", "weight_decay", "grad_clip", "schedule")

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
_PATH_FIELDS = ("features", "out")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scorer_options(data: Mapping[str, Any]) -> ScorerOptions:
    """:class:`ScorerOptions` from a (partial) dict; errors say they are about the scorer."""
    try:
        return ScorerOptions.from_dict(data)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith("unknown scorer")
                         else f"invalid scorer option: {message}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the resolved copy is the run's config.yaml).

    Raises:
        ValueError: On construction, naming the command-line flag, if a value is invalid.
    """

    features: tuple[str, ...]
    """Feature store directories (one or more, same feature identity) with labelled videos."""
    out: str
    """Run directory: config.yaml, metrics.jsonl, last.pt, best.pt, curves.png."""
    model: str = "memtsm"
    """Scorer: ``"memtsm"``, ``"mil-mlp"`` (Sultani et al.) or ``"rtfm"`` (Tian et al.)."""
    epochs: int = DEFAULT_EPOCHS
    """Validation rounds: the steps are split over this many epochs, each ending with a
    validation that may become ``best.pt``."""
    steps: int | None = None
    """Optimiser steps in all; ``None``: the model's recipe for this data size
    (:func:`memtsm.train.recipes.plan_steps`)."""
    batch_size: int | None = None
    """Bags per batch, even: ``batch_size // 2`` normal + ``batch_size // 2`` anomalous;
    ``None``: the recipe's (halves capped at the larger class)."""
    optimizer: str | None = None
    """``adamw``, ``adam`` or ``adagrad``; ``None``: the recipe's."""
    lr: float | None = None
    """Learning rate (peak of the cosine schedule); ``None``: the recipe's."""
    weight_decay: float | None = None
    """Weight decay of the matrices (decoupled for AdamW, L2 otherwise); ``None``: the recipe's."""
    grad_clip: float | None = None
    """Max global gradient L2 norm, 0 disables clipping; ``None``: the recipe's."""
    schedule: str | None = None
    """``cosine`` (anneal to 0 over all steps) or ``constant``; ``None``: the recipe's."""
    seed: int = 0
    """Seeds the split, the sampler, the initial weights and dropout (see :attr:`model_seed`)."""
    device: str = "auto"
    """``auto`` (cuda if available, else cpu; logged), ``cpu``, ``cuda``, ``cuda:N``."""
    val_fraction: float = DEFAULT_VAL_FRACTION
    """Fraction of each class (stratified) held out for validation, in (0, 1)."""
    num_segments: int = DEFAULT_NUM_SEGMENTS
    """Segments every training bag is resampled to."""
    steps_per_epoch: int | None = None
    """Batches per epoch, instead of ``steps``: the run is then ``epochs x steps_per_epoch``
    steps."""
    tie_break: str = DEFAULT_TIE_BREAK
    """Which of the epochs with the best validation ROC-AUC is kept: ``latest`` (the most
    trained) or ``val-loss`` (the lowest validation loss)."""
    feature_noise: float = DEFAULT_FEATURE_NOISE
    """Augmentation: Gaussian noise on every training segment, its std this fraction of each
    feature dimension's std over the training bags (0: none; validation never sees noise)."""
    scorer: ScorerOptions = field(default_factory=ScorerOptions)
    """Scorer architecture (``feature_dim`` comes from the store, ``kind`` from ``model``)."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss weights of the MemTSM objective (``topk`` also defines the video score of both)."""
    ensemble: int = 1
    """Members to train and save as one scorer that averages their segment scores
    (:class:`memtsm.model.ScorerEnsemble`): same data and validation videos, member ``k``
    seeded from ``(seed, k)``; each member is in ``out/members/k``, the ensemble in ``out``."""
    member: int = 0
    """Which ensemble member this run is: its weights, batch order and dropout are seeded from
    ``(seed, member)`` and its validation split from ``seed`` alone; member 0 is the plain run."""
    resume: bool = False
    """Continue from ``out/last.pt`` (the rest of the config must be the same)."""

    def __post_init__(self) -> None:
        features = self.features
        if isinstance(features, (str, os.PathLike)):
            features = (features,)
        if not isinstance(features, Sequence) or len(features) == 0:
            raise ValueError("--features needs at least one feature store directory")
        if not all(isinstance(p, (str, os.PathLike)) and str(p) for p in features):
            raise ValueError(f"--features must be paths, got {features!r}")
        object.__setattr__(self, "features", tuple(str(p) for p in features))
        if not isinstance(self.out, (str, os.PathLike)) or not str(self.out):
            raise ValueError(f"--out must be a directory path, got {self.out!r}")
        object.__setattr__(self, "out", str(self.out))
        if isinstance(self.scorer, Mapping):
            object.__setattr__(self, "scorer", _scorer_options(self.scorer))
        if isinstance(self.loss, Mapping):
            object.__setattr__(self, "loss", config_from_dict(LossConfig, self.loss, "loss"))
        if self.model not in MODEL_NAMES:
            raise ValueError(f"--model must be one of {', '.join(MODEL_NAMES)}, "
                             f"got {self.model!r}")
        if not _is_int(self.epochs) or self.epochs < 1:
            raise ValueError(f"--epochs must be an int >= 1, got {self.epochs!r}")
        if self.steps is not None and (not _is_int(self.steps) or self.steps < 1):
            raise ValueError(f"--steps must be an int >= 1, got {self.steps!r}")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 2
                                            or self.batch_size % 2):
            raise ValueError("--batch-size must be an even int >= 2 (half normal, half "
                             f"anomalous bags), got {self.batch_size!r}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZER_NAMES)}, "
                             f"got {self.optimizer!r}")
        if self.schedule is not None and self.schedule not in SCHEDULE_NAMES:
            raise ValueError(f"--schedule must be one of {', '.join(SCHEDULE_NAMES)}, "
                             f"got {self.schedule!r}")
        if self.lr is not None and (not _is_real(self.lr) or not math.isfinite(self.lr)
                                    or self.lr <= 0):
            raise ValueError(f"--lr must be > 0, got {self.lr!r}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if value is not None and (not _is_real(value) or not math.isfinite(value)
                                      or value < 0):
                raise ValueError(f"{_flag(name)} must be >= 0, got {value!r}")
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"--tie-break must be one of {', '.join(TIE_BREAKS)}, "
                             f"got {self.tie_break!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"--seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.device, str) or not _DEVICE_RE.match(self.device):
            raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not _is_real(self.val_fraction) or not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.steps_per_epoch is not None and (not _is_int(self.steps_per_epoch)
                                                 or self.steps_per_epoch < 1):
            raise ValueError(
                f"--steps-per-epoch must be an int >= 1, got {self.steps_per_epoch!r}")
        if self.steps_per_epoch is not None and self.steps is not None:
            raise ValueError("give --steps or --steps-per-epoch, not both")
        if (not _is_real(self.feature_noise) or not math.isfinite(self.feature_noise)
                or self.feature_noise < 0):
            raise ValueError(f"--feature-noise must be >= 0, got {self.feature_noise!r}")
        if not _is_int(self.num_segments) or self.num_segments < 1:
            raise ValueError(f"--num-segments must be an int >= 1, got {self.num_segments!r}")
        if not isinstance(self.scorer, ScorerOptions):
            raise ValueError(f"scorer must be ScorerOptions, got {type(self.scorer).__name__}")
        if not isinstance(self.loss, LossConfig):
            raise ValueError(f"loss must be a LossConfig, got {type(self.loss).__name__}")
        for name, minimum in (("ensemble", 1), ("member", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ValueError(f"{_flag(name)} must be an int >= {minimum}, got {value!r}")
        if self.ensemble > 1 and self.member:
            raise ValueError("--ensemble trains its own members: a member run (member > 0) "
                             "cannot be an ensemble")
        if not isinstance(self.resume, bool):
            raise ValueError(f"--resume must be a bool, got {self.resume!r}")

    # -- derived -------------------------------------------------------------------------------

    def scorer_config(self, feature_dim: int) -> ScorerConfig:
        """The scorer architecture for features of width ``feature_dim`` (one member's)."""
        return self.scorer.to_scorer_config(feature_dim, self.model)

    @property
    def model_seed(self) -> int:
        """Seed of the weights, the batch order and dropout.

        ``seed`` for member 0, else a stream derived from ``(seed, member)``; the split always
        uses ``seed``.
        """
        from memtsm.train.data import MEMBER_STREAM, derive_seed

        return self.seed if self.member == 0 else derive_seed(self.seed, MEMBER_STREAM,
                                                              self.member)

    def resolved(self) -> TrainConfig:
        """The config with absolute paths and the recipe's values in unset optimiser fields.

        This is what a run records; ``batch_size`` and ``steps`` need the data
        (:meth:`fitted`).
        """
        recipe = RECIPES[self.model]
        filled = {name: getattr(recipe, name) for name in RECIPE_FIELDS
                  if getattr(self, name) is None}
        return self.replace(
            features=tuple(str(Path(p).expanduser().resolve()) for p in self.features),
            out=str(Path(self.out).expanduser().resolve()), **filled)

    def fitted(self, n_normal: int, n_anomalous: int, world_size: int = 1) -> TrainConfig:
        """``batch_size`` and ``steps`` filled from the recipe for these training class sizes.

        The batch's halves are capped at the larger class and kept a multiple of
        ``world_size`` (each rank takes an equal share); ``steps`` stays ``None`` when
        ``steps_per_epoch`` sets the length instead.
        """
        recipe = RECIPES[self.model]
        batch = self.batch_size
        if batch is None:
            half = fitted_batch_size(recipe.batch_size, n_normal, n_anomalous) // 2
            batch = 2 * max(world_size, math.ceil(half / world_size) * world_size)
        steps = self.steps
        if steps is None and self.steps_per_epoch is None:
            steps = plan_steps(recipe, n_normal, n_anomalous, batch)
        return self.replace(batch_size=batch, steps=steps)

    def replace(self, **changes: Any) -> TrainConfig:
        """Copy with ``changes``; dicts given for ``scorer`` / ``loss`` update them key by key.

        Raises:
            ValueError: On unknown fields or invalid values.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown train option(s): {', '.join(unknown)}")
        if isinstance(changes.get("scorer"), Mapping):
            changes["scorer"] = _scorer_options({**self.scorer.options(), **changes["scorer"]})
        if isinstance(changes.get("loss"), Mapping):
            changes["loss"] = config_from_dict(
                LossConfig, {**self.loss.to_dict(), **changes["loss"]}, "loss")
        return dataclasses.replace(self, **changes)

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict (nested configs as dicts, tuples as lists)."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "features":
                value = list(value)
            elif f.name in ("scorer", "loss"):
                value = value.to_dict()
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a (possibly partial) dict: missing fields, or nested keys, take defaults.

        Raises:
            ValueError: On unknown keys, a missing ``features`` / ``out``, or invalid values.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a train config must be a mapping, got {type(data).__name__}")
        for required in ("features", "out"):
            if data.get(required) is None:
                raise ValueError(f"{_flag(required)} is required")
        return config_from_dict(cls, data, "train")

    def to_yaml(self, path: Path | str | None = None) -> str:
        """YAML text of :meth:`to_dict`; also written (atomically) to ``path`` when given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_yaml(
        cls, path: Path | str | None, overrides: Mapping[str, Any] | None = None
    ) -> TrainConfig:
        """Load a YAML config, with ``overrides`` (e.g. CLI flags) taking precedence.

        ``None`` override values are ignored ("flag not given"); nested ``scorer`` / ``loss``
        dicts are merged key by key. ``path=None`` uses the overrides alone.

        Raises:
            ValueError: On a malformed file, unknown keys or invalid values.
            FileNotFoundError: If ``path`` does not exist.
        """
        import yaml

        data: dict[str, Any] = {}
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"{path}: not valid YAML: {exc}") from None
            if loaded is not None and not isinstance(loaded, dict):
                raise ValueError(f"{path}: expected a mapping of train options")
            data = dict(loaded or {})
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key in ("scorer", "loss") and isinstance(value, Mapping):
                base = data.get(key) or {}
                if not isinstance(base, Mapping):
                    raise ValueError(f"{key} must be a mapping, got {type(base).__name__}")
                value = {**base, **{k: v for k, v in value.items() if v is not None}}
            data[key] = value
        return cls.from_dict(data)
