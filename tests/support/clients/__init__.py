"""What the real-client tests (tests/clients/) share: the server's flavors, what a client's
params must be stored as, what was stored since a mark, and /stats deltas.

This folder also holds the clients that are not Python: the Go program, the Node script and
the pages Chromium loads."""

from __future__ import annotations

import secrets
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from support.admin import admin_get, stats
from support.beacon_server import BeaconServer

HERE = Path(__file__).resolve().parent

#: Host header (or absolute-form authority) that selects each flavor.
HOSTS = {"web": "127.0.0.1", "proxied": "t.example", "other": "other.example"}

#: Keys under /stats `requests` that are not one request's outcome.
NOT_OUTCOMES = frozenset(
    {
        "idle_closed",
        "connections",
        "multipart_file_skipped",
        "bad_rows_kept",
        "bad_rows_dropped",
        "batch_requests",
        "batch_events",
        "batch_duplicates",
    }
)


def config(page_origin: str) -> dict[str, Any]:
    """`web` is what the browsers and clients talk to (127.0.0.1, CORS for the test page's
    origin, JSON bodies); `proxied` is only reached by absolute-form targets; `other` has no
    allowed origins. No default flavor: an unknown Host is refused. Lines reach the files
    every 20 ms, so the waits for stored events are short."""
    return {
        "backends": {"file": {"flush_interval_ms": 20}},
        "flavors": [
            {
                "name": "web",
                "hosts": [HOSTS["web"]],
                "allowed_origins": [page_origin],
                "json_bodies": True,
            },
            {"name": "proxied", "hosts": [HOSTS["proxied"]]},
            {"name": "other", "hosts": [HOSTS["other"]]},
        ],
    }


def flat(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The params a flat flavor stores for these name/value pairs, in this order: a name
    seen once is a string, a name seen again an array of all its values."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name not in out:
            out[name] = value
        elif isinstance(out[name], list):
            out[name].append(value)
        else:
            out[name] = [out[name], value]
    return out


def tag() -> str:
    """A fresh run id, so a test can tell its events from earlier ones."""
    return secrets.token_hex(4)


def mark(srv: BeaconServer) -> dict[str, int]:
    """How many events each flavor holds once everything answered so far is written (a
    sentinel to each flavor, waited for): a test's window starts after an earlier test's
    events, even when that test failed before reading them."""
    return {flavor: _settle(srv, flavor, 0)[1] for flavor in HOSTS}


def stored_since(
    srv: BeaconServer, since: dict[str, int], flavor: str = "web", *, expect: int
) -> list[dict[str, Any]]:
    """The params of every event `flavor` stored since `since`, and nothing that might still
    be on its way: waits (with a deadline) for `expect` new events, then sends a sentinel to
    the same flavor and reads up to it. Events are written in the order they were accepted,
    so anything accepted before the sentinel is in the file when the sentinel is."""
    deadline = time.monotonic() + 15
    while len(srv.lines(flavor)) - since[flavor] < expect and time.monotonic() < deadline:
        time.sleep(0.05)
    return _settle(srv, flavor, since[flavor])[0]


def _settle(srv: BeaconServer, flavor: str, start: int) -> tuple[list[dict[str, Any]], int]:
    """Sends a sentinel to `flavor` and waits for it: (the params stored from line `start`
    up to the sentinel, the line count after it)."""
    sentinel = {"sentinel": tag()}
    req = urllib.request.Request(
        srv.url(f"/track?sentinel={sentinel['sentinel']}"), headers={"Host": HOSTS[flavor]}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, "the sentinel request was refused"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        params = [e["params"] for e in srv.lines(flavor)]
        if sentinel in params:
            end = params.index(sentinel)
            return params[start:end], end + 1
        time.sleep(0.02)
    raise AssertionError(f"the sentinel was not stored in {flavor} within 15 s")


def counters(srv: BeaconServer) -> Counter[str]:
    """/stats `requests` counters, plus `connections.total`."""
    doc = stats(srv.admin_port)
    out: Counter[str] = Counter(doc["requests"])
    out["connections.total"] = doc["connections"]["total"]
    return out


def delta(srv: BeaconServer, before: Counter[str]) -> dict[str, int]:
    """The counters that moved since `before`, and by how much."""
    now = counters(srv)
    return {
        k: now[k] - before[k] for k in sorted(now.keys() | before.keys()) if now[k] != before[k]
    }


def requests_counted(moved: dict[str, int]) -> int:
    """How many requests a `delta` counted (each outcome is one request)."""
    return sum(n for k, n in moved.items() if k not in NOT_OUTCOMES and "." not in k)


def healthy(srv: BeaconServer) -> bool:
    """`/healthz` says ok and a pixel is still answered: the server came through."""
    status, body = admin_get(srv.admin_port, "/healthz")
    with urllib.request.urlopen(srv.url("/track?alive=1"), timeout=10) as r:
        pixel = r.status
    return status == 200 and body.strip() == "ok" and pixel == 200
