"""Headless Chromium (driven over the DevTools protocol, tests/support/chromium.py) on a page
of another origin (http://localhost:<port>, served here) firing at beacon
(http://127.0.0.1:<port>): <img> pixels, navigator.sendBeacon with every body kind, fetch
with keepalive and credentials, and a beacon sent from `pagehide` while the page is left."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from support import clients
from support.beacon_server import BeaconServer
from support.chromium import Chromium, Page

pytestmark = pytest.mark.clients

# Values a page may put in a pixel: non-ASCII, emoji, every reserved character, spaces.
AWKWARD = ["ελληνικά", "😀 🎉", "&=+%#?/", "a b  c", "100% ok?", "x+y=z", "it's (ok)*!~", ""]


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def page(browser: Chromium, beacon: BeaconServer, page_origin: str) -> Page:
    p = browser.new_page()
    p.goto(f"{page_origin}/beacon.html?track={quote(beacon.url('/track'), safe='')}")
    assert p.evaluate("location.origin") == page_origin
    return p


def js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def visit_other_flavor(beacon: BeaconServer) -> None:
    """A request handled for the `other` flavor (no allowed origins) just before the page's:
    the page's answer must still be decided by the page's own request."""
    req = urllib.request.Request(
        beacon.url("/track?ev=other"), headers={"Host": clients.HOSTS["other"]}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_img_pixels_with_awkward_characters(beacon: BeaconServer, page: Page) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    sent = []
    for i, value in enumerate(AWKWARD):
        pairs = [("ev", "img"), ("r", run), ("i", str(i)), ("v", value), (f"k {value}", "1")]
        got = page.evaluate(f"pixel({js(pairs)})")
        assert got == {"loaded": True, "width": 1, "height": 1}, (value, got)
        sent.append(clients.flat(pairs))
    assert clients.stored_since(beacon, since, expect=len(sent)) == sent


@pytest.mark.parametrize("kind", ["text", "form"])
def test_send_beacon_query_string_bodies(beacon: BeaconServer, page: Page, kind: str) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    pairs = [("ev", f"beacon-{kind}"), ("r", run), ("t", "ελ & 😀"), ("t", "+=%/?#")]
    assert page.evaluate(f"beacon({js(kind)}, {js(pairs)})") is True
    assert clients.stored_since(beacon, since, expect=1) == [clients.flat(pairs)]


def test_send_beacon_json_blob_after_its_preflight(beacon: BeaconServer, page: Page) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    body = {"ev": "beacon-json", "r": run, "n": 3, "list": ["ελ", None], "o": {"k": True}}
    assert page.evaluate(f"beacon('json', {js(body)})") is True
    assert clients.stored_since(beacon, since, expect=1) == [body]


def test_send_beacon_form_data_skips_the_file(beacon: BeaconServer, page: Page) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    fields = [("ev", "beacon-formdata"), ("r", run), ("tag", "a"), ("tag", "b ελ &=")]
    pairs = [*fields[:3], ("upload", "file bytes"), fields[3], ("after", "1")]
    assert page.evaluate(f"beacon('formdata', {js(pairs)})") is True
    expected = clients.flat([*fields, ("after", "1")])
    stored = clients.stored_since(beacon, since, expect=1)
    assert [list(e.items()) for e in stored] == [list(expected.items())]  # fields in order
    assert clients.delta(beacon, before).get("multipart_file_skipped") == 1


@pytest.mark.parametrize("kind", ["text", "form", "json", "formdata"])
def test_fetch_keepalive_with_credentials_sees_ok(
    beacon: BeaconServer, page: Page, kind: str
) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    pairs = [("ev", f"fetch-{kind}"), ("r", run), ("v", "ü 😀 &=")]
    payload: Any = dict(pairs) if kind == "json" else pairs
    # A missing Access-Control-Allow-Origin or -Credentials makes fetch reject.
    assert page.evaluate(f"post({js(kind)}, {js(payload)})") == {"ok": True, "status": 204}
    assert clients.stored_since(beacon, since, expect=1) == [clients.flat(pairs)]


@pytest.mark.parametrize(
    ("kind", "path", "status"), [("xml", "/track", 415), ("text", "/nope", 404)]
)
def test_fetch_sees_the_status_of_a_refusal(
    beacon: BeaconServer, page: Page, kind: str, path: str, status: int
) -> None:
    since = clients.mark(beacon)
    visit_other_flavor(beacon)
    url = beacon.url(path)
    got = page.evaluate(f"post({js(kind)}, [['ev', 'refused']], {js(url)})")
    assert got == {"ok": False, "status": status}
    assert clients.stored_since(beacon, since, expect=0) == []


def test_send_beacon_from_pagehide_arrives_once(
    beacon: BeaconServer, browser: Chromium, page_origin: str
) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    tab = browser.new_page()
    track = quote(beacon.url("/track"), safe="")
    tab.goto(f"{page_origin}/pagehide.html?track={track}&r={run}")
    tab.goto(f"{page_origin}/blank.html")  # leaving the page fires pagehide
    assert tab.evaluate("document.title") == "blank"
    assert clients.stored_since(beacon, since, expect=1) == [{"ev": "pagehide", "r": run}]
    tab.close()
