"""glibc's malloc set for beacon's threads: two arenas, no fastbins, trims on a clock, and freed
memory back to the OS.

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

Trimmed on a clock, not after each free. glibc gives the top of an arena back (`madvise`)
whenever a free leaves more than its trim threshold there, which it sets to twice the
largest block it has mmapped; the feeder frees each batch's ~1.4 MB of messages at once,
so the arena the Kafka threads share shrank and grew again every few batches, and
librdkafka's broker thread took 3-7k page faults a second. With the mmap threshold at
glibc's own ceiling (32 MiB, where its adaptive threshold ends) and the trim threshold at 8
MiB, that stopped (~50-500 faults in 6 s against 20-43k): the broker thread's CPU per
message had a median of 0.49 µs against 0.65, RSS +0.6 MB (docs/performance.md, "Trimmed
on a clock"). The 10 s trim below still gives the rest back.

All three are set before the first thread starts (`cli.main`); an operator's
`MALLOC_ARENA_MAX`, or a `glibc.malloc.mxfast`, `trim_threshold` or `mmap_threshold` in
`GLIBC_TUNABLES`, wins.

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
#: block (0: no fastbins), the trim and mmap thresholds.
M_ARENA_MAX = -8
M_MXFAST = 1
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The limit: the main arena and one more, the other threads sharing them.
ARENAS = 2
#: Blocks this big or bigger get an mmap of their own: glibc's adaptive threshold's ceiling
#: on 64-bit (`DEFAULT_MMAP_THRESHOLD_MAX`), where it would end up on its own.
MMAP_THRESHOLD = 32 << 20
#: A free leaves up to this much at an arena's top before glibc gives it back at once; the
#: rest waits for the next `malloc_trim` (TRIM_EVERY_S).
TRIM_THRESHOLD = 8 << 20

#: Seconds between two trims: a trim walks the arenas on the event loop (measured: ~6 µs
#: with nothing to give back, ~0.1 ms after 30 MB were freed).
TRIM_EVERY_S = 10


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_malloc() -> dict[str, bool]:
    """Sets glibc's arena limit, turns its fastbins off and sets its trim and mmap thresholds
    (this module's doc), before the threads start. Says which it set."""
    return {"arenas": limit_arenas(), "no_fastbins": no_fastbins(), "thresholds": thresholds()}


def limit_arenas() -> bool:
    """Sets glibc's arena limit to ARENAS; an operator's `MALLOC_ARENA_MAX` wins. True if the
    limit was set."""
    return "MALLOC_ARENA_MAX" not in os.environ and _mallopt(M_ARENA_MAX, ARENAS)


def no_fastbins() -> bool:
    """Turns glibc's fastbins off; an operator's `glibc.malloc.mxfast` tunable wins. True if
    they were turned off."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "glibc.malloc.mxfast" not in tunables and _mallopt(M_MXFAST, 0)


def thresholds() -> bool:
    """Sets glibc's mmap and trim thresholds, unless an operator set either (in
    `GLIBC_TUNABLES` or glibc's `MALLOC_*_THRESHOLD_`): setting one turns glibc's adaptive
    thresholds off, so they go together. True if they were set."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    operator = any(f"glibc.malloc.{t}_threshold" in tunables for t in ("trim", "mmap")) or any(
        f"MALLOC_{t}_THRESHOLD_" in os.environ for t in ("TRIM", "MMAP")
    )
    return not operator and all(
        _mallopt(param, value)
        for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    )


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
