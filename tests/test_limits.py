"""Limits and timeouts against the real server: slowloris headers and bodies are cut off
while other clients are served, oversized requests get their status codes, idle
keep-alives close, the connection cap holds, and a Rust panic answers 500 only."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from support.admin import stats
from support.beacon_server import BeaconServer
from support.http_client import Conn, get

CONFIG = {
    "limits": {
        "header_timeout_s": 1,
        "idle_timeout_s": 2,
        "max_body_bytes": 1000,
        "max_header_bytes": 2000,
        "max_connections": 20,
    },
    "debug": {"panic_target": "/track?boom=1"},
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = BeaconServer(tmp_path_factory.mktemp("limits"), CONFIG).start()
    yield s
    s.stop()


def test_slowloris_headers_are_cut_off_while_others_are_served(srv: BeaconServer) -> None:
    timeouts = stats(srv.admin_port)["requests"].get("timeout", 0)
    with Conn(srv.port) as slow:
        slow.send(b"GET /track?ev=slow HTTP/1.1\r\nHost: a\r\n")
        start = time.monotonic()
        cut = False
        while time.monotonic() - start < 6:
            # Meanwhile a normal client is served at once.
            assert get(srv.port, "/track?ev=fast").status == 200
            try:
                slow.send(b"X-Drip: 1\r\n")
            except OSError:
                cut = True
                break
            if slow.buf or select_readable(slow.sock):
                cut = True
                break
            time.sleep(0.2)
        assert cut, "slow client was never cut off"
        r = slow.read_response()
        assert r.status == 408 and r.headers["connection"] == "close"
    # Cut for its header timeout (counted as such), not for anything else.
    assert stats(srv.admin_port)["requests"]["timeout"] == timeouts + 1


def select_readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_slow_body_is_cut_off(srv: BeaconServer) -> None:
    with Conn(srv.port) as slow:
        slow.send(
            b"POST /track HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 100\r\n\r\nev="
        )
        slow.sock.settimeout(6)
        r = slow.read_response()
        assert r.status == 408


def test_a_silent_connection_is_closed_after_the_header_timeout(srv: BeaconServer) -> None:
    timeouts = stats(srv.admin_port)["requests"].get("timeout", 0)
    with Conn(srv.port) as c:
        c.sock.settimeout(6)
        assert c.sock.recv(1000).startswith(b"HTTP/1.1 408")
    assert stats(srv.admin_port)["requests"]["timeout"] == timeouts + 1


def test_idle_keep_alive_is_closed(srv: BeaconServer) -> None:
    with Conn(srv.port) as c:
        c.send(b"GET /track?ev=idle HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
        idle_closed = stats(srv.admin_port)["requests"].get("idle_closed", 0)
        c.sock.settimeout(8)
        assert c.sock.recv(1) == b""  # closed without a word: it owed no request
    assert stats(srv.admin_port)["requests"]["idle_closed"] == idle_closed + 1


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (
            b"POST /track HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 5000\r\n\r\n",
            413,
        ),
        (
            b"POST /track HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"400\r\n"
            + b"a" * 1024
            + b"\r\n"
            + b"400\r\n"
            + b"a" * 1024
            + b"\r\n0\r\n\r\n",
            413,
        ),
        (b"GET /track HTTP/1.1\r\nHost: a\r\nX-Big: " + b"h" * 3000 + b"\r\n\r\n", 431),
        (b"GET /track?q=" + b"u" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ],
)
def test_oversized_requests_get_their_status(srv: BeaconServer, raw: bytes, status: int) -> None:
    with Conn(srv.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status
        assert r.headers["connection"] == "close" and r.headers["x-request-id"]
    assert get(srv.port, "/track?still=alive").status == 200


def test_a_panic_answers_500_and_the_next_request_succeeds(srv: BeaconServer) -> None:
    before = stats(srv.admin_port)["requests"]["errors"]
    with Conn(srv.port) as c:
        c.send(b"GET /track?boom=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 500
        rid = r.headers["x-request-id"]
        # Same connection, next request: served normally.
        c.send(b"GET /track?after=panic HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
    assert stats(srv.admin_port)["requests"]["errors"] == before + 1
    assert rid in srv.log() and "PanicException" in srv.log()


def test_connection_cap(tmp_path: Path) -> None:
    with BeaconServer(tmp_path, {"limits": {"max_connections": 5}}) as s:
        held = [Conn(s.port) for _ in range(5)]
        for c in held:  # make sure all five are accepted
            c.send(b"GET /track?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            assert c.read_response().status == 200
        extra = Conn(s.port)
        extra.sock.settimeout(5)
        assert extra.sock.recv(1) == b""  # closed at once
        extra.close()
        held.pop().close()
        time.sleep(0.2)
        assert get(s.port, "/track?x=2").status == 200
        assert stats(s.admin_port)["connections"]["refused"] == 1
        for c in held:
            c.close()
