"""python/beacon/runtime/memory.py: what glibc keeps of a burst goes back to the OS."""

from __future__ import annotations

import subprocess
import sys

from beacon.runtime.memory import malloc_trim

# Holes in glibc's heap: 100 KB blocks (under its mmap threshold), every other one freed,
# so that `free` alone cannot shrink the heap; then RSS before and after the trim, in KB.
SCRIPT = """
from beacon.runtime.memory import malloc_trim

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
