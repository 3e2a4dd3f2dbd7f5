"""Memory freed after a burst goes back to the OS.

glibc's malloc keeps the pages of freed blocks in its arenas for reuse. librdkafka's
messages and CPython's large objects come from it, so a burst (a broker slow to accept
its first messages, a replay of the spool) leaves the process ~13 MB bigger for good:
measured against a freshly started broker, 65 MB after the burst with or without
`MALLOC_ARENA_MAX=2`, 52 MB once `malloc_trim(0)` ran (docs/performance.md, "Memory").
The Rust side allocates with mimalloc, which returns its own pages.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

#: Seconds between two trims: a trim walks the arenas on the event loop (measured: ~6 µs
#: with nothing to give back, ~0.1 ms after 30 MB were freed).
TRIM_EVERY_S = 10


def malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)
