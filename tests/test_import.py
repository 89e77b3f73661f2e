"""Importing memtsm and running `memtsm --help` stay light: no DALI (and no torch for --help)."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from memtsm.cli import app


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_and_help_do_not_import_dali_or_torch():
    code = ("import sys, memtsm, memtsm.cli\n"
            "from typer.testing import CliRunner\n"
            "r = CliRunner().invoke(memtsm.cli.app, ['--help'])\n"
            "assert r.exit_code == 0, r.output\n"
            "bad = [m for m in ('nvidia.dali', 'torch', 'kornia', 'h5py') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = _fresh(code)
    assert result.returncode == 0, result.stderr


def test_extract_package_does_not_import_dali():
    result = _fresh("import sys, memtsm.extract.decode, memtsm.extract.runner\n"
                    "assert 'nvidia.dali' not in sys.modules")
    assert result.returncode == 0, result.stderr


def test_help_lists_commands():
    output = CliRunner().invoke(app, ["--help"]).output
    for command in ("extract", "import-features", "train", "sweep", "evaluate", "score", "demo",
                    "features"):
        assert command in output
