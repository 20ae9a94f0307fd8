"""Process memory: freed memory goes back to the operating system, so peak memory is what is alive.

glibc's malloc raises its mmap threshold to the size of any mmapped block freed (up to 32 MB on
64-bit): after the first pass of a month, arrays of a few MB come from the heap, and heap memory
freed in the middle of it stays with the process; Arrow's allocator keeps freed blocks for reuse.
The analysis reduces a period month by month and pass by pass, freeing such arrays all the time,
so the kept memory would grow with the period. `trim_freed_memory` hands both back; the match
stage calls it after every month (a few milliseconds).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util


def trim_freed_memory() -> None:
    """Return the freed memory of glibc's heap (malloc_trim) and of Arrow's pool to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MB = 1 << 20
MMAP_THRESHOLD_MB = 32  # blocks up to this size come from the heap (glibc's largest allowed)
KEEP_FREED_MB = 1024  # free memory the heap keeps at its top before it trims
TOP_PAD_MB = 64  # the heap grows by at least this much
_reusing = False


def reuse_freed_memory() -> None:
    """Keep freed memory in the process for reuse until `trim_freed_memory` hands it back (once per
    process; a no-op off glibc).

    The match stage allocates and frees arrays of a few MB per column and step of every pass. By
    default glibc returns each freed block at once (munmap, or a trim of its heap top) and Arrow's
    mimalloc pool purges freed pages; the next pass then faults fresh pages, which the kernel zeroes:
    15 % of the steady benchmark's CPU went to clearing pages (perf). Here blocks up to 32 MB come from
    the heap, the heap keeps up to 1 GB free at its top, and Arrow allocates from glibc too, so a
    pass reuses the memory of the one before. The match stage still trims after every month, so
    memory stays bounded by a month."""
    global _reusing
    if _reusing:
        return
    _reusing = True
    import pyarrow as pa

    with contextlib.suppress(OSError, AttributeError):  # not glibc: its defaults stay
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MB * _MB)
        libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_MB * _MB)
        libc.mallopt(_M_TOP_PAD, TOP_PAD_MB * _MB)
        pa.set_memory_pool(pa.system_memory_pool())
