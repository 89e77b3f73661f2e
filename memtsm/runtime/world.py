"""Where this process stands among the processes of a run: torchrun's topology.

``torchrun --nproc-per-node N [--nnodes M ...] -m memtsm CMD ...`` starts ``N x M`` copies of
``memtsm CMD`` with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` in their environment. :meth:`World.from_env` reads them;
without them, or with ``WORLD_SIZE=1``, a run is one ordinary process. Extraction (one part of
the videos per rank), training (DDP) and sweeps (runs spread over ranks) all use it.

torch is imported only by :meth:`World.device`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
        import torch

        from memtsm.runtime.devices import resolve_device

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
