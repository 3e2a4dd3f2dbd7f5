"""Hostile clients against the real server: many idle connections, pipelining floods,
request smuggling, JSON injection through query values, huge and deep rack queries,
invalid UTF-8 everywhere. Each is answered as README.md says ("HTTP", and the limits in
"Configuration"), RSS stays bounded and other clients are still served."""

from __future__ import annotations

import json
import resource
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from support.admin import stats
from support.beacon_server import BeaconServer
from support.http_client import Conn, get

CONFIG = {
    "limits": {"header_timeout_s": 4, "max_connections": 15000},
    "flavors": [
        {"name": "flat", "hosts": ["flat"], "user_agent": True, "referer": True},
        {"name": "rails", "hosts": ["rails"], "query_format": "rack"},
    ],
    "default_flavor": "flat",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = BeaconServer(tmp_path_factory.mktemp("hostile"), CONFIG).start()
    yield s
    s.stop()


def rss_mb(srv: BeaconServer) -> float:
    return float(stats(srv.admin_port)["memory"]["rss_bytes"]) / 2**20


def wait_events(srv: BeaconServer, flavor: str, pred: Any, timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = [e for e in srv.lines(flavor) if pred(e)]
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_ten_thousand_idle_connections(srv: BeaconServer) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = rss_mb(srv)
    socks = []
    try:
        for _ in range(10_000):
            s = socket.socket()
            s.setblocking(True)
            s.connect(("127.0.0.1", srv.port))
            socks.append(s)
        deadline = time.monotonic() + 20
        while stats(srv.admin_port)["connections"]["open"] < 10_000:
            assert time.monotonic() < deadline, "server did not accept them all"
            time.sleep(0.2)
        held = rss_mb(srv)
        # Other clients are still served while 10,000 sit idle.
        for i in range(20):
            assert get(srv.port, f"/track?busy={i}", host="flat").status == 200
        # Idle connections that never send a request are cut at the header timeout.
        deadline = time.monotonic() + 30
        while stats(srv.admin_port)["connections"]["open"] > 10:
            assert time.monotonic() < deadline, "idle connections were never closed"
            time.sleep(0.5)
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    per_conn_kb = (held - before) * 1024 / 10_000
    print(
        f"\n10,000 idle connections: RSS {before:.1f} -> {held:.1f} MB "
        f"({per_conn_kb:.1f} KB each), all cut at the header timeout"
    )
    assert held - before < 150, "RSS grew more than 15 KB per idle connection"


def test_pipelining_flood_without_reading_keeps_memory_bounded(srv: BeaconServer) -> None:
    before = rss_mb(srv)
    request = b"GET /track?flood=1 HTTP/1.1\r\nHost: flat\r\n\r\n"
    with Conn(srv.port) as c:
        c.sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 5
        chunk = request * 2000
        # Keep writing without reading until the kernel buffers fill: the server must stop
        # reading (back-pressure) rather than queue answers without bound.
        while time.monotonic() < deadline:
            try:
                sent += c.sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
        during = rss_mb(srv)
        assert get(srv.port, "/track?other=1", host="flat").status == 200
    print(
        f"\npipelining flood: {sent // len(request)} requests pushed, RSS {before:.1f} -> "
        f"{during:.1f} MB"
    )
    assert during - before < 100


def test_pipelined_burst_is_answered_in_full(srv: BeaconServer) -> None:
    n = 5000
    with Conn(srv.port) as c:
        c.send(
            b"".join(
                f"GET /track?burst={i} HTTP/1.1\r\nHost: flat\r\n\r\n".encode() for i in range(n)
            )
        )
        statuses = [c.read_response().status for _ in range(n)]
    assert statuses == [200] * n
    got = wait_events(srv, "flat", lambda e: "burst" in e["params"])
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.2)
        got = [e for e in srv.lines("flat") if "burst" in e["params"]]
    assert [int(e["params"]["burst"]) for e in got] == list(range(n))


SMUGGLING = [
    # CL.TE: both headers.
    b"POST /track HTTP/1.1\r\nHost: flat\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: text/plain\r\n\r\n0\r\n\r\n"
    b"GET /track?smuggled=1 HTTP/1.1\r\nHost: flat\r\n\r\n",
    # Two different Content-Lengths.
    b"POST /track HTTP/1.1\r\nHost: flat\r\nContent-Length: 5\r\nContent-Length: 60\r\n"
    b"Content-Type: text/plain\r\n\r\nsmug=GET /track?smuggled=2 HTTP/1.1\r\nHost: flat\r\n\r\n",
    # Obfuscated Transfer-Encoding.
    b"POST /track HTTP/1.1\r\nHost: flat\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"
    b"Content-Type: text/plain\r\n\r\n0\r\n\r\n"
    b"GET /track?smuggled=3 HTTP/1.1\r\nHost: flat\r\n\r\n",
    # Whitespace before the colon.
    b"POST /track HTTP/1.1\r\nHost: flat\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n"
    b"Content-Type: text/plain\r\n\r\n0\r\n\r\n"
    b"GET /track?smuggled=4 HTTP/1.1\r\nHost: flat\r\n\r\n",
]


@pytest.mark.parametrize("raw", SMUGGLING)
def test_request_smuggling_attempts_are_refused(srv: BeaconServer, raw: bytes) -> None:
    with Conn(srv.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 400 and r.headers["connection"] == "close"
        assert c.is_closed_by_peer()
    time.sleep(0.3)
    assert not [e for e in srv.lines("flat") if "smuggled" in json.dumps(e)]


def test_query_values_cannot_break_out_of_their_json_string(srv: BeaconServer) -> None:
    evil = '"},"flavor":"pwned","x":{"\n\r\t\\\x00\x1f</script>'
    encoded = "".join(f"%{b:02X}" for b in evil.encode())
    assert get(srv.port, f"/track?inj={encoded}&{encoded}=k", host="flat").status == 200
    ua = 'x"}\\ ua'
    assert get(srv.port, "/track?inj2=1", host="flat", extra=f"User-Agent: {ua}\r\n").status == 200
    [e] = wait_events(srv, "flat", lambda e: "inj" in e["params"])
    assert e["flavor"] == "flat" and e["params"] == {"inj": evil, evil: "k"}
    [e2] = wait_events(srv, "flat", lambda e: "inj2" in e["params"])
    assert e2["ua"] == ua
    for path in (srv.data_dir / "flat").glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            assert all(b >= 0x20 for b in line), "raw control character in a line"
            json.loads(line)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("a" + "[b]" * 2000 + "=1", 400),  # far deeper than max_depth, under the size limit
        ("a" + "[b]" * 100 + "=1", 400),  # Rack 2.2 raises at 100 levels: the default
        ("a" + "[b]" * 99 + "=1", 200),  # and takes 99
        ("&".join(f"p{i}[x][]={i}" for i in range(300)), 400),  # more than max_params
        ("a[]=1&a[b]=2", 400),  # type conflict
        ("x=" + "y" * 9000, 414),
    ],
)
def test_huge_and_deep_rack_queries(srv: BeaconServer, query: str, status: int) -> None:
    assert get(srv.port, f"/track?{query}", host="rails").status == status
    assert get(srv.port, "/track?ok=1", host="rails").status == 200


def test_invalid_utf8_everywhere(srv: BeaconServer) -> None:
    bad = b"\xff\xfe\xc3\x28"
    headers = b"Host: flat\r\nUser-Agent: " + bad + b"\r\nReferer: " + bad + b"\r\n\r\n"
    cases = [
        (b"GET /track?iu=1&v=%FF%FE%C3%28 HTTP/1.1\r\n" + headers, 200),
        # Raw non-ASCII in the target is not HTTP: the parser refuses it.
        (b"GET /track?iu=5&v=" + bad + b" HTTP/1.1\r\n" + headers, 400),
        (b"GET /track?iu=2 HTTP/1.1\r\nHost: " + bad + b"\r\n\r\n", 200),  # default flavor
        (b"GET /track?iu=3&v=%ff HTTP/1.1\r\nHost: rails\r\n\r\n", 400),
        (b"GET /tr%FFck?iu=4 HTTP/1.1\r\nHost: flat\r\n\r\n", 404),
    ]
    for raw, status in cases:
        with Conn(srv.port) as c:
            c.send(raw)
            assert c.read_response().status == status, raw
    got = wait_events(srv, "flat", lambda e: e["params"].get("iu") == "1")
    assert got[0]["params"]["v"] == "\ufffd\ufffd\ufffd("
    assert got[0]["ua"] == "\ufffd\ufffd\ufffd("
    assert stats(srv.admin_port)["requests"]["errors"] == 0


def test_server_survived_everything(srv: BeaconServer, tmp_path: Path) -> None:
    s = stats(srv.admin_port)
    assert s["requests"]["errors"] == 0
    assert s["backends"]["file"]["dropped"] == 0
    assert get(srv.port, "/track?final=1", host="flat").status == 200
