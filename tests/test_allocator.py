"""The process's allocator settings: beacon turns transparent huge pages off (mimalloc's
`allow_thp`, which calls prctl(PR_SET_THP_DISABLE)) so RSS does not grow in 2 MiB steps;
the kernel reports the result in /proc/<pid>/status."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.beacon_server import BeaconServer

PROBE = (
    "import beacon, re; "
    "print(re.search(r'THP_enabled:\\s*(\\d)', open('/proc/self/status').read()).group(1))"
)


PR_SET_THP_DISABLE = 41


def _thp_allowed() -> None:
    """In the child before exec: undo a THP_DISABLE inherited from this test process (it
    is inherited across fork and exec, and importing beacon here set it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_THP_DISABLE, 0)")


def thp_enabled(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_ALLOW_THP"}
    if env_value is not None:
        env["MIMALLOC_ALLOW_THP"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_thp_allowed,
    )
    return out.stdout.strip()


@pytest.fixture(autouse=True)
def _needs_thp_status() -> None:
    assert "THP_enabled:" in Path("/proc/self/status").read_text(), "kernel < 5.0?"


def test_importing_beacon_turns_huge_pages_off() -> None:
    assert thp_enabled(None) == "0"


def test_an_operators_setting_wins() -> None:
    assert thp_enabled("1") == "1"


def test_the_server_runs_without_huge_pages(tmp_path: Path) -> None:
    with BeaconServer(tmp_path) as srv:
        assert srv.proc is not None
        status = Path(f"/proc/{srv.proc.pid}/status").read_text()
        assert "THP_enabled:\t0" in status
