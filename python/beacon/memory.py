"""glibc's malloc set for beacon's threads: two arenas, no fastbins, and freed memory back to
the OS.

Two arenas. glibc gives each thread an arena of its own (up to 8 per core), and librdkafka
allocates a message on the Kafka feeder thread and frees it on its broker thread: every
message crossed arenas. With the limit at 2 (the event loop has the main arena; glibc hands
each other thread whichever of the two is free) the feeder thread's CPU per message went
from 2.2-3.1 to 1.5-2.5 µs and the broker thread's from 0.9-1.1 to 0.7-0.95 µs, in paired
runs (docs/performance.md, "Memory"). One arena was worse: the event loop waited for the
feeder's lock, and the core idled.

No fastbins. glibc keeps freed blocks of up to 128 bytes in fastbins, still marked in use, so
they never merge with their neighbours. The feeder frees ~2,000 librdkafka messages (~700
bytes) at a time with the `id` header's small blocks between them: with fastbins the freed
messages stayed apart, and the next batch's mallocs spent up to 15% of the feeder sorting and
searching them. Without, the feeder's CPU per message had a median of 1.30 µs against 2.23,
and the file + Kafka row 88k req/s against 75k, RSS the same (docs/performance.md, "No
fastbins"). glibc's per-thread cache still serves the hottest small sizes.

Both are set before the first thread starts (`cli.main`); an operator's `MALLOC_ARENA_MAX`,
or a `glibc.malloc.mxfast` in `GLIBC_TUNABLES`, wins.

Freed memory back to the OS: glibc's malloc keeps the pages of freed blocks in its arenas
for reuse. librdkafka's messages and CPython's large objects come from it, so a burst (a
broker slow to accept its first messages, a replay of the spool) leaves the process ~13 MB
bigger for good: measured against a freshly started broker, 65 MB after the burst with or
without `MALLOC_ARENA_MAX=2`, 52 MB once `malloc_trim(0)` ran. The Rust side allocates with
mimalloc, which returns its own pages.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

#: mallopt's parameter numbers (glibc's malloc.h): the arena limit, the fastbins' largest
#: block (0: no fastbins).
M_ARENA_MAX = -8
M_MXFAST = 1
#: The limit: the main arena and one more, the other threads sharing them.
ARENAS = 2

#: Seconds between two trims: a trim walks the arenas on the event loop (measured: ~6 µs
#: with nothing to give back, ~0.1 ms after 30 MB were freed).
TRIM_EVERY_S = 10


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_malloc() -> dict[str, bool]:
    """Sets glibc's arena limit and turns its fastbins off (this module's doc), before the
    threads start. Says which of the two it set."""
    return {"arenas": limit_arenas(), "no_fastbins": no_fastbins()}


def limit_arenas() -> bool:
    """Sets glibc's arena limit to ARENAS; an operator's `MALLOC_ARENA_MAX` wins. True if the
    limit was set."""
    return "MALLOC_ARENA_MAX" not in os.environ and _mallopt(M_ARENA_MAX, ARENAS)


def no_fastbins() -> bool:
    """Turns glibc's fastbins off; an operator's `glibc.malloc.mxfast` tunable wins. True if
    they were turned off."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "glibc.malloc.mxfast" not in tunables and _mallopt(M_MXFAST, 0)


def _mallopt(param: int, value: int) -> bool:
    """glibc's `mallopt`; False where the C library is not glibc or refuses the value."""
    libc = _glibc()
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and bool(mallopt(param, value))


def malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library is not glibc."""
    libc = _glibc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)
