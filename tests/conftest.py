"""Shared fixtures: paths to the real data in ../shared, the XFeat weights, tiny videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEMTSM_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_net = pytest.mark.skip(reason="needs the network (set MEMTSM_TEST_NETWORK=1)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "network" in item.keywords and os.environ.get("MEMTSM_TEST_NETWORK") != "1":
            item.add_marker(skip_net)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MEMTSM_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def xfeat_weights(shared_data) -> Path:
    path = shared_data / "xfeat" / "xfeat.pt"
    if not path.is_file():
        pytest.skip(f"XFeat weights not found at {path}")
    return path


@pytest.fixture(scope="session")
def ucf_videos(shared_data) -> Path:
    return shared_data / "ucf_crime" / "videos"


@pytest.fixture(autouse=True)
def _weights_env(monkeypatch, tmp_path_factory):
    """Tests resolve XFeat weights from the shared copy and never touch the user's cache."""
    path = SHARED_DATA / "xfeat" / "xfeat.pt"
    if path.is_file():
        monkeypatch.setenv("MEMTSM_XFEAT_WEIGHTS", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    # exported engine graphs are shared by the whole session (built once, verified every time)
    monkeypatch.setenv("MEMTSM_ENGINE_CACHE", str(tmp_path_factory.getbasetemp() / "engines"))
