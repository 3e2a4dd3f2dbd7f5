"""The public HTTP surface against the real server: status codes, exact headers,
keep-alive, pipelining, broken HTTP. The server must survive all of it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from beacon.http.responses import TRANSPARENT_GIF
from support.beacon_server import BeaconServer
from support.http_client import Conn, get


def wait_lines(srv: BeaconServer, n: int, flavor: str = "default") -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = srv.lines(flavor)
        if len(lines) >= n:
            return lines
        time.sleep(0.1)
    return srv.lines(flavor)


def test_get_answers_the_gif_and_writes_the_event(server: BeaconServer) -> None:
    r = get(server.port, "/track?ev=view&id=42")
    assert r.status == 200
    assert r.body == TRANSPARENT_GIF and len(r.body) == 43
    assert r.headers["content-type"] == "image/gif"
    assert r.headers["content-length"] == "43"
    assert r.headers["cache-control"] == "no-store"
    [event] = wait_lines(server, 1)
    assert event["flavor"] == "default"
    assert event["params"] == {"ev": "view", "id": "42"}
    ts = str(event["ts"])
    assert ts.endswith("+00:00") and ts[19] == "." and len(ts) == 29


def test_head_has_headers_but_no_body(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        c.send(b"HEAD /track?ev=h HTTP/1.1\r\nHost: x\r\n\r\nGET /track?ev=g HTTP/1.1\r\n\r\n")
        head = c.read_response(head=True)
        assert head.status == 200 and head.headers["content-length"] == "43"
        # The next response starts right where the head ended: no body was sent.
        after = c.read_response()
        assert after.status == 200 and after.body == TRANSPARENT_GIF
    assert [e["params"] for e in wait_lines(server, 2)] == [{"ev": "h"}, {"ev": "g"}]


def test_keep_alive_serves_many_requests_on_one_connection(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        for i in range(50):
            c.send(f"GET /track?n={i} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            assert c.read_response().status == 200
    assert [e["params"] for e in wait_lines(server, 50)] == [{"n": str(i)} for i in range(50)]


def test_pipelined_requests_are_answered_in_order(server: BeaconServer) -> None:
    reqs = b"".join(
        f"GET {t} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
        for t in ["/track?n=0", "/nope", "/track?n=1", "/track?n=2"]
    )
    with Conn(server.port) as c:
        # Split mid-request too: the parser must reassemble.
        c.send(reqs[:7])
        time.sleep(0.05)
        c.send(reqs[7:])
        assert [c.read_response().status for _ in range(4)] == [200, 404, 200, 200]
    assert [e["params"] for e in wait_lines(server, 3)] == [{"n": "0"}, {"n": "1"}, {"n": "2"}]


def test_target_split_across_packets_is_reassembled(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        for part in [b"GET /tr", b"ack?ev=sp", b"lit&x=1 HTTP/1.1\r\nHo", b"st: a\r\n\r\n"]:
            c.send(part)
            time.sleep(0.02)
        assert c.read_response().status == 200
    assert wait_lines(server, 1)[0]["params"] == {"ev": "split", "x": "1"}


def test_unknown_path_is_404_and_not_stored(server: BeaconServer) -> None:
    assert get(server.port, "/other?ev=x").status == 404
    assert get(server.port, "/track/more?ev=x").status == 404
    assert get(server.port, "/track?ev=ok").status == 200
    assert [e["params"] for e in wait_lines(server, 1)] == [{"ev": "ok"}]


def test_other_methods_are_405(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        c.send(b"DELETE /track?ev=x HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 405 and r.headers["allow"] == "GET, HEAD, POST, OPTIONS"


def test_connection_close_is_honoured(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        c.send(b"GET /track?ev=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.headers["connection"] == "close"
        assert c.is_closed_by_peer()
    with Conn(server.port) as c:  # HTTP/1.0 defaults to close
        c.send(b"GET /track?ev=2 HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
        assert c.is_closed_by_peer()


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /track?a=1 HTTP/9.9\r\n\r\n",
        b"GET /track?a=1 HTTP/1.1\r\nHost a\r\n\r\n",
        b"GET /track?a=1 HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"\x00\x01\x02\xff\r\n\r\n",
        b"GET /tr\x00ck HTTP/1.1\r\n\r\n",
    ],
)
def test_broken_http_gets_400_and_close(server: BeaconServer, raw: bytes) -> None:
    with Conn(server.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 400
        assert r.headers["connection"] == "close"
        assert c.is_closed_by_peer()
    assert get(server.port, "/track?still=alive").status == 200


def test_huge_headers_are_refused_with_431(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        c.send(b"GET /track?a=1 HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        assert c.read_response().status == 431
    assert get(server.port, "/track?still=alive").status == 200


def test_over_long_query_is_414(server: BeaconServer) -> None:
    r = get(server.port, "/track?a=" + "x" * 9000)
    assert r.status == 414
    assert get(server.port, "/track?still=alive").status == 200


def test_invalid_utf8_and_broken_escapes_are_stored_lossily_in_flat_mode(
    server: BeaconServer,
) -> None:
    assert get(server.port, "/track?a=%ff%&b=%zz&c=\xff".replace("\xff", "%C3%28")).status == 200
    [event] = wait_lines(server, 1)
    assert event["params"] == {"a": "\ufffd%", "b": "%zz", "c": "\ufffd("}


def test_rack_flavor_answers_400_to_malformed_queries(tmp_path: Path) -> None:
    cfg = {"flavors": [{"name": "rails", "query_format": "rack"}]}
    with BeaconServer(tmp_path, cfg) as srv:
        assert get(srv.port, "/track?a=%zz").status == 400
        assert get(srv.port, "/track?a=1&a[b]=2").status == 400
        assert get(srv.port, "/track?a=%ff").status == 400
        assert get(srv.port, "/track?u[id]=7&tags[]=a&tags[]=b;x").status == 200
        [event] = wait_lines(srv, 1, "rails")
        assert event["params"] == {"u": {"id": "7"}, "tags": ["a", "b"], "x": None}


def test_a_huge_target_is_cut_off_with_414(server: BeaconServer) -> None:
    with Conn(server.port) as c:
        c.send(b"GET /track?a=" + b"x" * 300_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 414 and r.headers["connection"] == "close"
    assert get(server.port, "/track?still=alive").status == 200
