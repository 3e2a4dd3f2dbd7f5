"""CORS as a client sees it (python requests): preflights, and the headers on answers and
refusals, decided by the flavor of the request itself, never of the one before it."""

from __future__ import annotations

import pytest
import requests

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients

UNKNOWN = "http://unknown.example"


def cors(r: requests.Response) -> tuple[str | None, str | None]:
    return r.headers.get("access-control-allow-origin"), r.headers.get(
        "access-control-allow-credentials"
    )


def visit(beacon: BeaconServer, flavor: str) -> None:
    """A good request handled for `flavor`, right before the one under test."""
    r = requests.get(beacon.url("/track?ev=before"), headers={"Host": clients.HOSTS[flavor]})
    assert r.status_code == 200


def test_preflight_from_the_allowed_origin(beacon: BeaconServer, page_origin: str) -> None:
    r = requests.options(
        beacon.url("/track"),
        headers={
            "Origin": page_origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert r.status_code == 204
    assert cors(r) == (page_origin, "true")
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"].lower() == "content-type"
    assert int(r.headers["access-control-max-age"]) > 0


@pytest.mark.parametrize(("flavor", "origin"), [("web", UNKNOWN), ("other", "page")])
def test_preflight_from_another_origin_is_403(
    beacon: BeaconServer, page_origin: str, flavor: str, origin: str
) -> None:
    before = clients.counters(beacon)
    origin = page_origin if origin == "page" else origin
    r = requests.options(
        beacon.url("/track"),
        headers={
            "Host": clients.HOSTS[flavor],
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
        },
        timeout=10,
    )
    assert r.status_code == 403
    assert cors(r) == (None, None)
    assert clients.delta(beacon, before) == {"cors_denied": 1, "connections.total": 1}


@pytest.mark.parametrize(
    ("ctype", "body", "status"),
    [
        ("application/xml", b"<x/>", 415),
        ("application/json", b"{nope", 400),
        ("text/plain", b"a=" + b"x" * 70_000, 413),
    ],
    ids=["415", "400", "413"],
)
@pytest.mark.parametrize("flavor_before", ["web", "other"])
def test_refusal_for_the_allowed_origin_carries_cors(
    beacon: BeaconServer, page_origin: str, ctype: str, body: bytes, status: int, flavor_before: str
) -> None:
    # Without these headers a page's fetch sees a network error instead of the status.
    visit(beacon, flavor_before)
    r = requests.post(
        beacon.url("/track"),
        data=body,
        headers={"Content-Type": ctype, "Origin": page_origin},
        timeout=10,
    )
    assert r.status_code == status
    assert cors(r) == (page_origin, "true")


@pytest.mark.parametrize("flavor_before", ["web", "other"])
def test_refusal_for_a_flavor_without_that_origin_has_no_cors(
    beacon: BeaconServer, page_origin: str, flavor_before: str
) -> None:
    visit(beacon, flavor_before)
    r = requests.post(
        beacon.url("/track"),
        data=b"<x/>",
        headers={
            "Host": clients.HOSTS["other"],
            "Content-Type": "application/xml",
            "Origin": page_origin,
        },
        timeout=10,
    )
    assert r.status_code == 415
    assert cors(r) == (None, None)


def test_not_found_for_the_allowed_origin_carries_cors(
    beacon: BeaconServer, page_origin: str
) -> None:
    visit(beacon, "other")
    r = requests.get(beacon.url("/nope?ev=x"), headers={"Origin": page_origin}, timeout=10)
    assert r.status_code == 404
    assert cors(r) == (page_origin, "true")


@pytest.mark.parametrize(("origin", "expected"), [("page", "page"), (UNKNOWN, None)])
def test_pixel_carries_cors_only_for_the_allowed_origin(
    beacon: BeaconServer, page_origin: str, origin: str, expected: str | None
) -> None:
    origin = page_origin if origin == "page" else origin
    r = requests.get(beacon.url("/track?ev=px"), headers={"Origin": origin}, timeout=10)
    assert r.status_code == 200
    assert cors(r) == ((page_origin, "true") if expected else (None, None))
