"""Data-parallel training across the processes that ``torchrun`` starts.

``torchrun --nproc-per-node N [--nnodes M ...] -m memtsm train ...`` starts ``N x M`` copies of
``memtsm train`` with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` in their environment. :meth:`World.from_env` reads them;
without them, or with ``WORLD_SIZE=1``, a run is one ordinary process.

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

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from memtsm.devices import resolve_device

#: Environment variables torchrun sets for every worker (``MASTER_*`` only matter when > 1).
ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


class DistributedError(RuntimeError):
    """The distributed environment is unusable, or another rank failed."""


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a (possibly distributed) run.

    Attributes:
        world_size: Processes in the run (all nodes).
        rank: This process, ``0 <= rank < world_size``; rank 0 is the main process.
        local_rank: This process on its node (selects ``cuda:local_rank``).
        local_world_size: Processes on this node.
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world_size: int = 1

    def __post_init__(self) -> None:
        for name in ("world_size", "local_world_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DistributedError(f"{name} must be an int >= 1, got {value!r}")
        if not 0 <= self.rank < self.world_size:
            raise DistributedError(f"rank {self.rank} is outside [0, {self.world_size})")
        if not 0 <= self.local_rank < self.local_world_size:
            raise DistributedError(
                f"local rank {self.local_rank} is outside [0, {self.local_world_size})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        """Read torchrun's variables; a single process when ``WORLD_SIZE`` is unset.

        Args:
            environ: Variables to read (default ``os.environ``).

        Raises:
            DistributedError: A variable is not an int, is out of range, or ``WORLD_SIZE > 1``
                without ``MASTER_ADDR`` / ``MASTER_PORT`` (not started by torchrun).
        """
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return cls()
        values: dict[str, int] = {}
        for name in ENV_VARS:
            text = env.get(name, "1" if name == "LOCAL_WORLD_SIZE" else "0")
            try:
                values[name] = int(text)
            except ValueError:
                raise DistributedError(f"environment variable {name}={text!r} is not an "
                                       "integer") from None
        if values["WORLD_SIZE"] > 1:
            missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if not env.get(n)]
            if missing:
                raise DistributedError(
                    f"WORLD_SIZE={values['WORLD_SIZE']} but {' and '.join(missing)} not set: "
                    "start distributed runs with torchrun (python -m torch.distributed.run)")
        return cls(world_size=values["WORLD_SIZE"], rank=values["RANK"],
                   local_rank=values["LOCAL_RANK"],
                   local_world_size=values["LOCAL_WORLD_SIZE"])

    @property
    def is_distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The device this process works on for ``--device name``.

        With several processes, ``cuda`` (or ``auto`` on a GPU machine) becomes
        ``cuda:LOCAL_RANK``; ``cuda:N`` is kept only with one process per node.

        Raises:
            RuntimeError: CUDA requested but unavailable (see :func:`resolve_device`).
            DistributedError: ``cuda:N`` with several processes per node, ``mps`` with several
                processes, or fewer GPUs than processes on this node.
        """
        device = resolve_device(name)
        if not self.is_distributed or device.type == "cpu":
            return device
        if device.type != "cuda":
            raise DistributedError(f"--device {name}: distributed runs use cuda or cpu")
        if name.startswith("cuda:"):
            if self.local_world_size > 1:
                raise DistributedError(
                    f"--device {name} names one GPU, but {self.local_world_size} processes run "
                    "on this node: pass --device cuda (each process then uses cuda:LOCAL_RANK)")
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK {self.local_rank} needs cuda:{self.local_rank}, but this node has "
                f"{torch.cuda.device_count()} GPU(s): start at most that many processes per node")
        return torch.device("cuda", self.local_rank)


#: The world of a process that was not started by torchrun.
SINGLE_PROCESS = World()


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
