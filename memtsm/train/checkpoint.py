"""Self-describing scorer checkpoints: safe to load, enough to rebuild and to use the model.

A checkpoint file is a ``torch.save`` of one dict holding only tensors and plain Python types
(str, int, float, bool, None, list, tuple, dict), so it loads with
``torch.load(path, weights_only=True)``. :func:`load_checkpoint` never uses anything else: a file
that needs arbitrary unpickling (and could run code while loading) is refused with
:class:`CheckpointError`.

Keys of the file::

    format, format_version      "memtsm-scorer", CHECKPOINT_VERSION
    scorer_config, loss_config  ScorerConfig.to_dict(), LossConfig.to_dict()
    train_config                TrainConfig.to_dict() (None if not trained by memtsm)
    feature_identity            the feature store identity (feature_dim, layout, feature_spec, ...)
    extract_config              the store's extraction config (None for imported features)
    val_video_threshold         decision threshold on video scores, chosen on the validation
                                videos (None if unknown; version 1 files call it threshold)
    epoch                       completed epochs when saved
    val_metrics                 {name: float | None} at that epoch
    state_dict                  the scorer's parameters and buffers
    memtsm_version, torch_version
    training_state              last.pt only: optimizer, scheduler, RNG state, best-so-far,
                                metrics history, world size (None in best.pt)

Files are written atomically: to a temporary file in the same directory, flushed to disk, then
renamed over the target.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memtsm import __version__
from memtsm.extract.identity import FeatureIdentity
from memtsm.model import LossConfig, ScorerConfig, build_scorer
from memtsm.runtime.configs import config_from_dict
from memtsm.runtime.files import atomic_path
from memtsm.train.config import TrainConfig

CHECKPOINT_FORMAT = "memtsm-scorer"
#: 2: ``threshold`` renamed ``val_video_threshold`` (version 1 files are still read).
CHECKPOINT_VERSION = 2


class CheckpointError(ValueError):
    """A file is not a loadable memtsm checkpoint (unsafe, corrupt, foreign or too new)."""


@dataclass(frozen=True)
class TrainingState:
    """What ``--resume`` needs beyond the weights (stored in ``last.pt`` only).

    Attributes:
        optimizer: ``optimizer.state_dict()``.
        scheduler: ``scheduler.state_dict()``.
        rng_state: ``torch.get_rng_state()`` after the saved epoch (dropout stream).
        cuda_rng_state: ``torch.cuda.get_rng_state()`` when training on CUDA, else ``None``.
        best_epoch: Best epoch so far (0: none yet).
        best_val_auc: Its validation ROC-AUC (``None`` if undefined).
        best_val_loss: Its validation loss.
        history: Per-epoch metric dicts so far (the lines of metrics.jsonl).
        world_size: Processes that trained it (1: one process; more: torchrun, whose ranks
            draw their dropout from a stream seeded per epoch and rank, not from
            ``rng_state``).
    """

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng_state: torch.Tensor
    cuda_rng_state: torch.Tensor | None = None
    best_epoch: int = 0
    best_val_auc: float | None = None
    best_val_loss: float | None = None
    history: tuple[dict[str, Any], ...] = ()
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the checkpoint file."""
        data = dataclasses.asdict(self)
        data["history"] = [dict(h) for h in self.history]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingState:
        """Rebuild from :meth:`to_dict` output."""
        return config_from_dict(cls, data, "training state")


@dataclass(frozen=True)
class Checkpoint:
    """A scorer and everything needed to rebuild, trust and use it (see the module docs)."""

    scorer_config: ScorerConfig
    state_dict: dict[str, torch.Tensor]
    feature_identity: FeatureIdentity
    loss_config: LossConfig = dataclasses.field(default_factory=LossConfig)
    train_config: TrainConfig | None = None
    extract_config: dict[str, Any] | None = None
    val_video_threshold: float | None = None
    epoch: int = 0
    val_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    memtsm_version: str = __version__
    torch_version: str = str(torch.__version__)
    training_state: TrainingState | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file's dict: tensors and plain Python types only.

        Raises:
            TypeError: A value is neither a tensor nor a plain Python type.
        """
        return _plain({
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "scorer_config": self.scorer_config.to_dict(),
            "loss_config": self.loss_config.to_dict(),
            "train_config": None if self.train_config is None else self.train_config.to_dict(),
            "feature_identity": FeatureIdentity.from_dict(self.feature_identity).to_dict(),
            "extract_config": None if self.extract_config is None else dict(self.extract_config),
            "val_video_threshold": None if self.val_video_threshold is None
            else float(self.val_video_threshold),
            "epoch": int(self.epoch),
            "val_metrics": dict(self.val_metrics),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
            "memtsm_version": self.memtsm_version,
            "torch_version": self.torch_version,
            "training_state": None if self.training_state is None
            else self.training_state.to_dict(),
        }, "checkpoint")

    @classmethod
    def from_dict(cls, data: Any, source: str = "checkpoint") -> Checkpoint:
        """Validate and rebuild a checkpoint from its file dict.

        Raises:
            CheckpointError: Not a memtsm checkpoint, a newer format, or invalid contents.
        """
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{source} is not a memtsm scorer checkpoint (no format={CHECKPOINT_FORMAT!r})")
        version = data.get("format_version")
        if not isinstance(version, int) or version > CHECKPOINT_VERSION or version < 1:
            raise CheckpointError(
                f"{source}: checkpoint format version {version!r} is not supported by memtsm "
                f"{__version__} (reads up to {CHECKPOINT_VERSION}); upgrade memtsm")
        try:
            train = data.get("train_config")
            state = data.get("training_state")
            state_dict = data["state_dict"]
            if not isinstance(state_dict, dict) or not all(
                    isinstance(v, torch.Tensor) for v in state_dict.values()):
                raise ValueError("state_dict must map names to tensors")
            threshold = data.get("val_video_threshold", data.get("threshold"))
            return cls(
                scorer_config=ScorerConfig.from_dict(data["scorer_config"]),
                state_dict=state_dict,
                feature_identity=FeatureIdentity.from_dict(data["feature_identity"]),
                loss_config=LossConfig.from_dict(data.get("loss_config") or {}),
                train_config=None if train is None else TrainConfig.from_dict(train),
                extract_config=data.get("extract_config"),
                val_video_threshold=None if threshold is None else float(threshold),
                epoch=int(data.get("epoch", 0)),
                val_metrics=dict(data.get("val_metrics") or {}),
                memtsm_version=str(data.get("memtsm_version", "")),
                torch_version=str(data.get("torch_version", "")),
                training_state=None if state is None else TrainingState.from_dict(state),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: invalid checkpoint contents: {exc}") from None

    @property
    def feature_dim(self) -> int:
        """D of the features the scorer expects."""
        return self.scorer_config.feature_dim


def _plain(value: Any, where: str) -> Any:
    """``value`` with str/int/float/bool subclasses (numpy scalars, TorchVersion) made exact.

    Raises:
        TypeError: Something that ``torch.load(weights_only=True)`` would refuse.
    """
    if value is None or isinstance(value, torch.Tensor):
        return value
    for base in (bool, int, float, str):  # bool first: it is an int subclass
        if isinstance(value, base):
            return base(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint key {where}[{key!r}] must be a str or int")
            out[_plain(key, where)] = _plain(item, f"{where}[{key!r}]")
        return out
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy 0-d / scalar
        return _plain(value.item(), where)
    raise TypeError(f"checkpoint value {where} of type {type(value).__name__} is not a tensor "
                    "or plain Python type; it could not be loaded with weights_only=True")


def save_checkpoint(path: Path | str, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (tmp file in the same folder + rename).

    Every value is checked (and numpy / str-subclass scalars converted) first, so whatever is
    saved loads with ``torch.load(weights_only=True)``.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        TypeError: A value is neither a tensor nor a plain Python type (nothing is written).
    """
    payload = checkpoint.to_dict()
    path = Path(path)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Load a checkpoint with ``torch.load(weights_only=True)`` only, onto the CPU.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: The file needs unsafe unpickling (refused: no code is run), is corrupt,
            or is not a (supported) memtsm checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    return _load(path, path)


def load_checkpoint_bytes(data: bytes, source: Path | str) -> Checkpoint:
    """:func:`load_checkpoint` of a file's bytes (read elsewhere, e.g. by another process).

    Args:
        data: The file's contents.
        source: Where they came from (for error messages).

    Raises:
        CheckpointError: As :func:`load_checkpoint`.
    """
    return _load(io.BytesIO(data), Path(source))


def _load(file: Path | io.BytesIO, path: Path) -> Checkpoint:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol chatter of torch.load
            data = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines()
                       if "Unsupported" in line or "WeightsUnpickler error" in line), "")
        raise CheckpointError(
            f"{path} refused: it holds objects other than tensors and plain Python types, and "
            "unpickling it could run arbitrary code; memtsm only loads checkpoints with "
            f"torch.load(weights_only=True), so nothing was executed. {reason}".rstrip()
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc})") from None
    return Checkpoint.from_dict(data, source=str(path))


def build_model_from_checkpoint(
    checkpoint: Checkpoint | Path | str, device: torch.device | str = "cpu"
) -> nn.Module:
    """The scorer described by ``checkpoint``, with its weights, in eval mode on ``device``.

    Raises:
        CheckpointError: The weights do not fit the stored architecture.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    model = build_scorer(checkpoint.scorer_config)
    try:
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint weights do not fit its scorer_config: {exc}") from None
    return model.to(device).eval()
