"""HTTP as real clients speak it, byte for byte (RFC 9110/9112): `Expect: 100-continue`,
HTTP/1.0 keep-alive, `Connection: close` with pipelined requests behind it, `Upgrade`
ignored, the HTTP/2 preface refused, absolute-form targets, and CORS decided per request.
Real clients (curl, ab, Chromium, ...) drive the same cases in tests/clients; these pin the
exact bytes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from beacon.http.responses import H2_REFUSAL
from support.admin import stats
from support.beacon_server import BeaconServer
from support.http_client import Conn

SHOP = "https://shop.example"
CONFIG = {
    "default_flavor": None,
    "flavors": [
        {"name": "shop", "hosts": ["t.shop.example"], "allowed_origins": [SHOP]},
        {"name": "news", "hosts": ["t.news.example"], "allowed_origins": ["https://news.example"]},
    ],
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = BeaconServer(tmp_path_factory.mktemp("semantics"), CONFIG).start()
    yield s
    s.stop()


def raw(lines: str, body: bytes = b"") -> bytes:
    return lines.replace("\n", "\r\n").encode() + body


def stored(srv: BeaconServer, flavor: str, *expected: dict[str, str]) -> bool:
    """Whether every expected params object is stored (waits for the file backend)."""
    deadline = time.monotonic() + 10
    while True:
        got = [e["params"] for e in srv.lines(flavor)]
        if all(p in got for p in expected) or time.monotonic() > deadline:
            return all(p in got for p in expected)
        time.sleep(0.05)


def test_expect_gets_100_continue_then_the_answer(srv: BeaconServer) -> None:
    with Conn(srv.port) as c:
        c.send(
            raw(
                "POST /track HTTP/1.1\nHost: t.shop.example\nContent-Type: text/plain\n"
                "Content-Length: 7\nExpect: 100-continue\n\n"
            )
        )
        interim = c.read_response(head=True)
        assert interim.status == 100
        c.send(b"ev=exp1")
        r = c.read_response()
        assert r.status == 204 and r.headers["connection"] == "keep-alive"
    assert stored(srv, "shop", {"ev": "exp1"})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Type: image/png\nContent-Length: 5", 415),
        ("Content-Type: text/plain\nContent-Encoding: compress\nContent-Length: 5", 415),
        ("Content-Type: text/plain\nContent-Length: 999999999", 413),
    ],
)
def test_expect_is_refused_without_reading_the_body(
    srv: BeaconServer, headers: str, status: int
) -> None:
    with Conn(srv.port) as c:
        c.send(
            raw(f"POST /track HTTP/1.1\nHost: t.shop.example\n{headers}\nExpect: 100-continue\n\n")
        )
        r = c.read_response()
        assert r.status == status and r.headers["connection"] == "close"
        assert c.is_closed_by_peer()


def test_http10_keep_alive_is_kept_only_when_asked_and_said(srv: BeaconServer) -> None:
    with Conn(srv.port) as c:
        for i in range(3):
            c.send(
                raw(
                    f"GET /track?v10={i} HTTP/1.0\nHost: t.news.example\nConnection: Keep-Alive\n\n"
                )
            )
            r = c.read_response()
            assert r.status == 200 and r.headers["connection"] == "keep-alive"
    with Conn(srv.port) as c:
        c.send(raw("GET /track?v10=x HTTP/1.0\nHost: t.news.example\n\n"))
        assert c.read_response().headers["connection"] == "close"
        assert c.is_closed_by_peer()


def test_nothing_after_connection_close_is_answered_or_stored(srv: BeaconServer) -> None:
    before = stats(srv.admin_port)["flavors"]["news"]["accepted"]
    with Conn(srv.port) as c:
        c.send(
            raw("GET /track?cc=1 HTTP/1.1\nHost: t.news.example\nConnection: close\n\n")
            + raw("GET /track?cc=2 HTTP/1.1\nHost: t.news.example\n\n")
        )
        assert c.read_response().headers["connection"] == "close"
        assert c.is_closed_by_peer() and c.buf == b""
    # Counted as the request is handled: the second request was never handled.
    assert stats(srv.admin_port)["flavors"]["news"]["accepted"] == before + 1


def test_upgrade_is_ignored_and_the_connection_goes_on(srv: BeaconServer) -> None:
    before = stats(srv.admin_port)["flavors"]["news"]["accepted"]
    with Conn(srv.port) as c:
        c.send(
            raw(
                "GET /track?up=1 HTTP/1.1\nHost: t.news.example\n"
                "Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\n"
                "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\n\n"
            )
            + raw("GET /track?up=2 HTTP/1.1\nHost: t.news.example\n\n")
        )
        assert c.read_response().status == 200
        assert c.read_response().status == 200
    assert stats(srv.admin_port)["flavors"]["news"]["accepted"] == before + 2
    assert stored(srv, "news", {"up": "1"}, {"up": "2"})


def test_http2_preface_gets_goaway_and_a_close(srv: BeaconServer) -> None:
    before = stats(srv.admin_port)["requests"].get("http2", 0)
    with Conn(srv.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        while c._fill():  # read to the close
            pass
        assert c.buf == H2_REFUSAL
    assert stats(srv.admin_port)["requests"]["http2"] == before + 1


def test_every_request_on_a_connection_gets_its_own_answer(srv: BeaconServer) -> None:
    post = "POST /track HTTP/1.1\nHost: t.shop.example\nContent-Type: {}\nContent-Length: 4\n\n"
    with Conn(srv.port) as c:
        c.send(raw(post.format("image/png"), b"a=b1"))
        c.send(raw("GET /track?seq=2 HTTP/1.1\nHost: t.shop.example\n\n"))
        c.send(raw("GET /nope HTTP/1.1\nHost: t.shop.example\n\n"))
        c.send(raw(post.format("text/plain"), b"seq4"))
        assert [c.read_response().status for _ in range(4)] == [415, 200, 404, 204]


def test_absolute_form_routes_on_its_authority(srv: BeaconServer) -> None:
    with Conn(srv.port) as c:
        c.send(raw("GET http://t.shop.example/track?abs=1 HTTP/1.1\nHost: t.news.example\n\n"))
        assert c.read_response().status == 200
    assert stored(srv, "shop", {"abs": "1"})


def test_cors_headers_come_from_this_requests_flavor(srv: BeaconServer) -> None:
    def post(host: str, origin: str, ctype: str) -> Any:
        with Conn(srv.port) as c:
            c.send(
                raw(
                    f"POST /track HTTP/1.1\nHost: {host}\nOrigin: {origin}\nContent-Type: {ctype}\n"
                    "Content-Length: 3\n\n",
                    b"a=1",
                )
            )
            return c.read_response()

    # A refusal as the very first request carries the headers.
    r = post("t.shop.example", SHOP, "image/png")
    assert r.status == 415 and r.headers["access-control-allow-origin"] == SHOP
    # Right after an allowed request of one flavor, another flavor's refusal for the same
    # origin does not carry them.
    assert post("t.shop.example", SHOP, "text/plain").status == 204
    r = post("t.news.example", SHOP, "image/png")
    assert r.status == 415 and "access-control-allow-origin" not in r.headers
