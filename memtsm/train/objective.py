"""The training objective of each model, on a local or a globally gathered batch.

``memtsm`` is trained with :func:`memtsm.model.memtsm_loss` (focal on top-k video scores +
memory reconstruction + slot diversity), ``mil-mlp`` with :func:`memtsm.model.mil_loss`
(Sultani et al. ranking, smoothness and sparsity at their paper weights), ``rtfm`` with
:func:`memtsm.model.rtfm_loss` (feature-magnitude hinge + top-k cross-entropy, Tian et al.).
In a distributed run the per-segment outputs of every rank are gathered first, so the loss is
the global batch's (see :mod:`memtsm.train.loop`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from memtsm.model import LossTerms, ScorerOutput, memtsm_loss, mil_loss, rtfm_loss
from memtsm.runtime.world import World
from memtsm.train.config import TrainConfig
from memtsm.train.distributed import gather_rows

#: Every loss term, logged as ``loss_<term>`` (unweighted; ``loss_total`` is the optimised sum).
LOSS_TERMS = LossTerms._fields


def objective(model: nn.Module, config: TrainConfig, output: ScorerOutput, mask: Tensor,
               labels: Tensor, world_size: int = 1) -> tuple[Tensor, LossTerms]:
    """The loss to backpropagate and its terms (``terms.total``: the objective's value).

    With ``world_size`` W > 1 the batch is the global one (gathered from every rank, gradients
    only through this rank's share) and the result is ``W x batch terms + weighted memory
    regulariser``, so that DDP's gradient average is the gradient of the global objective (see
    the module docstring). ``terms`` are always the global objective's.
    """
    if config.model in ("mil-mlp", "rtfm"):
        total, terms = (mil_loss(output, mask, labels) if config.model == "mil-mlp"
                        else rtfm_loss(output, mask, labels, config.loss.topk))
        return (total if world_size == 1 else world_size * total), terms
    if world_size == 1:
        return memtsm_loss(output, mask, labels, config.loss, model.regularizer())
    batch_total, terms = memtsm_loss(output, mask, labels, config.loss, None)
    reg = model.regularizer()
    weighted_reg = config.loss.mem_reg_weight * reg
    return (world_size * batch_total + weighted_reg,
            terms._replace(total=batch_total + weighted_reg, memory_reg=reg))


def global_output(world: World, output: ScorerOutput) -> ScorerOutput:
    """The per-segment outputs the objectives read, of every rank's share, in rank order.

    ``scores``, ``logits`` and ``recon_error`` ``[b, S]`` become ``[W b, S]`` (this rank's rows
    keep their graph); ``embedding`` becomes its per-segment L2 norm ``[W b, S, 1]`` (RTFM's
    feature magnitude); ``readout`` and ``attention`` are not gathered and are empty
    ``[W b, S, 0]``.
    """
    packed = torch.stack([output.scores, output.logits, output.recon_error,
                          output.embedding.norm(dim=-1)], dim=-1)
    scores, logits, recon_error, magnitude = gather_rows(world, packed).unbind(-1)
    empty = scores.new_zeros(*scores.shape, 0)
    return ScorerOutput(scores=scores, logits=logits, readout=empty, recon_error=recon_error,
                        attention=empty, embedding=magnitude.unsqueeze(-1))


def used_terms(config: TrainConfig) -> tuple[str, ...]:
    """Loss terms the run's objective weights (the others are logged but not optimised)."""
    if config.model == "mil-mlp":
        return ("ranking", "smoothness", "sparsity")
    if config.model == "rtfm":
        return ("classification", "separability", "smoothness", "sparsity")
    loss = config.loss
    optional = (("smoothness", loss.smoothness_weight), ("sparsity", loss.sparsity_weight))
    return ("focal", "reconstruction", "memory_reg") + tuple(n for n, w in optional if w > 0)
