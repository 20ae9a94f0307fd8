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
