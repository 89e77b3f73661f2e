"""memtsm.memory: glibc's mmap threshold can be pinned (what the CLI does before extraction)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_pin_mmap_threshold_applies_on_glibc():
    code = ("from memtsm.memory import pin_mmap_threshold\n"
            "assert pin_mmap_threshold() is True\n"
            "assert pin_mmap_threshold(256 * 1024) is True\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_importing_memtsm_does_not_change_the_allocator():
    result = subprocess.run([sys.executable, "-c", "import memtsm, memtsm.cli, sys; "
                             "assert 'memtsm.memory' not in sys.modules"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
