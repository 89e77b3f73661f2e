"""CPU thread choice: explicit count, environment, affinity, reserve, passive OpenMP waiting."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import torch

from memtsm.runtime import threads
from memtsm.runtime.threads import (
    PASSIVE_WAIT_ENV,
    RESERVE_FROM_CPUS,
    choose_threads,
    configure_threads,
    prepare_openmp,
)

_KNOBS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", *PASSIVE_WAIT_ENV)


@pytest.fixture(autouse=True)
def _restore_torch_threads(monkeypatch):
    previous = torch.get_num_threads()
    for name in _KNOBS:
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(previous)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _KNOBS}


def _fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_clean_env())
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_explicit_count_is_applied_to_torch_and_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert configure_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert choose_threads(3, environ={"OMP_NUM_THREADS": "2"}) == (3, "--threads")


def test_omp_num_threads_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert configure_threads() == 1
    assert torch.get_num_threads() == 1
    assert choose_threads(environ={"OMP_NUM_THREADS": "3"}) == (3, "OMP_NUM_THREADS=3")
    assert choose_threads(environ={"MKL_NUM_THREADS": "2"}) == (2, "MKL_NUM_THREADS=2")
    # OMP_NUM_THREADS may list one count per nesting level: the first is the outer one
    assert choose_threads(environ={"OMP_NUM_THREADS": "2,1"})[0] == 2


@pytest.mark.parametrize("value", ["0", "-1", "many", "2.5"])
def test_a_bad_thread_count_is_an_error_naming_the_variable(value):
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        choose_threads(environ={"OMP_NUM_THREADS": value})


def test_explicit_count_below_one_is_an_error():
    with pytest.raises(ValueError, match="--threads"):
        choose_threads(0, environ={})


def test_affinity_is_respected_not_the_machine_core_count():
    """A process bound to one CPU (taskset, a cpuset) computes with one thread."""
    out = _fresh("import os, torch\n"
                 "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
                 "from memtsm.runtime.threads import choose_threads, configure_threads\n"
                 "print(configure_threads(), torch.get_num_threads(), choose_threads()[1],\n"
                 "      choose_threads(reserve=1)[0], sep='|')")
    count, applied, reason, reserved = out.splitlines()[-1].split("|")
    assert (count, applied, reserved) == ("1", "1", "1")
    assert reason == "1 CPUs available to this process"


def test_reserve_is_subtracted_from_enough_cpus_and_at_least_one_thread_stays(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    count, reason = choose_threads(reserve=1, environ={})
    assert count == 7 and "1 left for other work" in reason
    assert choose_threads(reserve=0, environ={})[0] == 8
    assert choose_threads(reserve=20, environ={})[0] == 1
    # the environment's count is the user's: no reserve taken from it
    assert choose_threads(reserve=1, environ={"OMP_NUM_THREADS": "8"})[0] == 8


def test_reserve_is_not_taken_from_few_cpus(monkeypatch):
    """On 2 CPUs reserving the decoding thread's core halves the compute (BENCHMARKS.md)."""
    for cpus in range(1, RESERVE_FROM_CPUS):
        monkeypatch.setattr(threads, "available_cpus", lambda cpus=cpus: cpus)
        assert choose_threads(reserve=1, environ={}) == (cpus,
                                                          f"{cpus} CPUs available to this process")


def test_the_choice_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="memtsm.runtime.threads"):
        configure_threads(1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["using 1 CPU threads (--threads)"]


def test_prepare_openmp_sets_passive_waiting_before_torch_and_keeps_user_values():
    out = _fresh("import os, sys\n"
                 "os.environ['KMP_BLOCKTIME'] = '200'\n"
                 "from memtsm.runtime.threads import prepare_openmp\n"
                 "assert 'torch' not in sys.modules\n"
                 "print(prepare_openmp(), os.environ['OMP_WAIT_POLICY'],\n"
                 "      os.environ['KMP_BLOCKTIME'], sep='|')")
    assert out.splitlines()[-1] == "True|PASSIVE|200"


def test_prepare_openmp_changes_nothing_once_torch_is_imported():
    environ: dict[str, str] = {}
    assert "torch" in sys.modules  # imported by this module
    assert prepare_openmp(environ) is False
    assert environ == {}


def test_the_commands_set_passive_waiting_before_they_import_torch():
    """`memtsm train` imports torch while it resolves its defaults: the policy is set first."""
    out = _fresh(
        "import os, sys, importlib.abc\n"
        "seen = []\n"
        "class Spy(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and not seen:\n"
        "            seen.append(os.environ.get('OMP_WAIT_POLICY'))\n"
        "        return None\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from typer.testing import CliRunner\n"
        "from memtsm.cli import app\n"
        "result = CliRunner().invoke(app, ['train', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'torch' in sys.modules\n"
        "print(seen)")
    assert out.splitlines()[-1] == "['PASSIVE']"
