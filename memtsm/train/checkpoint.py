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
    val_video_ids               ids of the videos held out for validation, which chose the epoch
                                and the threshold (absent in files written before memtsm
                                recorded them: None)
    state_dict                  the scorer's parameters and buffers
    memtsm_version, torch_version
    training_state              last.pt only: optimizer, scheduler, RNG state, best-so-far,
                                metrics history, world size (None in best.pt)

A file that is not a checkpoint at all (a video, an HDF5 feature shard, a text file...) is
recognised from its first bytes before anything is unpickled, and :class:`CheckpointError` says
what it is (:func:`describe_file`).

Files are written atomically: to a temporary file in the same directory, flushed to disk, then
renamed over the target.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import struct
import warnings
import zipfile
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
#: 3: ``scorer_config.mil_linear_second`` (MIL-MLP files of versions 1-2 have a ReLU there).
#: 4: ``scorer_config.members`` (seed ensembles, ``memtsm train --ensemble``).
CHECKPOINT_VERSION = 4


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
    val_video_ids: tuple[str, ...] | None = None
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
            "val_video_ids": None if self.val_video_ids is None else list(self.val_video_ids),
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
                f"{source} is not a memtsm scorer checkpoint: it is a torch file holding "
                f"{_describe_object(data)}, without format={CHECKPOINT_FORMAT!r} (memtsm "
                "checkpoints are the best.pt / last.pt files of memtsm train)")
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
            val_ids = data.get("val_video_ids")
            if val_ids is not None and not (isinstance(val_ids, (list, tuple)) and all(
                    isinstance(v, str) for v in val_ids)):
                raise ValueError("val_video_ids must be a list of video ids")
            return cls(
                scorer_config=ScorerConfig.from_dict(
                    {"mil_linear_second": False, **data["scorer_config"]} if version < 3
                    else data["scorer_config"]),
                state_dict=state_dict,
                feature_identity=FeatureIdentity.from_dict(data["feature_identity"]),
                loss_config=LossConfig.from_dict(data.get("loss_config") or {}),
                train_config=None if train is None else TrainConfig.from_dict(train),
                extract_config=data.get("extract_config"),
                val_video_threshold=None if threshold is None else float(threshold),
                epoch=int(data.get("epoch", 0)),
                val_metrics=dict(data.get("val_metrics") or {}),
                val_video_ids=None if val_ids is None else tuple(val_ids),
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


#: Bytes read to recognise a file (:func:`describe_file`).
SNIFF_BYTES = 64

#: ``(magic, offset, description)`` of files often passed where a checkpoint belongs.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89HDF\r\n\x1a\n", 0, "an HDF5 file (e.g. a feature store shard)"),
    (b"ftyp", 4, "an MP4/ISO media file (a video)"),
    (b"moov", 4, "a QuickTime/MP4 media file (a video)"),
    (b"mdat", 4, "a QuickTime/MP4 media file (a video)"),
    (b"\x1a\x45\xdf\xa3", 0, "a Matroska/WebM media file (a video)"),
    (b"FLV\x01", 0, "an FLV video"),
    (b"\x00\x00\x01\xba", 0, "an MPEG program stream (a video)"),
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image"),
    (b"\xff\xd8\xff", 0, "a JPEG image"),
    (b"GIF8", 0, "a GIF image"),
    (b"\x93NUMPY", 0, "a NumPy .npy array"),
    (b"\x1f\x8b", 0, "a gzip-compressed file"),
    (b"BZh", 0, "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", 0, "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", 0, "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"%PDF", 0, "a PDF document"),
    (b"\x7fELF", 0, "an ELF executable or library"),
)


def describe_file(head: bytes, file: Path | io.BytesIO) -> str | None:
    """What a file is, from its first :data:`SNIFF_BYTES` bytes, if torch.save did not write it.

    ``torch.save`` writes a zip archive holding ``<name>/data.pkl`` (or, in its legacy format, a
    pickle stream of protocol 2 or more); nothing else can be a checkpoint.

    Args:
        head: The file's first bytes (at least :data:`SNIFF_BYTES` if it is that long).
        file: The file, to list a zip archive's members.

    Returns:
        ``None`` for what may be a torch file, else a description such as ``"an HDF5 file"``,
        ``"an MP4/ISO media file (a video)"``, ``"a zip archive without data.pkl ..."`` or
        ``"a text file ..."``.
    """
    if not head:
        return "an empty file"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
        return None  # a pickle stream: torch.load's restricted unpickler decides
    if head.startswith(b"PK\x03\x04"):
        try:
            if isinstance(file, io.BytesIO):
                file.seek(0)
            with zipfile.ZipFile(file) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return None  # a damaged torch file, perhaps: torch.load reports it
        finally:
            if isinstance(file, io.BytesIO):
                file.seek(0)
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            return None
        if names and all(name.endswith(".npy") for name in names):
            return "a NumPy .npz archive"
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return f"a zip archive without data.pkl ({len(names)} member(s): {shown or 'none'})"
    for magic, offset, what in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return what
    if head.startswith(b"RIFF") and len(head) >= 12:
        kind = {b"AVI ": "an AVI video", b"WAVE": "a WAV audio file",
                b"WEBP": "a WebP image"}.get(head[8:12])
        return kind or "a RIFF media file"
    if len(head) >= 10 and head[8:9] == b"{":
        (size,) = struct.unpack("<Q", head[:8])
        if 0 < size < 100_000_000:
            return "a safetensors file"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a multi-byte character cut at the end is text
            text = head[:exc.start].decode("utf-8") if exc.start >= len(head) - 3 else ""
        if text.strip() and all(c.isprintable() or c in "\t\r\n" for c in text):
            first = text.strip().splitlines()[0][:40]
            return f"a text file (first line {first!r})"
    return f"unrecognised binary data (first bytes {head[:8].hex(' ')})"


def _describe_object(data: Any) -> str:
    """A short description of what a foreign torch file holds."""
    if isinstance(data, dict):
        keys = list(data)
        if keys and all(isinstance(v, torch.Tensor) for v in data.values()):
            return f"a state dict of {len(keys)} tensor(s) (e.g. {keys[0]!r})"
        shown = ", ".join(repr(k) for k in keys[:4]) + (", ..." if len(keys) > 4 else "")
        return f"a dict with keys {shown}" if keys else "an empty dict"
    if isinstance(data, torch.Tensor):
        return f"a tensor of shape {tuple(data.shape)}"
    return f"a {type(data).__name__}"


def _unpickling_reason(message: str) -> str:
    """The reason torch's restricted unpickler gives, or ``""``.

    It is the text after ``WeightsUnpickler error:``, which may be on a later line.
    """
    lines = [line.strip() for line in message.splitlines()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            if not rest:
                rest = next((other for other in lines[i + 1:] if other), "")
            return rest.split(" Please use `torch.serialization")[0].strip()
    return next((line for line in lines if line.startswith("Unsupported")), "")


def _load(file: Path | io.BytesIO, path: Path) -> Checkpoint:
    if isinstance(file, io.BytesIO):
        head = file.getvalue()[:SNIFF_BYTES]
    else:
        try:
            with open(file, "rb") as handle:
                head = handle.read(SNIFF_BYTES)
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot be read ({exc})") from None
    what = describe_file(head, file)
    if what is not None:
        raise CheckpointError(
            f"{path} is not a memtsm checkpoint: it is {what}, not a file written by "
            "torch.save (memtsm checkpoints are the best.pt / last.pt files of memtsm train); "
            "nothing was unpickled")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol chatter of torch.load
            data = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickling_reason(str(exc))
        raise CheckpointError(
            f"{path} refused: it holds objects other than tensors and plain Python types, and "
            "unpickling it could run arbitrary code; memtsm only loads checkpoints with "
            "torch.load(weights_only=True), so nothing was executed"
            + (f" (torch: {reason})" if reason else "")
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
