"""/stats counts each request exactly once: a mixed series from one requests.Session,
outcomes summed against what was sent; and an allowed preflight."""

from __future__ import annotations

import pytest
import requests

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients

PREFLIGHT = {"Access-Control-Request-Method": "POST"}


def test_each_request_is_counted_once_under_its_reason(beacon: BeaconServer) -> None:
    url = beacon.url("/track")
    unknown = {"Origin": "http://unknown.example", **PREFLIGHT}
    series = [
        # (method, target, headers, body, expected status, expected counter)
        ("GET", url + "?ev=1", {}, None, 200, "accepted"),
        ("HEAD", url + "?ev=2", {}, None, 200, "accepted"),
        ("POST", url, {"Content-Type": "text/plain"}, b"ev=3", 204, "accepted"),
        ("POST", url, {"Content-Type": "application/json"}, b"[1]", 400, "malformed"),
        ("POST", url, {"Content-Type": "application/xml"}, b"<x/>", 415, "unsupported_media_type"),
        ("GET", beacon.url("/elsewhere?ev=4"), {}, None, 404, "not_found"),
        ("DELETE", url + "?ev=5", {}, None, 405, "method"),
        ("GET", url + "?ev=6", {"Host": "nowhere.example"}, None, 400, "unknown_host"),
        ("GET", url + "?q=" + "x" * 9000, {}, None, 414, "too_large"),
        ("OPTIONS", url, unknown, None, 403, "cors_denied"),
    ]
    before = clients.counters(beacon)
    with requests.Session() as s:
        for method, target, headers, body, status, _ in series:
            r = s.request(method, target, headers=headers, data=body, timeout=10)
            assert r.status_code == status, (method, target, r.status_code)
    moved = clients.delta(beacon, before)
    expected = {c: sum(1 for *_, x in series if x == c) for *_, c in series}
    assert {k: n for k, n in moved.items() if k in expected} == expected, f"{moved}"
    assert clients.requests_counted(moved) == len(series), f"{moved}"


def test_an_allowed_preflight_is_counted_once(beacon: BeaconServer, page_origin: str) -> None:
    # Which name it is counted under is the server's to choose; that it is counted is not.
    before = clients.counters(beacon)
    headers = {"Origin": page_origin, **PREFLIGHT}
    r = requests.options(beacon.url("/track"), headers=headers, timeout=10)
    assert r.status_code == 204
    moved = clients.delta(beacon, before)
    assert clients.requests_counted(moved) == 1, f"{moved}"
