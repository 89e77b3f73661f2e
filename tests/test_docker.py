"""Docker files cannot be built in CI; check that they reference real files and the entry point."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cpu"])
def test_dockerfile_copies_real_files_and_runs_the_console_script(name):
    text = (REPO / "docker" / name).read_text()
    assert re.search(r"^FROM \S+", text, re.M)
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (REPO / source).exists(), f"{name} copies missing {source}"
    assert 'ENTRYPOINT ["memtsm"]' in text
    entry = configparser.ConfigParser()
    entry.read(REPO / "setup.cfg")
    assert "memtsm = memtsm.cli:app" in entry["options.entry_points"]["console_scripts"]


def test_gpu_image_installs_the_dali_extra():
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert "'.[dali]'" in text and "nvidia/cuda" in text
    extras = configparser.ConfigParser()
    extras.read(REPO / "setup.cfg")
    assert "nvidia-dali-cuda120" in extras["options.extras_require"]["dali"]
