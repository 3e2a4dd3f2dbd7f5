"""What a browser sees: CORS preflight and navigator.sendBeacon POSTs, exact headers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from support.beacon_server import BeaconServer
from support.http_client import Conn, Response

ORIGIN = "https://shop.example"
CONFIG = {
    "flavors": [
        {
            "name": "shop",
            "hosts": ["t.shop.example"],
            "allowed_origins": [ORIGIN],
            "json_bodies": True,
        },
        {"name": "any", "hosts": ["t.any.example"], "allowed_origins": ["*"]},
        {"name": "closed", "hosts": ["t.closed.example"]},
    ],
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = BeaconServer(tmp_path_factory.mktemp("browser"), CONFIG).start()
    yield s
    s.stop()


def request(srv: BeaconServer, raw: str, body: bytes = b"") -> Response:
    with Conn(srv.port) as c:
        c.send(raw.replace("\n", "\r\n").encode() + body)
        return c.read_response()


def preflight(srv: BeaconServer, host: str, origin: str) -> Response:
    return request(
        srv,
        f"OPTIONS /track HTTP/1.1\nHost: {host}\nOrigin: {origin}\n"
        "Access-Control-Request-Method: POST\nAccess-Control-Request-Headers: content-type\n\n",
    )


def beacon_post(
    srv: BeaconServer, host: str, ctype: str, body: bytes, origin: str = ORIGIN
) -> Response:
    return request(
        srv,
        f"POST /track HTTP/1.1\nHost: {host}\nOrigin: {origin}\nContent-Type: {ctype}\n"
        f"Content-Length: {len(body)}\n\n",
        body,
    )


def events(srv: BeaconServer, flavor: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(got := srv.lines(flavor)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def test_preflight_for_an_allowed_origin(srv: BeaconServer) -> None:
    r = preflight(srv, "t.shop.example", ORIGIN)
    assert r.status == 204 and r.body == b""
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert r.headers["access-control-allow-headers"] == "Content-Type"
    assert r.headers["access-control-max-age"] == "86400"
    assert r.headers["vary"] == "Origin"


def test_preflight_wildcard_echoes_the_origin(srv: BeaconServer) -> None:
    r = preflight(srv, "t.any.example", "https://anyone.example")
    assert r.status == 204
    assert r.headers["access-control-allow-origin"] == "https://anyone.example"


@pytest.mark.parametrize(
    ("host", "origin"),
    [("t.shop.example", "https://evil.example"), ("t.closed.example", ORIGIN)],
)
def test_preflight_for_other_origins_is_refused(srv: BeaconServer, host: str, origin: str) -> None:
    r = preflight(srv, host, origin)
    assert r.status == 403
    assert "access-control-allow-origin" not in r.headers


def test_send_beacon_bodies_answer_204_with_cors(srv: BeaconServer) -> None:
    text = beacon_post(srv, "t.shop.example", "text/plain;charset=UTF-8", b"ev=click&id=1")
    form = beacon_post(srv, "t.shop.example", "application/x-www-form-urlencoded", b"ev=f&id=2")
    js = beacon_post(srv, "t.shop.example", "application/json", b'{"ev":"j","id":3,"x":[1]}')
    jtext = beacon_post(srv, "t.shop.example", "text/plain", b'{"ev":"t","id":4}')
    for r in (text, form, js, jtext):
        assert r.status == 204 and r.body == b""
        assert "content-length" not in r.headers
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["access-control-allow-credentials"] == "true"
    got = [e["params"] for e in events(srv, "shop", 4)]
    assert got == [
        {"ev": "click", "id": "1"},
        {"ev": "f", "id": "2"},
        {"ev": "j", "id": 3, "x": [1]},
        {"ev": "t", "id": 4},
    ]


def test_post_body_joins_the_url_query(srv: BeaconServer) -> None:
    r = request(
        srv,
        "POST /track?src=url HTTP/1.1\nHost: t.any.example\nContent-Type: text/plain\n"
        "Content-Length: 6\n\n",
        b"ev=bdy",
    )
    assert r.status == 204
    assert "access-control-allow-origin" not in r.headers  # no Origin sent
    assert events(srv, "any", 1)[-1]["params"] == {"src": "url", "ev": "bdy"}


def test_json_is_refused_where_not_enabled_and_when_not_an_object(srv: BeaconServer) -> None:
    # A flavor without json_bodies does not take the type at all: 415, as any other type.
    r = beacon_post(srv, "t.any.example", "application/json", b'{"a":1}', "https://x.example")
    assert r.status == 415
    assert r.headers["access-control-allow-origin"] == "https://x.example"
    assert r.headers["x-request-id"]
    assert beacon_post(srv, "t.shop.example", "application/json", b"[1,2]").status == 400
    assert beacon_post(srv, "t.shop.example", "application/json", b"{nope").status == 400


def test_unsupported_body_type_is_415(srv: BeaconServer) -> None:
    assert beacon_post(srv, "t.shop.example", "image/png", b"\x89PNG").status == 415
    assert beacon_post(srv, "t.shop.example", "application/xml", b"<a/>").status == 415


def test_get_with_an_allowed_origin_carries_cors(srv: BeaconServer) -> None:
    r = request(srv, f"GET /track?ev=img HTTP/1.1\nHost: t.shop.example\nOrigin: {ORIGIN}\n\n")
    assert r.status == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    r = request(srv, "GET /track?ev=img HTTP/1.1\nHost: t.shop.example\nOrigin: https://e.x\n\n")
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    assert json.dumps(events(srv, "shop", 1)[0]["params"])
