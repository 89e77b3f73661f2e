"""memtsm.memory: free heap pages can be handed back to the OS (called during extraction)."""

from __future__ import annotations

import platform

import pytest

from memtsm.memory import release_free_memory


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_free_memory_returns_fragmented_heap_pages():
    # Interleave small long-lived and ~100 KB short-lived blocks, then free the large ones: the
    # freed holes stay in the heap (below the mmap threshold) until they are trimmed.
    keep, drop = [], []
    for _ in range(3000):
        drop.append(bytearray(100_000))
        keep.append(bytearray(64))
    del drop
    before = _rss_kib()
    assert release_free_memory() is True
    after = _rss_kib()
    assert after < before - 100_000  # at least ~100 MB of the ~300 MB of holes went back
    assert len(keep) == 3000
