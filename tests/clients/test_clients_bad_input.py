"""Bad bodies sent with a real client (python requests) stay bad: the right refusal, counted
once under its reason, nothing stored, memory bounded, and the server still fine after."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from urllib3 import encode_multipart_formdata

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients

MIB = 1 << 20


def multipart(n: int) -> tuple[bytes, str]:
    """A multipart/form-data body of n text fields, and its Content-Type."""
    return encode_multipart_formdata([(f"p{i}", "v") for i in range(n)], boundary="B0undary")


def refuse(
    beacon: BeaconServer, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    """Sends one POST; checks its status, that it was counted once as `reason`, that nothing
    was stored and that the server still answers."""
    since, before = clients.mark(beacon), clients.counters(beacon)
    r = requests.post(beacon.url("/track?ev=bad"), data=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    # Counted as its reason and kept as a bad row (README "Bad rows").
    assert clients.delta(beacon, before) == {reason: 1, "bad_rows_kept": 1, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=0) == []
    assert clients.healthy(beacon)


def test_multipart_with_more_parts_than_max_params_is_400(beacon: BeaconServer) -> None:
    body, ctype = multipart(300)  # limits.max_params: 256
    assert len(body) < 65536  # under max_body_bytes: refused for its parts, not its size
    refuse(beacon, body, {"Content-Type": ctype}, 400, "malformed")


def test_truncated_multipart_is_400(beacon: BeaconServer) -> None:
    body, ctype = multipart(3)
    cut = body[: body.rindex(b"--B0undary--") - 4]  # inside the last part, no closing line
    refuse(beacon, cut, {"Content-Type": ctype}, 400, "malformed")


def test_multipart_boundary_that_never_ends_is_400(beacon: BeaconServer) -> None:
    body = b'--B0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\n' + b"x" * 5000
    refuse(
        beacon, body, {"Content-Type": "multipart/form-data; boundary=B0undary"}, 400, "malformed"
    )


@pytest.mark.parametrize(
    "ctype", ["multipart/form-data", "multipart/form-data; boundary=Other"], ids=["none", "wrong"]
)
def test_multipart_without_its_boundary_is_400(beacon: BeaconServer, ctype: str) -> None:
    body, _ = multipart(2)
    refuse(beacon, body, {"Content-Type": ctype}, 400, "malformed")


def test_unknown_content_encoding_is_415(beacon: BeaconServer) -> None:
    headers = {"Content-Type": "text/plain", "Content-Encoding": "x-unknown"}
    refuse(beacon, b"ev=enc", headers, 415, "unsupported_media_type")


def peak_rss(beacon: BeaconServer) -> int:
    """The server process's peak resident set (VmHWM), bytes."""
    assert beacon.proc is not None
    for line in Path(f"/proc/{beacon.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def fresh(tmp_path: Path, page_origin: str) -> Iterator[BeaconServer]:
    """A server of its own: its peak memory so far is its start-up's."""
    with BeaconServer(tmp_path, clients.config(page_origin)) as srv:
        yield srv


def test_gzip_bomb_is_413_with_memory_bounded(fresh: BeaconServer) -> None:
    bomb = gzip.compress(bytes(20 * MIB), 9)  # 20 MiB of zeros in ~20 KiB
    assert len(bomb) < 65536
    peak = peak_rss(fresh)
    headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    refuse(fresh, bomb, headers, 413, "too_large")
    # Decoding stops at limits.max_body_bytes: the 20 MiB never exist in the server.
    assert peak_rss(fresh) - peak < 8 * MIB
