"""Train a segment scorer on weakly-labelled feature stores: ``train(TrainConfig) -> TrainResult``.

One loop serves both models: ``memtsm`` is trained with :func:`memtsm.model.memtsm_loss` (focal
on top-k video scores + memory reconstruction + slot diversity), ``mil-mlp`` with
:func:`memtsm.model.mil_loss` (Sultani et al. ranking, smoothness and sparsity at their paper
weights). Bags are resampled to ``num_segments`` segments and drawn by the balanced sampler of
:mod:`memtsm.train.data` (half normal, half anomalous per batch).

Optimisation: each model's :class:`~memtsm.train.recipes.Recipe` unless the config overrides
it -- the optimiser (AdamW for MemTSM, Adagrad for MIL-MLP, Adam for RTFM; as in nanoGPT, weight
decay applies to matrices only, never to biases or norm gains), the schedule (cosine from ``lr``
to 0 over all steps, or constant), gradient-norm clipping, the batch and the number of steps
(at least a few hundred whatever the data size), split over ``epochs`` validation rounds.

Validation, after every epoch, on the held-out (stratified) videos, each resampled like the
training bags: video score = mean of the top-``loss.topk`` segment scores; ROC-AUC and PR-AUC
(average precision) of those against the video labels; the validation loss (same objective,
eval mode). The *video-level validation threshold* is the F1-maximising threshold on the
validation video scores (:func:`memtsm.evaluate.metrics.f1_threshold`). Validation has only
video-level labels, so this is the honest choice: it is learnt from data the model did not
train on, and the test set never influences the weights, the selected epoch or the threshold.

Best epoch = highest validation ROC-AUC. Small validation sets saturate (ROC-AUC 1.0 from an
early epoch on), so ties are broken by ``tie_break``: ``latest`` (default) keeps the most
trained of the tied epochs -- with a cosine schedule the annealed one --, ``val-loss`` the one
with the lowest validation loss (then the earlier). It is saved as ``best.pt`` (with its
threshold and the ids of the validation videos); ``last.pt`` holds the latest epoch plus what
``--resume`` needs (optimizer, scheduler, torch RNG state, best so far, metric history).
The batches of an epoch depend only on ``(seed, epoch)``, so a resumed run reproduces the
uninterrupted one exactly on the same device.

Validation that cannot rank is warned about (``logging`` WARNING, also in
:attr:`TrainResult.warnings`) rather than refused: fewer than
:data:`memtsm.train.data.MIN_VAL_VIDEOS_PER_CLASS` validation videos of a class (before the first
epoch, :func:`memtsm.train.data.validation_warning`), and, at the end, a best validation ROC-AUC
that is undefined or no better than chance (<= 0.5), or one saturated at 1.0 in several epochs
(those were then told apart by the tie-break alone).

Run directory::

    config.yaml     the resolved TrainConfig (absolute paths)
    split.json      which videos were held out for validation and which trained, by class
                    (ids as in the stores), and the validation warning if any
    metrics.jsonl   one JSON object per epoch (see :data:`LOSS_TERMS` and :func:`train`)
    last.pt, best.pt
    curves.png      loss terms and train/val AUC, PR-AUC per epoch (written at the end)

Determinism: weights, split, sampler and dropout are all seeded from ``seed``; training runs
inside ``torch.random.fork_rng`` so the caller's global RNG is left untouched. Two runs with the
same config on the CPU give identical metrics and weights.

Distributed (``torchrun --nproc-per-node N -m memtsm train ...``, see
:mod:`memtsm.train.distributed`): W processes train one model with DistributedDataParallel,
and the run is the single-process run of the same config, up to float rounding:

* ``batch_size`` stays the *global* batch; each rank draws the same global batches and takes
  its balanced share (:func:`memtsm.train.data.split_batch`), so it must be a multiple of
  ``2 W``.
* Loss: each rank scores its share, then all-gathers the per-segment scores and reconstruction
  errors (:func:`memtsm.train.distributed.gather_rows`, forward only) and computes the loss
  terms of the *global* batch -- the top-k video scores, the focal mean over all B videos, the
  reconstruction mean over all valid normal segments, the ranking pairs across ranks. Gradients
  reach only a rank's own share, so it backpropagates ``W x batch terms + memory regulariser``:
  DDP's average of the gradients is then exactly the gradient of the global objective, with the
  regulariser (a function of the parameters alone, computed on every rank) counted once. The
  logged loss terms are the global batch's, identical on every rank.
* Dropout: rank ``r`` reseeds from ``(seed, epoch, r)`` at every epoch start (ranks need
  distinct masks), so a distributed run matches the single-process one exactly only without
  dropout (``scorer.dropout: 0``), and a resumed distributed run needs no saved RNG state.
* Rank 0 alone evaluates (train AUC, validation), picks the best epoch and the threshold and
  broadcasts its metrics row, so every rank keeps the same history and returns the same
  :class:`TrainResult`. Rank 0 alone checks and writes the run directory (config, metrics,
  checkpoints, curves) and reads ``last.pt`` for ``--resume``, sending it to the other ranks:
  only the feature stores must be readable on every node.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from memtsm.evaluate.metrics import f1_threshold, video_auc_ap
from memtsm.model import (
    ScorerOutput,
    build_scorer,
    topk_video_score,
)
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.progress import Progress, SilentProgress
from memtsm.runtime.world import World
from memtsm.train.checkpoint import (
    Checkpoint,
    CheckpointError,
    TrainingState,
    load_checkpoint_bytes,
    save_checkpoint,
)
from memtsm.train.config import TrainConfig
from memtsm.train.curves import plot_curves
from memtsm.train.data import (
    ANOMALOUS,
    DROPOUT_STREAM,
    MIN_VAL_VIDEOS_PER_CLASS,
    NORMAL,
    BagDataset,
    BalancedBatchSampler,
    DataError,
    check_batch_split,
    crop_groups,
    derive_seed,
    load_bags,
    split_batch,
    stratified_split,
    validation_warning,
)
from memtsm.train.distributed import process_group, share_from_main
from memtsm.train.objective import LOSS_TERMS, global_output, objective, used_terms
from memtsm.train.recipes import steps_per_round

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
SPLIT_NAME = "split.json"
METRICS_NAME = "metrics.jsonl"
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
CURVES_NAME = "curves.png"
#: Bags per forward pass when scoring the train / validation sets.
EVAL_CHUNK = 256
#: Config fields that may differ between a run and its ``--resume``.
RESUME_MAY_DIFFER = ("resume", "device")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        run_dir: The run directory.
        best_epoch: 1-based epoch saved as ``best.pt``.
        best_val_auc: Its validation ROC-AUC.
        val_video_threshold: Its decision threshold (F1-maximising on the validation videos'
            scores; applied to segment and frame scores by evaluate and score).
        metrics: One dict per epoch (the lines of ``metrics.jsonl``).
        device: Device the run used.
        val_video_ids: The validation videos (also in ``split.json`` and the checkpoints).
        warnings: Why the validation could not rank epochs, if it could not (also logged).
        members: An ensemble's members' own results (``()`` for a single scorer); the
            ensemble's ``best_epoch`` is 0 and its ``metrics`` empty (each member chose its
            own epoch), its AUC and threshold are those of the averaged scores.
    """

    run_dir: Path
    best_epoch: int
    best_val_auc: float | None
    val_video_threshold: float | None
    metrics: tuple[dict[str, Any], ...]
    device: str
    val_video_ids: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    members: tuple[TrainResult, ...] = ()

    @property
    def best_checkpoint(self) -> Path:
        """``run_dir / best.pt``."""
        return self.run_dir / BEST_NAME

    @property
    def last_checkpoint(self) -> Path:
        """``run_dir / last.pt``."""
        return self.run_dir / LAST_NAME


# -- metrics ---------------------------------------------------------------------------------


def _is_better(auc: float | None, loss: float, best_auc: float | None,
               best_loss: float | None, best_epoch: int, tie_break: str) -> bool:
    """Higher val ROC-AUC wins; on equal AUC ``tie_break`` decides (module docstring)."""
    if best_epoch == 0:
        return True
    a = -math.inf if auc is None else auc
    b = -math.inf if best_auc is None else best_auc
    if a != b:
        return a > b
    if tie_break == "latest":
        return True
    return best_loss is None or loss < best_loss


def _selection_warnings(history: list[dict[str, Any]], best_epoch: int,
                        tie_break: str) -> list[str]:
    """Why the best epoch's validation ROC-AUC says little (see the module docstring)."""
    if not history or not best_epoch:
        return []
    aucs = [row["val_auc"] for row in history]
    best = aucs[best_epoch - 1]
    if best is None:
        return ["validation ROC-AUC is undefined in every epoch: the best epoch was chosen by "
                "validation loss alone"]
    if best <= 0.5:
        return [f"best validation ROC-AUC {best:.4f} (epoch {best_epoch}) is no better than "
                "chance: no epoch ranked the validation videos, so best.pt is not a validated "
                "detector"]
    saturated = sum(auc == 1.0 for auc in aucs)
    if best == 1.0 and saturated > 1:
        rule = ("the latest of them was kept" if tie_break == "latest"
                else "they were told apart by validation loss alone")
        return [f"validation ROC-AUC is saturated at 1.0 in {saturated} of {len(aucs)} epochs: "
                f"{rule} (--tie-break {tie_break})"]
    return []


def _split_record(config: TrainConfig, data: BagDataset, train_idx: np.ndarray,
                  val_idx: np.ndarray, warning: str | None) -> dict[str, Any]:
    """The ``split.json`` document."""
    def by_class(indices: np.ndarray) -> dict[str, list[str]]:
        bags = [data.bags[i] for i in indices]
        return {name: [b.video_id for b in bags if b.label == label]
                for name, label in (("normal", NORMAL), ("anomalous", ANOMALOUS))}

    return {"seed": config.seed, "val_fraction": config.val_fraction,
            "min_val_videos_per_class": MIN_VAL_VIDEOS_PER_CLASS,
            "validation": by_class(val_idx), "train": by_class(train_idx),
            "warning": warning}


# -- the loop --------------------------------------------------------------------------------


def split_bags(config: TrainConfig, data: BagDataset) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` bag indices, stratified by class.

    Seeded by ``config.seed`` alone, so every ensemble member gets the same split; crops of one
    video stay on one side (else validation sees its training bags).
    """
    return stratified_split(data.labels, config.val_fraction, config.seed,
                            crop_groups(data.bags, data.identity))


@torch.no_grad()
def _forward_all(model: nn.Module, data: BagDataset, indices: np.ndarray,
                 device: torch.device) -> tuple[ScorerOutput, Tensor]:
    """Eval-mode outputs and masks of bags ``indices``, in chunks, concatenated."""
    model.eval()
    parts, masks = [], []
    for i in range(0, len(indices), EVAL_CHUNK):
        chunk = torch.as_tensor(indices[i:i + EVAL_CHUNK])
        mask = data.mask(chunk).to(device)
        parts.append(model(data.segments[chunk].to(device), mask))
        masks.append(mask)
    output = ScorerOutput(*(torch.cat(field, dim=0) for field in zip(*parts)))
    return output, torch.cat(masks, dim=0)


def _evaluate(model: nn.Module, config: TrainConfig, data: BagDataset, indices: np.ndarray,
              device: torch.device, with_loss: bool) -> dict[str, Any]:
    output, mask = _forward_all(model, data, indices, device)
    labels = data.labels[torch.as_tensor(indices)].to(device)
    video = topk_video_score(output.scores, mask, config.loss.topk).cpu().numpy()
    y = labels.cpu().numpy()
    auc, ap = video_auc_ap(video, y)
    result: dict[str, Any] = {"auc": auc, "ap": ap, "video_scores": video, "labels": y}
    if with_loss:
        with torch.no_grad():
            total, _ = objective(model, config, output, mask, labels.to(output.scores.dtype))
        result["loss"] = float(total)
    return result


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The config's optimiser; weight decay on matrices only (decoupled for AdamW)."""
    groups = _param_groups(model, config.weight_decay)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=config.lr, eps=1e-8, foreach=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, foreach=True)
    return torch.optim.AdamW(groups, lr=config.lr, foreach=True)  # foreach: ~2x faster on CPU


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
               total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def _check_resume(config: TrainConfig, ckpt: Checkpoint, path: Path) -> TrainingState:
    if ckpt.train_config is None or ckpt.training_state is None:
        raise CheckpointError(f"{path} has no training state; it cannot be resumed")
    mine = config.to_dict()
    theirs = ckpt.train_config.to_dict()
    diffs = [f"{key}: run has {theirs.get(key)!r}, now {mine.get(key)!r}"
             for key in sorted(set(mine) | set(theirs))
             if key not in RESUME_MAY_DIFFER and mine.get(key) != theirs.get(key)]
    if diffs:
        raise ValueError(f"--resume needs the same config as the run in {config.out}; "
                         f"differences: {'; '.join(diffs)}")
    return ckpt.training_state


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _claim_run_dir(config: TrainConfig) -> bytes:
    """Check ``config.out`` for a new run or a resume; the bytes of ``last.pt`` when resuming.

    A run is only what a committed epoch left (``last.pt``): a directory from a run killed
    before its first epoch ended is started afresh, with or without ``--resume``, so a job
    script can always pass ``--resume`` (e.g. a requeued SLURM job).

    Raises:
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
    """
    run_dir = Path(config.out)
    last_path = run_dir / LAST_NAME
    if last_path.is_file():
        if config.resume:
            return last_path.read_bytes()
        raise FileExistsError(f"{run_dir} already holds a training run; pass --resume to "
                              "continue it or choose another --out")
    if config.resume:
        logger.warning("--resume: %s not found (no epoch was committed); starting the run",
                       last_path)
    return b""


def train(config: TrainConfig, progress: Progress | None = None,
          world: World | None = None) -> TrainResult:
    """Train a scorer; write the run directory; return the best epoch and its threshold.

    Each line of ``metrics.jsonl`` holds: ``epoch`` (1-based), ``steps``, ``loss_<term>`` for
    every :class:`LossTerms` field (mean over the epoch's batches, train mode), ``train_auc``
    (video-level ROC-AUC on the training videos, eval mode), ``val_loss``, ``val_auc`` (ROC-AUC),
    ``val_ap`` (PR-AUC), ``val_f1`` and ``val_video_threshold`` (F1-maximising), ``lr`` (at the
    epoch's first step) and ``seconds``.

    Args:
        config: The run; ``config.resume`` continues ``out/last.pt``.
        progress: Reports epochs (items) and optimisation steps (units).
        world: The processes training together (default: :meth:`World.from_env`, i.e. the
            ranks torchrun started, or this process alone). Every rank calls :func:`train`
            with the same config; see the module docstring.

    Returns:
        :class:`TrainResult` (the same on every rank).

    Raises:
        DataError: Unusable stores (see :func:`memtsm.train.data.load_bags`) or too few
            videos of a class to validate.
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
        ValueError: ``resume`` with a different config or other feature stores; a
            ``batch_size`` that does not split into equal balanced shares over the ranks.
        RuntimeError: ``--device cuda`` without CUDA; a distributed set-up error
            (:class:`~memtsm.train.distributed.DistributedError`), also raised on the other
            ranks when rank 0 fails to start the run.
    """
    config = config.resolved()
    world = World.from_env() if world is None else world
    if config.batch_size is not None:
        check_batch_split(config.batch_size, world.world_size)
    device = world.device(config.device)
    with process_group(world, device), _flush_denormals(device):
        if config.ensemble > 1:
            from memtsm.train.ensemble import train_ensemble

            return train_ensemble(config, progress or SilentProgress(), world, device)
        return _train(config, progress or SilentProgress(), world, device)


@contextmanager
def _flush_denormals(device: torch.device) -> Iterator[None]:
    """Denormal floats flushed to zero on this thread while training on the CPU.

    Training that saturates (RTFM on 195 C3D videos, cross-entropy ~0.002) fills tensors with
    denormals, and x86 arithmetic on them is slow: a step of RTFM's took 6.25 s instead of 0.65 s
    at one thread (BENCHMARKS.md). torch's flag covers the calling thread only, so it helps
    single-threaded training (``--threads 1``), not torch's other OpenMP workers. It is switched
    off again afterwards (torch's default; torch has no getter for the previous value).
    """
    if device.type != "cpu" or not torch.set_flush_denormal(True):
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _train(config: TrainConfig, progress: Progress, world: World,
           device: torch.device, data: BagDataset | None = None) -> TrainResult:
    """One run; ``data``: the bags of ``config.features`` already loaded (ensemble members)."""
    run_dir = Path(config.out)
    last_path, metrics_path = run_dir / LAST_NAME, run_dir / METRICS_NAME
    # Rank 0 checks the run directory and reads last.pt; every rank gets the same bytes.
    last_bytes = share_from_main(world, device, lambda: _claim_run_dir(config))
    resume_ckpt = load_checkpoint_bytes(last_bytes, last_path) if last_bytes else None

    if data is None:
        data = load_bags(config.features, config.num_segments)
    train_idx, val_idx = split_bags(config, data)
    n_normal, n_anomalous = data.class_counts()
    train_labels = data.labels[torch.as_tensor(train_idx)]
    config = config.fitted(int((train_labels == NORMAL).sum()),
                           int((train_labels == ANOMALOUS).sum()), world.world_size)
    check_batch_split(config.batch_size, world.world_size)
    if resume_ckpt is not None:
        _check_resume(config, resume_ckpt, last_path)
    val_labels = data.labels[torch.as_tensor(val_idx)]
    if not (bool((val_labels == NORMAL).any()) and bool((val_labels == ANOMALOUS).any())):
        raise DataError(
            f"validation needs both classes, but the stores hold {n_normal} normal and "
            f"{n_anomalous} anomalous labelled videos: at least 2 of each are required")
    if resume_ckpt is not None and resume_ckpt.feature_identity != data.identity:
        raise ValueError(f"--resume: the feature stores changed since {last_path} was written")
    val_ids = tuple(data.bags[i].video_id for i in val_idx)
    if resume_ckpt is not None and resume_ckpt.val_video_ids not in (None, val_ids):
        raise ValueError(f"--resume: the validation videos differ from those of {last_path} "
                         "(videos were added to or removed from the feature stores)")
    split_warning = validation_warning(val_labels)
    if split_warning and world.is_main:
        logger.warning("%s", split_warning)
    logger.info("%d bags (%d normal, %d anomalous; %d unlabelled skipped): %d train, %d val",
                len(data), n_normal, n_anomalous, data.skipped_unlabelled, len(train_idx),
                len(val_idx))
    if world.is_distributed:
        logger.info("rank %d of %d on %s: %d bags of each global batch of %d", world.rank,
                    world.world_size, device, config.batch_size // world.world_size,
                    config.batch_size)

    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / SPLIT_NAME, json.dumps(
            _split_record(config, data, train_idx, val_idx, split_warning), indent=1) + "\n")
    scorer_config = config.scorer_config(data.feature_dim)
    sampler = BalancedBatchSampler(train_labels, config.batch_size, config.model_seed,
                                   indices=train_idx,
                                   steps_per_epoch=config.steps_per_epoch
                                   or steps_per_round(config.steps, config.epochs))
    steps_per_epoch = len(sampler)
    logger.info("%s: %d steps (%d epochs x %d) of %d bags, %s lr %g, %s schedule", config.model,
                config.epochs * steps_per_epoch, config.epochs, steps_per_epoch,
                config.batch_size, config.optimizer, config.lr, config.schedule)
    segments = data.segments.to(device)
    masks = data.mask(torch.arange(len(data))).to(device)
    noise_std = _noise_std(segments, masks, train_idx, config.feature_noise)
    labels = data.labels.to(device=device, dtype=torch.float32)
    rng_devices = [device.index or 0] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(config.model_seed)
        model = build_scorer(scorer_config).to(device)
        optimizer = _optimizer(model, config)
        scheduler = _scheduler(optimizer, config, config.epochs * steps_per_epoch)
        history: list[dict[str, Any]] = []
        best_epoch, best_auc, best_loss = 0, None, None
        start_epoch = 0
        if resume_ckpt is not None:
            state = resume_ckpt.training_state
            assert state is not None
            model.load_state_dict(resume_ckpt.state_dict)
            optimizer.load_state_dict(state.optimizer)
            scheduler.load_state_dict(state.scheduler)
            torch.set_rng_state(state.rng_state)
            if state.cuda_rng_state is not None and device.type == "cuda":
                torch.cuda.set_rng_state(state.cuda_rng_state, device)
            if state.world_size != world.world_size and world.is_main:
                logger.warning("%s was trained by %d process(es), now %d: same batches, but "
                               "dropout masks differ from an uninterrupted run", last_path,
                               state.world_size, world.world_size)
            history = [_current_row(h) for h in state.history]
            best_epoch, best_auc, best_loss = (state.best_epoch, state.best_val_auc,
                                               state.best_val_loss)
            start_epoch = resume_ckpt.epoch
            if world.is_main:  # drop lines of an epoch that never committed
                _write_lines(metrics_path, history)
            logger.info("resuming %s at epoch %d/%d", run_dir, start_epoch + 1, config.epochs)
        elif world.is_main:
            config.replace(resume=False).to_yaml(run_dir / CONFIG_NAME)
            _write_lines(metrics_path, [])
        trainer = model
        if world.is_distributed:
            trainer = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)

        common = dict(scorer_config=scorer_config, loss_config=config.loss,
                      train_config=config.replace(resume=False), feature_identity=data.identity,
                      extract_config=data.extract_config, val_video_ids=val_ids)
        remaining = config.epochs - start_epoch
        progress.start(remaining, remaining * steps_per_epoch, "steps")
        try:
            for epoch in range(start_epoch, config.epochs):
                row = _run_epoch(trainer, model, optimizer, scheduler, sampler, epoch, segments,
                                 masks, labels, config, world, progress, noise_std)
                # Rank 0 validates; every rank takes its row (and so the same decisions).
                row = json.loads(share_from_main(world, device, functools.partial(
                    _validation_row, model, config, data, train_idx, val_idx, row)))
                history.append(row)
                improved = _is_better(row["val_auc"], row["val_loss"], best_auc, best_loss,
                                      best_epoch, config.tie_break)
                if improved:
                    best_epoch, best_auc, best_loss = epoch + 1, row["val_auc"], row["val_loss"]
                if world.is_main:
                    _commit_epoch(model, optimizer, scheduler, device, row, improved, history,
                                  (best_epoch, best_auc, best_loss), world, run_dir, common)
                info = _epoch_info(row, config)
                logger.info("epoch %d/%d: %s", epoch + 1, config.epochs, info)
                progress.item_done(f"epoch {epoch + 1}/{config.epochs}", True, info)
        finally:
            progress.close()

    if history and world.is_main:
        plot_curves(history, run_dir / CURVES_NAME, used_terms(config))
    warnings = [split_warning] if split_warning else []
    for message in _selection_warnings(history, best_epoch, config.tie_break):
        if world.is_main:
            logger.warning("%s", message)
        warnings.append(message)
    return TrainResult(run_dir=run_dir, best_epoch=best_epoch, best_val_auc=best_auc,
                       val_video_threshold=(history[best_epoch - 1]["val_video_threshold"]
                                            if best_epoch else None),
                       metrics=tuple(history), device=str(device), val_video_ids=val_ids,
                       warnings=tuple(warnings))


def _validation_row(model: nn.Module, config: TrainConfig, data: BagDataset,
                    train_idx: np.ndarray, val_idx: np.ndarray, row: dict[str, Any]) -> bytes:
    """``row`` completed with train AUC, validation metrics, threshold and seconds, as JSON."""
    device = next(model.parameters()).device
    train_eval = _evaluate(model, config, data, train_idx, device, with_loss=False)
    val = _evaluate(model, config, data, val_idx, device, with_loss=True)
    threshold, val_f1 = f1_threshold(val["video_scores"], val["labels"])
    row.update(train_auc=train_eval["auc"], val_loss=val["loss"], val_auc=val["auc"],
               val_ap=val["ap"], val_f1=val_f1, val_video_threshold=threshold)
    row["seconds"] = time.perf_counter() - row.pop("_t0")
    return json.dumps(row).encode()


def _commit_epoch(model: nn.Module, optimizer: torch.optim.Optimizer,
                  scheduler: torch.optim.lr_scheduler.LRScheduler, device: torch.device,
                  row: dict[str, Any], improved: bool, history: list[dict[str, Any]],
                  best: tuple[int, float | None, float | None], world: World, run_dir: Path,
                  common: dict[str, Any]) -> None:
    """Append ``row`` to metrics.jsonl, write best.pt if ``improved``, then last.pt (rank 0)."""
    with open(run_dir / METRICS_NAME, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    epoch = row["epoch"]
    val_metrics = {k: row[k] for k in ("val_loss", "val_auc", "val_ap", "val_f1")}
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if improved:
        save_checkpoint(run_dir / BEST_NAME, Checkpoint(
            state_dict=weights, val_video_threshold=row["val_video_threshold"], epoch=epoch,
            val_metrics=val_metrics, **common))
    best_epoch, best_auc, best_loss = best
    state = TrainingState(
        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
        rng_state=torch.get_rng_state(),
        cuda_rng_state=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        best_epoch=best_epoch, best_val_auc=best_auc, best_val_loss=best_loss,
        history=tuple(history), world_size=world.world_size)
    # last.pt is the commit point of an epoch (--resume trusts it, not the log).
    save_checkpoint(run_dir / LAST_NAME, Checkpoint(
        state_dict=weights, val_video_threshold=row["val_video_threshold"], epoch=epoch,
        val_metrics=val_metrics,
        training_state=state, **common))


def _noise_std(segments: Tensor, masks: Tensor, train_idx: np.ndarray,
               feature_noise: float) -> Tensor | None:
    """``[D]`` std of the augmentation noise per feature dimension, or None without noise.

    ``feature_noise`` times each dimension's std over the real (unpadded) segments of the
    training bags, so the noise has the features' own scale whatever their normalisation.
    """
    if feature_noise <= 0:
        return None
    index = torch.as_tensor(train_idx, device=segments.device)
    real = segments[index][masks[index]]  # [n_segments, D]
    return feature_noise * real.std(dim=0)


def _run_epoch(trainer: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, sampler: BalancedBatchSampler,
               epoch: int, segments: Tensor, masks: Tensor, labels: Tensor, config: TrainConfig,
               world: World, progress: Progress, noise_std: Tensor | None = None
               ) -> dict[str, Any]:
    """One epoch of optimisation steps; returns the row of loss means (of global batches).

    ``trainer`` is ``model``, or its DDP wrapper in a distributed run (the memory regulariser
    is read from ``model``, outside the forward pass). ``segments [N, S, D]``, ``masks bool
    [N, S]`` and ``labels float32 [N]`` hold every bag, on the device; ``noise_std [D]``, when
    given, scales Gaussian noise added to each batch's segments (from the seeded torch RNG, so
    a resumed run draws the same noise).
    """
    t0 = time.perf_counter()
    lr = float(optimizer.param_groups[0]["lr"])
    trainer.train()
    if world.is_distributed:  # distinct dropout masks per rank, reproducible per epoch
        torch.manual_seed(derive_seed(config.model_seed, DROPOUT_STREAM, epoch, world.rank))
    sums = torch.zeros(len(LOSS_TERMS), dtype=torch.float64, device=segments.device)
    batches = sampler.epoch(epoch)
    for batch in batches:
        shares = split_batch(batch, world.world_size).to(segments.device)  # [W, B / W]
        index = shares[world.rank]
        inputs = segments[index]  # [b, S, D]
        if noise_std is not None:
            inputs = inputs + torch.randn_like(inputs) * noise_std
        output = trainer(inputs, masks[index])  # -> scores [b, S]
        if world.is_distributed:
            output, index = global_output(world, output), shares.flatten()
        total, terms = objective(model, config, output, masks[index], labels[index],
                                  world.world_size)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(trainer.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        sums += torch.stack([t.detach().to(torch.float64) for t in terms])
        progress.advance(1)
    means = (sums / len(batches)).tolist()
    if not all(math.isfinite(v) for v in means):
        raise RuntimeError(f"non-finite training loss in epoch {epoch + 1} (try a lower --lr); "
                           "last.pt still holds the previous epoch")
    row: dict[str, Any] = {"epoch": epoch + 1, "steps": len(batches)}
    row.update({f"loss_{name}": value for name, value in zip(LOSS_TERMS, means)})
    row["lr"] = lr
    row["_t0"] = t0
    return row


def _current_row(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row of any memtsm version with today's keys (``threshold`` was renamed)."""
    row = dict(row)
    if "threshold" in row:
        row["val_video_threshold"] = row.pop("threshold")
    return row


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _epoch_info(row: dict[str, Any], config: TrainConfig) -> str:
    terms = " ".join(f"{name}={row[f'loss_{name}']:.4f}" for name in used_terms(config))
    return (f"loss={row['loss_total']:.4f} ({terms}) val_auc={_fmt(row['val_auc'])} "
            f"val_ap={_fmt(row['val_ap'])} val_video_threshold={row['val_video_threshold']:.3f}")
