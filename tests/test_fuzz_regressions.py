"""What the fuzzers found, kept as ordinary tests against the real server (fuzz/ for the
targets, tests/test_fuzz_http.py for the HTTP fuzzer; the Rust-side unit tests for the
same bugs are in rust/src/fuzz_regressions.rs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from beacon import Ingest
from beacon.config import Config, ConfigError, FlavorConfig, parse_config
from support.beacon_server import BeaconServer
from support.http_client import Conn


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

CONFIG = {"flavors": [{"name": "default", "json_bodies": True, "required_params": ["ev"]}]}


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


# fuzz/envelope: a required parameter listed twice left a bit unset, so every request was
# refused as missing it. The config now refuses such a list; the native core, handed one
# anyway (a Config built without the checks), still gets it right.
def test_a_required_parameter_listed_twice_is_satisfied_by_one(tmp_path: Path) -> None:
    flavor = FlavorConfig("default", required_params=("ev", "ev"))
    ingest = Ingest(Config(data_dir=tmp_path, flavors=(flavor,)))
    ingest.start()
    assert ingest.handle(b"/track?ev=view") == 200
    assert ingest.handle(b"/track?other=1") == 400
    assert ingest.handle(b"/track?ev=") == 400
    assert ingest.stats()["flavors"]["default"]["accepted"] == 1
    ingest.shutdown()
    with pytest.raises(ConfigError, match="lists a parameter twice"):
        parse_config({"flavors": [{"name": "a", "required_params": ["ev", "ev"]}]})
