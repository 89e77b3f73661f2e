"""Data-parallel training across the processes that ``torchrun`` starts.

``torchrun --nproc-per-node N -m memtsm train ...`` runs one model over N processes; where each
process stands is a :class:`memtsm.runtime.world.World`.

* Backend: NCCL when training on CUDA (rank ``r`` of a node uses ``cuda:LOCAL_RANK``), gloo on the
  CPU (:func:`backend_for`).
* :func:`process_group` initialises the default process group on entry and destroys it on exit;
  a group the caller already initialised is used as it is and left alone.
* :func:`gather_rows` all-gathers per-rank batch outputs so every rank can compute the loss of
  the *global* batch; :func:`share_from_main` hands bytes computed on rank 0 (a checkpoint, a row
  of validation metrics) to every rank, or makes every rank fail when rank 0 failed.

Nothing here holds state between calls: the process group is torch's, and :class:`World` is a
frozen description of this process's place in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import Tensor

from memtsm.runtime.world import DistributedError, World


def backend_for(device: torch.device) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise.

    Raises:
        DistributedError: CUDA without NCCL in this torch build.
    """
    if device.type == "cuda":
        if not dist.is_nccl_available():
            raise DistributedError("distributed CUDA training needs NCCL, which this torch "
                                   "build lacks")
        return "nccl"
    return "gloo"


@contextmanager
def process_group(world: World, device: torch.device) -> Iterator[None]:
    """Initialise torch's default process group for ``world`` and destroy it on exit.

    Does nothing for a single process. A default group that already exists (set up by the
    caller) is checked against ``world``, used, and not destroyed.

    Args:
        world: This process's place in the run.
        device: Its device (selects the backend, and the CUDA device NCCL binds to).

    Raises:
        DistributedError: An existing group of another size or rank.
    """
    if not world.is_distributed:
        yield
        return
    if dist.is_initialized():
        if (dist.get_world_size(), dist.get_rank()) != (world.world_size, world.rank):
            raise DistributedError(
                f"an existing process group has world size {dist.get_world_size()} and rank "
                f"{dist.get_rank()}, but the environment says {world.world_size} and "
                f"{world.rank}")
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), rank=world.rank, world_size=world.world_size,
                            device_id=device if device.type == "cuda" else None)
    try:
        yield
        # No rank tears the group down while another still uses it (gloo aborted the process
        # with "terminate called without an active exception" now and then without this).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def gather_rows(world: World, tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` concatenated along dim 0, in rank order.

    The other ranks' rows are constants; this rank's rows are ``tensor`` itself, with its graph.
    So when every rank computes the same function ``L`` of the result, the gradient reaching a
    rank's own inputs is exactly ``dL/d(its rows)``, and summing the parameter gradients over
    the ranks gives ``dL/dθ`` (DDP *averages* them, so the caller scales ``L`` by
    ``world_size``). Nothing is communicated in the backward pass.

    Args:
        world: The run (single process: ``tensor`` is returned as it is).
        tensor: This rank's rows, the same shape on every rank.

    Returns:
        The concatenation.

    Shape:
        - tensor: ``[b, ...]``
        - output: ``[world_size * b, ...]``
    """
    if not world.is_distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world.world_size)]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[world.rank] = tensor
    return torch.cat(parts, dim=0)


def _broadcast_size(size: int, device: torch.device) -> int:
    holder = torch.tensor([size], dtype=torch.int64, device=device)
    dist.broadcast(holder, src=0)
    return int(holder.item())


def share_from_main(world: World, device: torch.device, produce: Callable[[], bytes]) -> bytes:
    """Run ``produce`` on rank 0 and return its bytes on every rank.

    If ``produce`` raises on rank 0, rank 0 re-raises it and every other rank raises
    :class:`DistributedError`, so no rank is left waiting for the others.

    Args:
        world: The run (single process: ``produce()``).
        device: Device of this rank's communication tensors (CUDA for NCCL).
        produce: What rank 0 computes; not called on the other ranks.

    Raises:
        DistributedError: On ranks other than 0, when ``produce`` failed on rank 0.
    """
    if not world.is_distributed:
        return produce()
    if world.is_main:
        try:
            payload = produce()
        except BaseException:
            _broadcast_size(-1, device)
            raise
        _broadcast_size(len(payload), device)
        if payload:
            data = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
            dist.broadcast(data, src=0)
        return payload
    size = _broadcast_size(0, device)
    if size < 0:
        raise DistributedError(f"rank {world.rank}: rank 0 failed (its error is reported "
                               "above); stopping")
    if size == 0:
        return b""
    data = torch.empty(size, dtype=torch.uint8, device=device)
    dist.broadcast(data, src=0)
    return data.cpu().numpy().tobytes()
