"""Keeping resident memory flat over long videos (glibc only; a no-op elsewhere).

Decoding hands ~1 MB frame batches from the decoding thread to the inference thread, and XFeat
allocates a few MB per batch. glibc keeps freed heap memory fragmented across its arenas instead
of returning it, so without help the resident size creeps with the video's length (measured:
10-minute 320x240 extraction, 380 -> 680 MiB and still rising). Asking glibc to hand free pages
back every few seconds (:func:`release_free_memory`, ``malloc_trim(0)``) keeps the same run flat at
360-390 MiB for no measurable time. (Pinning the mmap threshold instead also kept it flat but made
extraction 1.8x slower: every large buffer became a fresh mmap with its page faults.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl has no malloc_trim)
        return None


def release_free_memory() -> bool:
    """Return free heap pages to the OS (``malloc_trim(0)``); False where unavailable."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
