"""python/beacon/memory.py: glibc gives beacon's threads two arenas, and what it keeps of a
burst goes back to the OS."""

from __future__ import annotations

import os
import subprocess
import sys

from beacon.memory import malloc_trim

# Holes in glibc's heap: 100 KB blocks (under its mmap threshold), every other one freed,
# so that `free` alone cannot shrink the heap; then RSS before and after the trim, in KB.
SCRIPT = """
from beacon.memory import malloc_trim

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

blocks = [bytearray(100_000) for _ in range(1000)]
del blocks[::2]
before = rss_kb()
malloc_trim()()
print(before, rss_kb())
"""


def test_a_trim_gives_freed_heap_pages_back() -> None:
    assert malloc_trim() is not None  # Debian's C library is glibc
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    before, after = map(int, out.split())
    # 500 freed blocks of 100 KB: ~48 MB in holes, most of it given back.
    assert before - after > 30_000, (before, after)


# Eight threads each hold a glibc block at the same moment (ctypes' malloc: Python's own
# allocator would not ask glibc); then glibc's `malloc_stats` lists one "Arena N:" per arena
# on stderr. Prints what `limit_arenas` returned.
ARENAS_SCRIPT = """
import ctypes, sys, threading
from beacon.memory import limit_arenas

limited = limit_arenas() if sys.argv[1] == "limit" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(9)  # the eight and this thread

def hold():
    block = libc.malloc(4096)
    barrier.wait()
    barrier.wait()
    libc.free(block)

threads = [threading.Thread(target=hold) for _ in range(8)]
for t in threads:
    t.start()
barrier.wait()  # passed once all eight hold a block
libc.malloc_stats()
barrier.wait()
for t in threads:
    t.join()
print(limited, flush=True)
"""


def arenas(mode: str, env: dict[str, str]) -> tuple[str, int]:
    """(what limit_arenas returned, glibc's arena count) in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", ARENAS_SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return out.stdout.strip(), out.stderr.count("Arena ")


def test_threads_share_two_arenas() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert arenas("limit", env) == ("True", 2)
    # Without the limit, glibc gives the busy threads arenas of their own: the test can fail.
    _, count = arenas("none", env)
    assert count > 2, count


def test_an_operators_malloc_arena_max_wins() -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
    assert arenas("limit", env) == ("False", 4)
