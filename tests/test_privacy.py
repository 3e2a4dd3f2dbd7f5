"""Privacy and correctness switches per flavor, end to end: client IP (full, anonymised
v4 and v6, X-Forwarded-For only from trusted proxies), user agent and referer capture,
DNT / Sec-GPC, and dedup within and after the TTL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from beacon import TtlStore
from support.admin import stats
from support.beacon_server import BeaconServer
from support.http_client import get

CONFIG = {
    "trusted_proxies": ["127.0.0.2", "10.0.0.0/8"],
    "flavors": [
        {
            "name": "anon",
            "hosts": ["anon"],
            "ip": "anonymized",
            "user_agent": True,
            "referer": True,
        },
        {"name": "full", "hosts": ["full"], "ip": "full"},
        {"name": "quiet", "hosts": ["quiet"], "honor_dnt": True},
        {"name": "dedup", "hosts": ["dedup"], "dedup_param": "eid", "dedup_ttl_s": 1.5},
    ],
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = BeaconServer(tmp_path_factory.mktemp("privacy"), CONFIG).start()
    yield s
    s.stop()


def last_events(srv: BeaconServer, flavor: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(got := srv.lines(flavor)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(got) == n, got
    return got


def test_ip_modes_and_forwarded_for(tmp_path: Path) -> None:
    # The test client is 127.0.0.1: not a trusted proxy, so its X-Forwarded-For is ignored.
    cfg = {**CONFIG, "trusted_proxies": ["127.0.0.1"]}
    with BeaconServer(tmp_path, cfg) as s:
        xff = "X-Forwarded-For: 198.51.100.1, 203.0.113.77\r\n"
        assert get(s.port, "/track?n=1", host="anon", extra=xff).status == 200
        v6 = "X-Forwarded-For: 2001:db8:abcd:1234:5678:9abc:def0:1234\r\n"
        assert get(s.port, "/track?n=2", host="anon", extra=v6).status == 200
        assert get(s.port, "/track?n=3", host="full", extra=xff).status == 200
        assert get(s.port, "/track?n=4", host="full").status == 200
        anon = last_events(s, "anon", 2)
        full = last_events(s, "full", 2)
    assert [e["ip"] for e in anon] == ["203.0.113.0", "2001:db8:abcd::"]
    assert [e["ip"] for e in full] == ["203.0.113.77", "127.0.0.1"]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(srv: BeaconServer) -> None:
    xff = "X-Forwarded-For: 203.0.113.77\r\n"
    assert get(srv.port, "/track?n=1", host="full", extra=xff).status == 200
    assert last_events(srv, "full", 1)[0]["ip"] == "127.0.0.1"


def test_user_agent_and_referer_capture(srv: BeaconServer) -> None:
    extra = 'User-Agent: Mozilla/5.0 "quoted"\r\nReferer: https://shop.example/p?q=1\r\n'
    assert get(srv.port, "/track?ev=ua", host="anon", extra=extra).status == 200
    e = last_events(srv, "anon", 1)[0]
    assert e["ua"] == 'Mozilla/5.0 "quoted"'
    assert e["referer"] == "https://shop.example/p?q=1"
    assert e["ip"] == "127.0.0.0"
    assert list(e) == ["ts", "id", "flavor", "params", "ip", "ua", "referer"]
    # Off by default: the same headers to another flavor leave no trace.
    assert get(srv.port, "/track?ev=ua", host="dedup", extra=extra).status == 200
    assert list(last_events(srv, "dedup", 1)[0]) == ["ts", "id", "flavor", "params"]


def test_do_not_track_is_answered_but_not_stored(srv: BeaconServer) -> None:
    before = stats(srv.admin_port)["flavors"]["quiet"]["do_not_track"]
    for header in ("DNT: 1\r\n", "Sec-GPC: 1\r\n"):
        r = get(srv.port, "/track?ev=private", host="quiet", extra=header)
        assert r.status == 200 and len(r.body) == 43
    assert get(srv.port, "/track?ev=public", host="quiet", extra="DNT: 0\r\n").status == 200
    assert [e["params"]["ev"] for e in last_events(srv, "quiet", 1)] == ["public"]
    assert stats(srv.admin_port)["flavors"]["quiet"]["do_not_track"] == before + 2


def test_dedup_within_and_after_the_ttl(srv: BeaconServer) -> None:
    for target in ("/track?eid=a&n=1", "/track?eid=a&n=2", "/track?eid=b&n=3"):
        assert get(srv.port, target, host="dedup").status == 200
    time.sleep(1.7)
    assert get(srv.port, "/track?eid=a&n=4", host="dedup").status == 200
    got = [e["params"]["n"] for e in srv.lines("dedup") if "eid" in e["params"]]
    deadline = time.monotonic() + 10
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        got = [e["params"]["n"] for e in srv.lines("dedup") if "eid" in e["params"]]
    assert got == ["1", "3", "4"]
    assert stats(srv.admin_port)["flavors"]["dedup"]["duplicate"] == 1


def test_ttl_store_from_python() -> None:
    store = TtlStore(max_entries=2)
    store.set(b"k", b"v", 10.0, now_ms=0)
    assert store.get(b"k", now_ms=9_999) == b"v"
    assert store.ttl(b"k", now_ms=4_000) == 6.0
    assert store.get(b"k", now_ms=10_000) is None
    store.set(b"a", b"1", 1.0, now_ms=0)
    store.set(b"b", b"2", 5.0, now_ms=0)
    store.set(b"c", b"3", 5.0, now_ms=0)  # full: evicts "a", the soonest to expire
    assert len(store) == 2 and store.evicted == 1
    assert store.get(b"a", now_ms=1) is None and store.get(b"b", now_ms=1) == b"2"
