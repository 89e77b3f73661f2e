"""How many CPU threads torch computes with, so that a shared machine degrades gracefully.

torch's default (one intra-op thread per core, OpenMP threads that spin while they wait) is the
fastest on an idle machine and degrades badly on a busy one (reported: extraction on 2 cores fell
from ~200 to 17.6 frames/s beside one other busy process): every OpenMP barrier waits for the
thread the other process pushed off its core, while the waiting threads spin on the cores they
still have. What is done about it (measured in ``BENCHMARKS.md``, "Extraction under CPU
contention"):

* **Passive waiting** (:func:`prepare_openmp`): ``OMP_WAIT_POLICY=PASSIVE`` makes OpenMP threads
  sleep instead of spinning when they wait, and ``KMP_BLOCKTIME=0`` does the same for Intel's
  and LLVM's OpenMP (torch's Linux wheels ship GNU libgomp, which reads only the former; MKL and
  oneDNN run on torch's OpenMP). Both are read **once, when the OpenMP runtime is loaded**, i.e.
  when torch is first imported: set later they change nothing, and nothing can change the wait
  policy afterwards. The ``memtsm`` commands therefore call :func:`prepare_openmp` before they
  import anything that imports torch; a library user who wants it must call it (or set the
  variables) before ``import torch``. A value the user set is never overridden.
* **The thread count** (:func:`configure_threads`): ``torch.set_num_threads`` takes effect at any
  time (for the calling thread's later parallel regions); ``torch.set_num_interop_threads`` only
  before torch's inter-op pool has started, so it is tried and skipped if too late.

The count: an explicit ``threads`` wins; else ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` if set;
else the CPUs this process may run on (``os.sched_getaffinity``: taskset, cgroup cpusets, SLURM
bindings), less ``reserve`` threads the caller needs for its own other work (a decoding thread)
where there are :data:`RESERVE_FROM_CPUS` or more, at least 1. The load of other processes is not
subtracted: see :func:`choose_threads` for both decisions and their measurements.

Nothing here knows about videos or models; torch is imported only inside the functions.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

logger = logging.getLogger(__name__)

#: Variables that set the thread count, in the order they are consulted.
THREAD_COUNT_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Waiting threads sleep instead of spinning (read only when the OpenMP runtime loads).
PASSIVE_WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}

#: ``reserve`` is subtracted only from this many CPUs up (see :func:`choose_threads`).
RESERVE_FROM_CPUS = 4


def prepare_openmp(environ: os._Environ | dict[str, str] | None = None) -> bool:
    """Ask for passive OpenMP waiting, unless the user set the variables; call before torch.

    Sets each of :data:`PASSIVE_WAIT_ENV` in ``environ`` (default ``os.environ``, so also in
    child processes) when unset. Returns whether it can still take effect in this process:
    False once torch is imported (its OpenMP runtime has then already read the environment),
    in which case nothing is changed.
    """
    if "torch" in sys.modules:
        return False
    environ = os.environ if environ is None else environ
    for name, value in PASSIVE_WAIT_ENV.items():
        environ.setdefault(name, value)
    return True


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's core count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_threads(threads: int | None = None, reserve: int = 0,
                   environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The intra-op thread count and why: ``(count, reason)``; torch is not touched.

    ``threads`` (``--threads``) wins; then ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``; then
    :func:`available_cpus` minus ``reserve`` (threads of this process busy with other work, such
    as a decoding thread), at least 1.

    ``reserve`` is only taken from :data:`RESERVE_FROM_CPUS` or more CPUs: on 2 CPUs reserving
    the decoding thread's core leaves 1 thread, which cost 26-42 % of extraction's speed on an
    idle machine (measured, ``BENCHMARKS.md``); decoding 320x240 video needs ~4 % of a core and,
    with passive waiting, runs in the gaps the compute threads leave. With more CPUs one
    reserved thread costs a small share and spares every parallel region a straggler (not
    measured here: the development machine has 2 CPUs).

    Other processes' load (``os.getloadavg``) is deliberately not subtracted. Measured on 2
    CPUs beside one competing busy process, 1 thread ran between 10 % slower and 25 % faster
    than 2 passive threads (medians of runs; engine and ambient load varied), but on an idle
    machine 1 thread is 26-42 % slower, and the load when a command starts does not predict
    the load during the run: on the shared development machine the 1-minute load average swung
    between 0.6 and 5.9 within minutes, and it counts this process's own earlier work (the
    demo's previous step, a script's previous command). On a machine known to stay busy, give
    ``--threads`` explicitly.

    Raises:
        ValueError: ``threads`` below 1, or a thread-count variable that is not an integer >= 1.
    """
    environ = os.environ if environ is None else environ
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        return threads, "--threads"
    for name in THREAD_COUNT_ENV:
        value = environ.get(name, "").strip()
        if value:
            try:
                count = int(value.split(",")[0])  # OMP_NUM_THREADS may list nesting levels
            except ValueError:
                raise ValueError(f"{name}={value!r} is not a thread count") from None
            if count < 1:
                raise ValueError(f"{name}={value!r} is not a thread count")
            return count, f"{name}={value}"
    cpus = available_cpus()
    count = max(1, cpus - max(0, reserve)) if cpus >= RESERVE_FROM_CPUS else cpus
    reason = f"{cpus} CPUs available to this process"
    if reserve and count < cpus:
        reason += f", {cpus - count} left for other work of this process"
    return count, reason


def configure_threads(threads: int | None = None, reserve: int = 0) -> int:
    """Choose the thread count (:func:`choose_threads`), apply it to torch, log it; return it.

    Calls :func:`prepare_openmp` first (effective only if torch is not imported yet), then
    ``torch.set_num_threads`` and, if torch's inter-op pool has not started,
    ``torch.set_num_interop_threads``. Logs ``using N CPU threads (reason)`` at INFO (each
    command calls it once).
    """
    count, reason = choose_threads(threads, reserve)
    prepare_openmp()
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:  # only possible before the inter-op pool starts (once per process)
        pass
    logger.info("using %d CPU threads (%s)", count, reason)
    return count
