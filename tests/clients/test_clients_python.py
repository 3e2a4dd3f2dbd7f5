"""Python's requests and httpx, the same cases for both: params with non-ASCII, HEAD, a form
(`data=`), multipart with a file (`files=`), JSON (`json=`), and one connection reused by a
Session / Client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import requests

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients


@pytest.fixture(params=["requests", "httpx"])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh requests.Session or httpx.Client: one connection pool of its own."""
    c: Any = requests.Session() if request.param == "requests" else httpx.Client(timeout=10)
    with c:
        yield c


def test_get_with_non_ascii_params(beacon: BeaconServer, client: Any) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    params = {"ev": "get", "r": run, "q": "ελληνικά 😀", "sym": "&=+%#?/ x", "ö k": "ü"}
    r = client.get(beacon.url("/track"), params=params, timeout=10)
    assert (r.status_code, r.headers["content-type"], len(r.content)) == (200, "image/gif", 43)
    assert clients.stored_since(beacon, since, expect=1) == [params]


def test_head_pixel(beacon: BeaconServer, client: Any) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    r = client.head(beacon.url("/track"), params={"ev": "head", "r": run}, timeout=10)
    assert r.status_code == 200
    assert (r.headers["content-type"], r.headers["content-length"]) == ("image/gif", "43")
    assert r.content == b""
    assert clients.stored_since(beacon, since, expect=1) == [{"ev": "head", "r": run}]


def test_form_post(beacon: BeaconServer, client: Any) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    data = {"ev": "form", "r": run, "t": ["1", "ü 2"]}
    r = client.post(beacon.url("/track"), data=data, timeout=10)
    assert r.status_code == 204
    assert clients.stored_since(beacon, since, expect=1) == [data]


def test_multipart_with_a_file_stores_the_fields_and_skips_the_file(
    beacon: BeaconServer, client: Any
) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    data = {"ev": "files", "r": run, "tag": ["a", "b ελ"]}
    files = {"upload": ("report.csv", b"a,b\n1,2\n", "text/csv")}
    r = client.post(beacon.url("/track"), data=data, files=files, timeout=10)
    assert r.request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert r.status_code == 204
    assert clients.delta(beacon, before) == {
        "accepted": 1,
        "multipart_file_skipped": 1,
        "connections.total": 1,
    }
    [event] = clients.stored_since(beacon, since, expect=1)
    assert list(event.items()) == list(data.items())  # the text fields, in order


def test_json_body(beacon: BeaconServer, client: Any) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    body = {"ev": "json", "r": run, "n": 1.5, "list": ["a", None], "nested": {"k": True}}
    r = client.post(beacon.url("/track"), json=body, timeout=10)
    assert r.status_code == 204
    assert clients.stored_since(beacon, since, expect=1) == [body]


def test_one_connection_is_reused(beacon: BeaconServer, client: Any) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    for i in range(3):
        assert client.get(beacon.url(f"/track?r={run}&n={i}"), timeout=10).status_code == 200
    assert (
        client.post(beacon.url("/track"), data={"r": run, "n": "3"}, timeout=10).status_code == 204
    )
    assert clients.delta(beacon, before) == {"accepted": 4, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=4) == [
        {"r": run, "n": str(i)} for i in range(4)
    ]


def test_event_ids_are_uuid7_unique_and_in_sending_order(beacon: BeaconServer, client: Any) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    for i in range(50):
        r = client.get(beacon.url("/track"), params={"ev": "ids", "r": run, "i": i}, timeout=10)
        assert r.status_code == 200
    assert len(clients.stored_since(beacon, since, expect=50)) == 50
    events = [e for e in beacon.lines("web") if e["params"].get("r") == run]
    assert [int(e["params"]["i"]) for e in events] == list(range(50))
    ids = [uuid.UUID(e["id"]) for e in events]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 50  # made at receipt: they sort by time
    for e, i in zip(events, ids, strict=True):  # the id's 48-bit ms is the event's ts
        assert i.int >> 80 == int(datetime.fromisoformat(e["ts"]).timestamp() * 1000 + 0.5)
