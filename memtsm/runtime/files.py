"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every file memtsm writes that something else reads back (configs, indexes, metrics, checkpoints,
plots, reports, generated videos) goes through :func:`atomic_path`: the content is written to a
temporary file in the same folder (same file system, so the final ``os.replace`` is atomic on
POSIX), optionally flushed to disk, then renamed over the target. An exception (or Ctrl-C) while
writing removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(path: Path | str) -> Path:
    """A hidden temporary name next to ``path`` that keeps its suffix (``.a.png.1234.tmp.png``).

    The suffix is kept because some writers (matplotlib, PyAV) choose the format by it; the pid
    keeps concurrent processes writing the same target apart.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: Path | str, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    Args:
        path: The target file (its folder is created if needed).
        fsync: Flush the written file to disk before the rename (for files a crash must not
            lose, such as checkpoints and shards).

    Example:
        >>> with atomic_path("plot.png") as tmp:      # doctest: +SKIP
        ...     figure.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: Path | str, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def exclusive_lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` + ``.lock`` for the block (POSIX).

    For caches that several processes (torchrun workers) may fill at once: the first builds, the
    others wait and then find the finished file. The lock file stays; it holds nothing.
    """
    import fcntl

    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
