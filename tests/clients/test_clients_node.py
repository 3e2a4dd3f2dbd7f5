"""Node's fetch (undici, tests/support/clients/node_fetch.mjs): a pixel, text/plain,
URLSearchParams, FormData with a file, and JSON with an Origin header."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients

SCRIPT = clients.HERE / "node_fetch.mjs"


@pytest.fixture(scope="module")
def results(beacon: BeaconServer, page_origin: str) -> dict[str, Any]:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    p = subprocess.run(
        ["node", str(SCRIPT), beacon.url("/track"), page_origin, run],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    out["moved"] = clients.delta(beacon, before)
    out["stored"] = clients.stored_since(beacon, since, expect=6)
    out["origin"] = page_origin
    return out


def stored(results: dict[str, Any], ev: str) -> list[dict[str, Any]]:
    return [p for p in results["stored"] if p.get("ev") == ev]


def sent(result: dict[str, Any]) -> dict[str, Any]:
    return clients.flat([(k, v) for k, v in result["sent"]])


def test_get_pixel(results: dict[str, Any]) -> None:
    get = results["get"]
    assert (get.get("status"), get.get("type"), get.get("len")) == (200, "image/gif", 43), get
    assert stored(results, "get") == [sent(get)]


@pytest.mark.parametrize("case", ["text", "form"])
def test_query_string_bodies(results: dict[str, Any], case: str) -> None:
    assert results[case].get("status") == 204, results[case]
    assert stored(results, case) == [sent(results[case])]


def test_form_data_skips_the_file(results: dict[str, Any]) -> None:
    fd = results["formdata"]
    assert fd.get("status") == 204, fd
    [event] = stored(results, "formdata")
    assert list(event.items()) == list(sent(fd).items())
    assert results["moved"].get("multipart_file_skipped") == 1


def test_json_from_the_allowed_origin_gets_cors(results: dict[str, Any]) -> None:
    js = results["json"]
    assert js.get("status") == 204, js
    assert (js["acao"], js["acac"]) == (results["origin"], "true")
    assert stored(results, "json") == [js["sent"]]


def test_json_from_an_unknown_origin_gets_no_cors(results: dict[str, Any]) -> None:
    js = results["json_unknown_origin"]
    assert js.get("status") == 204, js
    assert (js["acao"], js["acac"]) == (None, None)
    assert stored(results, "json2") == [js["sent"]]


def test_every_request_counted_once_and_nothing_else_stored(results: dict[str, Any]) -> None:
    moved = dict(results["moved"])
    moved.pop("connections.total")  # undici pools its connections as it likes
    moved.pop("multipart_file_skipped", None)  # checked above
    assert moved == {"accepted": 6}
    assert len(results["stored"]) == 6
