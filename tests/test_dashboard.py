"""The live dashboard (`GET /` on the admin listener) in headless Chromium against the real
server: while a paced load sends known per-flavor rates, the rates the page computed match
what was sent; then the server stops (the page says it is unreachable) and starts again on
the same ports (the page recovers, and draws no negative rate from the reset counters); a
reload keeps the samples.

Screenshots go to target/artifacts/ (dashboard.png, dashboard-phone.png,
dashboard-unreachable.png)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.admin import admin_get
from support.beacon_server import REPO, BeaconServer
from support.chromium import Chromium, Page
from support.http_client import Conn, get
from support.load import BackgroundLoad
from support.paced import CountedRequests

ARTIFACTS = REPO / "target" / "artifacts"
RATES = {"shop": 150, "news": 90, "blog": 30}  # requests/s the load sends to each flavor
CONFIG = {
    "default_flavor": None,
    "flavors": [{"name": name, "hosts": [f"{name}.test"]} for name in RATES],
}
DESKTOP = {"width": 1280, "height": 1500, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 375, "height": 2600, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[BeaconServer]:
    s = BeaconServer(tmp_path, CONFIG).start()
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def wait_for(page: Page, expression: str, what: str, timeout_s: float = 30.0) -> Any:
    """The first truthy value of a JS expression, polled."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            state = page.evaluate("document.body.dataset.state")
            raise AssertionError(f"{what}: not within {timeout_s}s (page state {state!r})")
        time.sleep(0.2)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(page.call("Page.captureScreenshot")["data"]))
    print(f"screenshot: {path}")
    return path


def ok_samples_since(page: Page, since: float) -> list[dict[str, Any]]:
    """The page's answered samples after `since`: their time and per-flavor rates."""
    samples: list[dict[str, Any]] = page.evaluate(
        f"""dashboard.history.samples
            .filter((s) => s.ok && s.t > {since})
            .map((s) => ({{t: s.t, rates: Object.fromEntries(
                {list(RATES)!r}.map((f) => [f, s.v['flavors.' + f] ?? null]))}}))"""
    )
    return samples


def test_the_page_and_its_files_are_served_on_the_admin_listener(srv: BeaconServer) -> None:
    status, body = admin_get(srv.admin_port, "/")
    assert status == 200 and "<title>beacon</title>" in body
    for script in re.findall(r'src="([^"]+)"', body):
        assert admin_get(srv.admin_port, script)[0] == 200, script
    for sheet in re.findall(r'href="(/[^"]+\.css)"', body):
        assert admin_get(srv.admin_port, sheet)[0] == 200, sheet
    # The modules the page imports, and what it must not serve.
    for name in ("samples.js", "panels.js", "charts.js", "dashboard.js"):
        assert admin_get(srv.admin_port, f"/{name}")[0] == 200, name
    for path in ("/vendor/README.md", "/vendor/uPlot.LICENSE", "/__init__.py", "/nope.js"):
        assert admin_get(srv.admin_port, path)[0] == 404, path
    schema = admin_get(srv.admin_port, "/stats/schema")
    assert schema[0] == 200 and '"key":"spool_pending","metric"' in schema[1]
    # HEAD: the headers, no body; the public listener serves none of it.
    with Conn(srv.admin_port) as c:
        c.send(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = c.read_response(head=True)
        assert c.is_closed_by_peer()  # no body followed the headers
    assert head.status == 200 and int(head.headers["content-length"]) > 0
    assert head.headers["content-type"] == "text/html; charset=utf-8"
    assert get(srv.port, "/", host="shop.test").status == 404
    assert get(srv.port, "/dashboard.js", host="shop.test").status == 404


@pytest.mark.clients
def test_dashboard_shows_the_traffic_and_survives_a_restart(srv: BeaconServer) -> None:
    with Chromium() as browser:
        page = browser.new_page()
        page.call("Emulation.setDeviceMetricsOverride", DESKTOP)
        page.goto(f"http://127.0.0.1:{srv.admin_port}/")
        wait_for(page, "document.body.dataset.state === 'live'", "first answer")

        # Known rates per flavor, paced; the page's rates over the same wall-clock window.
        requests = CountedRequests({f"{name}.test": rate for name, rate in RATES.items()})
        load = BackgroundLoad(
            "127.0.0.1", srv.port, requests, rate=requests.total_rate, connections=6
        ).start()
        started = time.time()
        try:
            wait_for(
                page,
                f"dashboard.history.samples.filter((s) => s.ok && s.t > {started + 3}).length"
                " >= 16",
                "16 samples under load",
                timeout_s=60,
            )
            samples = ok_samples_since(page, started + 3)
        finally:
            result = load.stop()
        assert set(result.statuses) == {200}, result
        window = (samples[0]["t"], samples[-1]["t"])
        for name in RATES:
            shown = [s["rates"][name] for s in samples[1:]]
            assert None not in shown, (name, shown)
            page_rate = sum(shown) / len(shown)
            sent = requests.rate(f"{name}.test", *window)
            assert abs(page_rate - sent) <= 0.1 * sent, (name, page_rate, sent, shown)

        # Every panel is drawn; the flavor panel names every flavor.
        panels = page.evaluate(
            "[...document.querySelectorAll('.card')].map((c) => [c.dataset.panel,"
            " c.querySelector('canvas')?.width || 0])"
        )
        drawn = {panel for panel, width in panels if width > 0}
        assert {"outcomes", "flavors", "events-file", "depth", "spool-age", "up"} <= drawn
        assert {"gc", "connections", "rss"} <= drawn
        latest = page.evaluate(
            "JSON.parse(document.querySelector('[data-panel=flavors]').dataset.latest)"
        )
        assert set(latest) == set(RATES)
        screenshot(page, "dashboard.png")

        # A phone: one column, nothing wider than the screen.
        page.call("Emulation.setDeviceMetricsOverride", PHONE)
        wait_for(page, "document.documentElement.scrollWidth <= 375", "fits 375 px")
        screenshot(page, "dashboard-phone.png")
        page.call("Emulation.setDeviceMetricsOverride", DESKTOP)

        # The server goes away: the page says so, and since when.
        assert srv.stop() == 0
        wait_for(page, "document.body.dataset.state === 'unreachable'", "unreachable")
        banner = page.evaluate("document.getElementById('banner').textContent")
        assert re.match(r"Server unreachable since \d\d:\d\d:\d\d ", banner), banner
        assert page.evaluate("!document.getElementById('banner').hidden")
        screenshot(page, "dashboard-unreachable.png")
        misses = page.evaluate("dashboard.history.samples.filter((s) => !s.ok).length")
        wait_for(
            page,
            f"dashboard.history.samples.filter((s) => !s.ok).length > {misses + 2}",
            "it keeps polling",
        )

        # Back on the same ports: the banner goes, new samples arrive, counters that started
        # again from 0 give no negative rate.
        srv.start()
        wait_for(page, "document.body.dataset.state === 'live'", "live again")
        assert page.evaluate("document.getElementById('banner').hidden")
        restarted = time.time()
        again = CountedRequests({"shop.test": 40})
        load = BackgroundLoad("127.0.0.1", srv.port, again, rate=40, connections=2).start()
        try:
            wait_for(
                page,
                "dashboard.history.samples.some((s) => s.ok && "
                f"s.t > {restarted} && s.v['flavors.shop'] > 0)",
                "traffic drawn after the restart",
            )
        finally:
            load.stop()
        assert page.evaluate("dashboard.history.restartedAt !== null")
        negative = page.evaluate(
            "dashboard.history.samples.flatMap((s) => Object.entries(s.v)"
            ".filter(([k, v]) => v !== null && v < 0))"
        )
        assert negative == []

        # A reload in the same tab keeps the samples (sessionStorage).
        kept = page.evaluate("dashboard.history.samples.length")
        page.goto(f"http://127.0.0.1:{srv.admin_port}/")
        wait_for(page, "document.body.dataset.state === 'live'", "live after a reload")
        assert page.evaluate("dashboard.history.samples.length") > kept
