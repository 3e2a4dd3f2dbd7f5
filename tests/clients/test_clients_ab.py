"""ApacheBench (ab, HTTP/1.0): 2000 pixels with and without keep-alive, every one answered
and stored exactly once."""

from __future__ import annotations

import re
import subprocess

import pytest

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients

N = 2000


def ab(*args: str) -> dict[str, str]:
    """Runs ab (-s 10: a response that never comes fails it after 10 s) and returns its
    report's `Name: value` lines."""
    p = subprocess.run(
        ["ab", "-s", "10", "-n", str(N), "-c", "20", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, f"ab exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return dict(re.findall(r"^([A-Za-z][A-Za-z -]*?):\s+(.*?)\s*$", p.stdout, re.M))


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close"])
def test_ab_2000_requests(beacon: BeaconServer, keep_alive: bool) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    report = ab(*(["-k"] if keep_alive else []), beacon.url(f"/track?ev=ab&r={run}"))
    assert report["Complete requests"] == str(N)
    assert report["Failed requests"] == "0"
    assert "Non-2xx responses" not in report
    if keep_alive:
        assert report["Keep-Alive requests"] == str(N)
    moved = clients.delta(beacon, before)
    moved.pop("connections.total")  # ab may open a spare connection or two at the end
    assert moved == {"accepted": N}
    assert clients.stored_since(beacon, since, expect=N) == [{"ev": "ab", "r": run}] * N
