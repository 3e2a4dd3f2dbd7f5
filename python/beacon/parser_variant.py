"""Which build of httptools this process imports: the Debian package ships two.

PyPI's httptools wheels are built for baseline x86-64, and llhttp scans header values and
request targets 16 bytes at a time only when compiled with SSE4.2 (docs/performance.md,
"llhttp with SSE4.2": the browser GET's parser instructions 11,321 -> 7,097). A package
must run on any amd64 CPU, so packaging/build-deb ships the baseline wheel in site-packages
and the same version built with `-msse4.2` in `lib/pythonX.Y/sse4.2/` beside it;
`prefer_sse42`, called before httptools is first imported (beacon/__init__.py), puts that
directory first on sys.path on a CPU that has SSE4.2. A venv made by `make` has no such
directory (scripts/httptools-sse42 rebuilds its httptools in place), and nothing changes.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

#: Where packaging/build-deb puts the SSE4.2 build of httptools.
VARIANT_DIR = Path(sys.prefix, "lib", "python{}.{}".format(*sys.version_info), "sse4.2")
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_sse42(cpuinfo: Path = CPUINFO) -> bool:
    """True on an x86-64 CPU whose flags (the first `flags` line of `cpuinfo`) have sse4_2."""
    if platform.machine() != "x86_64":
        return False
    try:
        with cpuinfo.open() as f:
            for line in f:
                if line.startswith("flags"):
                    return "sse4_2" in line.partition(":")[2].split()
    except OSError:
        pass
    return False


def prefer_sse42(variant_dir: Path = VARIANT_DIR, cpuinfo: Path = CPUINFO) -> bool:
    """Puts `variant_dir` first on sys.path if it exists, httptools is not imported yet and
    the CPU has SSE4.2; True if the SSE4.2 build is the one imports will find."""
    if "httptools" in sys.modules or not variant_dir.is_dir() or not cpu_has_sse42(cpuinfo):
        return False
    if str(variant_dir) not in sys.path:
        sys.path.insert(0, str(variant_dir))
    return True
