"""What the fuzzers found, kept as ordinary tests against the real server (fuzz/ for the
targets, tests/test_fuzz_http.py for the HTTP fuzzer; the Rust-side unit tests for the
same bugs are in rust/src/fuzz_regressions.rs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support.beacon_server import BeaconServer
from support.http_client import Conn, get


def wait_lines(srv: BeaconServer, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = srv.lines("default")
        if len(lines) >= n:
            return lines
        time.sleep(0.05)
    return srv.lines("default")


def post_json(port: int, body: bytes) -> int:
    with Conn(port) as c:
        c.send(
            b"POST /track HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        return c.read_response().status


# fuzz/envelope: JSON body numbers came back 1 ULP off (serde_json's default float parser
# is not correctly rounded); beacon now builds serde_json with `float_roundtrip`.
FLOATS = [
    "-7.592714127052617e304",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "0.30000000000000004",
    "5e-324",
    "123456789.12345679",
]

# fuzz/envelope: a required parameter listed twice left a bit unset, so every request was
# refused as missing it.
CONFIG = {
    "flavors": [{"name": "default", "json_bodies": True, "required_params": ["ev", "ev"]}],
}


def test_json_body_numbers_are_written_exactly(tmp_path: Path) -> None:
    with BeaconServer(tmp_path, CONFIG) as srv:
        for i, n in enumerate(FLOATS):
            body = f'{{"ev":"n","i":{i},"x":{n}}}'.encode()
            assert post_json(srv.port, body) == 204
        lines = wait_lines(srv, len(FLOATS))
    assert len(lines) == len(FLOATS)
    for line in lines:
        n = FLOATS[line["params"]["i"]]
        assert line["params"]["x"] == float(n), (n, line)  # Python's json is exact


def test_a_required_parameter_listed_twice_is_satisfied_by_one(tmp_path: Path) -> None:
    with BeaconServer(tmp_path, CONFIG) as srv:
        assert get(srv.port, "/track?ev=view").status == 200
        assert get(srv.port, "/track?other=1").status == 400
        assert get(srv.port, "/track?ev=").status == 400
        [line] = wait_lines(srv, 1)
    assert line["params"] == {"ev": "view"}
