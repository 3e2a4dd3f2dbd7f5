"""python/beacon/memory.py: glibc gives beacon's threads two arenas, no fastbins and trims on a
clock, and what it keeps of a burst goes back to the OS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
# on stderr. Prints what `tune_malloc` said of the arenas.
ARENAS_SCRIPT = """
import ctypes, sys, threading
from beacon.memory import tune_malloc

limited = tune_malloc()["arenas"] if sys.argv[1] == "limit" else None
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


def fresh(script: str, mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`script` run with `mode` in a fresh Python process: glibc's settings are per process."""
    return subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True, env=env
    )


def arenas(mode: str, env: dict[str, str]) -> tuple[str, int]:
    """(what tune_malloc said of the arenas, glibc's arena count) in a fresh process."""
    out = fresh(ARENAS_SCRIPT, mode, env)
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


# What the glibc scripts below share: ctypes' view of glibc's malloc, free, memset and
# mallinfo2, and `said`, what `tune_malloc` said of one of its settings when the script's
# argument is "tune" (None otherwise).
GLIBC = """
import ctypes, sys
from beacon.memory import tune_malloc

said = tune_malloc()[KEY] if sys.argv[1] == "tune" else None

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.mallinfo2.restype = MallInfo2
"""


def glibc_script(key: str, body: str) -> str:
    """A script of GLIBC's set-up, saying what `tune_malloc` said of `key`, then `body`."""
    return GLIBC.replace("KEY", repr(key)) + body


# 200 blocks of 64 bytes from glibc (ctypes' malloc), all freed: glibc's per-thread cache
# keeps 7, and the rest go to a fastbin, unless fastbins are off. Prints what `tune_malloc`
# said of the fastbins and `mallinfo2().smblks`, the count of free blocks in fastbins.
FASTBINS_SCRIPT = glibc_script(
    "no_fastbins",
    """
blocks = [libc.malloc(64) for _ in range(200)]
for block in blocks:
    libc.free(block)
print(said, libc.mallinfo2().smblks)
""",
)


def fastbin_blocks(mode: str, env: dict[str, str]) -> tuple[str, int]:
    """(what tune_malloc said of the fastbins, free blocks in fastbins) in a fresh process."""
    off, kept = fresh(FASTBINS_SCRIPT, mode, env).stdout.split()
    return off, int(kept)


def test_freed_small_blocks_skip_the_fastbins() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    assert fastbin_blocks("tune", env) == ("True", 0)
    # Untuned, glibc keeps most of them in a fastbin: the test can fail.
    _, kept = fastbin_blocks("none", env)
    assert kept > 100, kept


def test_an_operators_mxfast_tunable_wins() -> None:
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.mxfast=128"}
    off, kept = fastbin_blocks("tune", env)
    assert off == "False"
    assert kept > 100, kept


# 4 MB in 100 KB blocks from glibc (ctypes' malloc), touched and all freed at once, as the
# Kafka feeder frees a batch of messages; prints what `tune_malloc` said of the thresholds
# and how much more glibc's main heap holds from the system after the free than before the
# batch (`mallinfo2().arena`, bytes): kept for the next batch, or given back at once to be
# faulted in again.
THRESHOLDS_SCRIPT = glibc_script(
    "thresholds",
    """
before = libc.mallinfo2().arena
blocks = [libc.malloc(100_000) for _ in range(40)]
for block in blocks:
    libc.memset(block, 1, 100_000)
for block in blocks:
    libc.free(block)
print(said, libc.mallinfo2().arena - before)
""",
)


def heap_after_batch(mode: str, env: dict[str, str]) -> tuple[str, int]:
    """(what tune_malloc said of the thresholds, heap bytes kept after the free), fresh."""
    tuned, kept = fresh(THRESHOLDS_SCRIPT, mode, env).stdout.split()
    return tuned, int(kept)


def test_a_freed_batch_stays_for_the_next() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and "THRESHOLD" not in k}
    tuned, kept = heap_after_batch("tune", env)
    assert (tuned, kept > 3_500_000) == ("True", True), kept
    # Untuned, glibc gives the 4 MB back at the free: the test can fail.
    _, untuned = heap_after_batch("none", env)
    assert untuned < 500_000, untuned


@pytest.mark.parametrize(
    "setting",
    [
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
    ],
)
def test_an_operators_threshold_wins(setting: tuple[str, str]) -> None:
    name, value = setting
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and "THRESHOLD" not in k}
    tuned, kept = heap_after_batch("tune", {**env, name: value})
    assert tuned == "False"
    assert kept < 500_000, kept
