"""``memtsm train --ensemble N``: N members trained alike, saved as one averaging scorer.

Member ``k`` is the ordinary run of the same config with ``member=k`` in ``out/members/k``
(:func:`memtsm.train.loop.train`): the same training and validation videos (the split is seeded
by ``seed`` alone), its own initial weights, batch order and dropout (seeded by ``(seed, k)``;
member 0 is exactly the single run), its own best epoch chosen on the validation videos. The
members' ``best.pt`` are then joined into one :class:`memtsm.model.ScorerEnsemble` whose
segment scores are the members' mean, validated on the same validation videos (ROC-AUC, PR-AUC)
and given its own F1-maximising video-level threshold. The test set plays no part.

Run directory::

    members/0 .. members/N-1   each an ordinary run directory
    config.yaml, split.json    the resolved ensemble config, the (shared) split
    ensemble.json              the ensemble's validation metrics and each member's
    best.pt                    the ensemble checkpoint (scorer_config.members = N)

``--resume`` resumes every unfinished member (finished ones return at once) and joins them
again. Under torchrun every member trains on all ranks; rank 0 joins and writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from memtsm.evaluate.metrics import f1_threshold
from memtsm.model import build_scorer
from memtsm.runtime.files import atomic_write_text
from memtsm.runtime.progress import Progress
from memtsm.runtime.world import World
from memtsm.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from memtsm.train.config import TrainConfig
from memtsm.train.data import BagDataset, load_bags
from memtsm.train.distributed import share_from_main
from memtsm.train.loop import (
    BEST_NAME,
    CONFIG_NAME,
    LAST_NAME,
    SPLIT_NAME,
    TrainResult,
    _evaluate,
    _train,
    split_bags,
)

logger = logging.getLogger(__name__)

ENSEMBLE_NAME = "ensemble.json"
MEMBERS_DIR = "members"


def member_config(config: TrainConfig, member: int) -> TrainConfig:
    """The ordinary run that trains member ``member`` of ``config``'s ensemble."""
    return config.replace(ensemble=1, member=member,
                          out=str(Path(config.out) / MEMBERS_DIR / str(member)))


def train_ensemble(config: TrainConfig, progress: Progress, world: World,
                   device: torch.device) -> TrainResult:
    """Train ``config.ensemble`` members, then join and validate them (module docstring).

    Raises:
        FileExistsError: ``out`` holds a single (non-ensemble) run, or a member's directory
            holds a run and ``resume`` is False.
    """
    run_dir = Path(config.out)
    if (run_dir / LAST_NAME).is_file():
        raise FileExistsError(f"{run_dir} holds a single training run, not an ensemble; "
                              "choose another --out")
    data = load_bags(config.features, config.num_segments)  # read once for all members
    members = []
    for member in range(config.ensemble):
        logger.info("ensemble member %d of %d", member + 1, config.ensemble)
        members.append(_train(member_config(config, member), progress, world, device, data))
    summary = json.loads(share_from_main(world, device,
                                         lambda: _join(config, members, data, device)))
    warnings = tuple(f"member {k}: {w}" for k, m in enumerate(members) for w in m.warnings)
    return TrainResult(run_dir=run_dir, best_epoch=0, best_val_auc=summary["val_auc"],
                       val_video_threshold=summary["val_video_threshold"], metrics=(),
                       device=str(device), val_video_ids=members[0].val_video_ids,
                       warnings=warnings, members=tuple(members))


def _join(config: TrainConfig, members: list[TrainResult], data: BagDataset,
          device: torch.device) -> bytes:
    """Write the ensemble's ``best.pt``, config, split and ``ensemble.json``; the summary."""
    run_dir = Path(config.out)
    checkpoints = [load_checkpoint(m.best_checkpoint) for m in members]
    first = checkpoints[0]
    scorer_config = dataclasses.replace(first.scorer_config, members=len(checkpoints))
    state = {f"members.{k}.{name}": tensor for k, ckpt in enumerate(checkpoints)
             for name, tensor in ckpt.state_dict.items()}
    model = build_scorer(scorer_config).to(device)
    model.load_state_dict(state, strict=True)

    _, val_idx = split_bags(config, data)
    val = _evaluate(model, config, data, val_idx, device, with_loss=False)
    threshold, val_f1 = f1_threshold(val["video_scores"], val["labels"])
    val_metrics = {"val_auc": val["auc"], "val_ap": val["ap"], "val_f1": val_f1}
    save_checkpoint(run_dir / BEST_NAME, Checkpoint(
        scorer_config=scorer_config, state_dict=state, feature_identity=first.feature_identity,
        loss_config=config.loss, train_config=config.replace(resume=False),
        extract_config=first.extract_config, val_video_threshold=threshold,
        epoch=max(ckpt.epoch for ckpt in checkpoints), val_metrics=val_metrics,
        val_video_ids=first.val_video_ids))
    config.replace(resume=False).to_yaml(run_dir / CONFIG_NAME)
    shutil.copyfile(Path(members[0].run_dir) / SPLIT_NAME, run_dir / SPLIT_NAME)
    summary: dict[str, Any] = {
        **val_metrics, "val_video_threshold": threshold,
        "members": [{"run_dir": str(m.run_dir), "best_epoch": m.best_epoch,
                     "val_auc": m.best_val_auc, "val_video_threshold": m.val_video_threshold}
                    for m in members]}
    atomic_write_text(run_dir / ENSEMBLE_NAME, json.dumps(summary, indent=1) + "\n")
    member_aucs = ", ".join("n/a" if m.best_val_auc is None else f"{m.best_val_auc:.4f}"
                            for m in members)
    logger.info("ensemble of %d: validation video AUC %s (members %s)", len(members),
                "n/a" if val["auc"] is None else f"{val['auc']:.4f}", member_aucs)
    return json.dumps(summary).encode()
