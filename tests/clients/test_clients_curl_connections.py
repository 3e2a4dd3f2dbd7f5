"""curl and connections: HTTP/1.0 with and without keep-alive, HTTP/1.1 reuse, Connection:
close, HTTP/2 (h2c upgrade, prior knowledge), absolute-form targets, and a keep-alive
connection carrying refusals between good requests."""

from __future__ import annotations

import pytest

from support import clients
from support.beacon_server import BeaconServer
from support.clients.curl import curl, transfer

pytestmark = pytest.mark.clients


def pixels(beacon: BeaconServer, run: str, n: int) -> tuple[list[str], list[dict[str, str]]]:
    """n pixel URLs and the params each must be stored with."""
    return (
        [beacon.url(f"/track?r={run}&n={i}") for i in range(n)],
        [{"r": run, "n": str(i)} for i in range(n)],
    )


def test_http10_without_keep_alive_is_closed_after_each_answer(beacon: BeaconServer) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    urls, params = pixels(beacon, run, 3)
    r = curl(transfer(*urls, opts=("--http1.0",))).check()
    assert r.codes == ["200"] * 3
    assert r.reused == 0
    assert clients.delta(beacon, before) == {"accepted": 3, "connections.total": 3}
    assert clients.stored_since(beacon, since, expect=3) == params


def test_http10_keep_alive_is_kept_and_said(beacon: BeaconServer) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    urls, params = pixels(beacon, run, 3)
    r = curl(transfer(*urls, opts=("--http1.0", "-H", "Connection: keep-alive"))).check()
    assert r.codes == ["200"] * 3
    assert [x.headers.get("connection", "").lower() for x in r.responses] == ["keep-alive"] * 3
    assert r.reused == 2
    assert clients.delta(beacon, before) == {"accepted": 3, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=3) == params


def test_http11_reuses_one_connection_and_says_keep_alive(beacon: BeaconServer) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    urls, params = pixels(beacon, run, 3)
    r = curl(transfer(*urls)).check()
    assert r.codes == ["200"] * 3
    assert [x.headers.get("connection", "").lower() for x in r.responses] == ["keep-alive"] * 3
    assert r.reused == 2
    assert clients.delta(beacon, before) == {"accepted": 3, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=3) == params


def test_connection_close_from_the_client_is_answered_and_closed(beacon: BeaconServer) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    urls, params = pixels(beacon, run, 2)
    r = curl(transfer(*urls, opts=("-H", "Connection: close"))).check()
    assert r.codes == ["200"] * 2
    assert [x.headers.get("connection") for x in r.responses] == ["close"] * 2
    assert r.reused == 0
    assert clients.delta(beacon, before) == {"accepted": 2, "connections.total": 2}
    assert clients.stored_since(beacon, since, expect=2) == params


def test_h2c_upgrade_is_ignored_and_answered_once_in_http11(beacon: BeaconServer) -> None:
    # curl --http2 on http:// asks for `Upgrade: h2c`; beacon speaks HTTP/1.1 only.
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    urls, params = pixels(beacon, run, 2)
    r = curl(transfer(*urls, opts=("--http2",))).check()
    assert "Upgrade: h2c" in r.err  # curl did ask
    assert [x.status_line for x in r.responses] == ["HTTP/1.1 200 OK"] * 2
    assert r.codes == ["200"] * 2
    assert r.reused == 1, "the connection did not stay usable after the upgrade request"
    assert clients.delta(beacon, before) == {"accepted": 2, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=2) == params


def test_http2_prior_knowledge_gets_one_clean_refusal(beacon: BeaconServer) -> None:
    since, before = clients.mark(beacon), clients.counters(beacon)
    r = curl(transfer(beacon.url("/track?h2=1"), opts=("--http2-prior-knowledge",)))
    # 16: curl's HTTP/2 error, here the GOAWAY (HTTP_1_1_REQUIRED); 28 would be a hang.
    assert r.rc == 16, f"curl exited {r.rc}:\n{r.err[-3000:]}"
    assert clients.delta(beacon, before) == {"http2": 1, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=0) == []
    assert clients.healthy(beacon)


@pytest.mark.parametrize(
    ("how", "authority", "flavor"),
    [
        ("request-target", "t.example", "proxied"),  # Host: 127.0.0.1 (web) is not used
        ("proxy", "t.example", "proxied"),  # curl -x: what a client behind a proxy sends
        ("request-target+host", "127.0.0.1", "web"),  # Host: t.example is not used
    ],
)
def test_absolute_form_target_takes_path_query_and_host_from_itself(
    beacon: BeaconServer, how: str, authority: str, flavor: str
) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    target = f"http://{authority}/track?ev=abs&r={run}"
    if how == "proxy":
        opts: tuple[str, ...] = ("-x", f"http://127.0.0.1:{beacon.port}")
        url = target
    else:
        opts = ("--request-target", target)
        opts += ("-H", "Host: t.example") if how == "request-target+host" else ()
        url = beacon.url("/")
    r = curl(transfer(url, opts=opts)).check()
    assert f"GET {target} HTTP/1.1" in r.err
    assert r.codes == ["200"]
    other = "web" if flavor == "proxied" else "proxied"
    assert clients.stored_since(beacon, since, flavor, expect=1) == [{"ev": "abs", "r": run}]
    assert clients.stored_since(beacon, since, other, expect=0) == []


def test_keep_alive_connection_answers_each_request_on_its_own(beacon: BeaconServer) -> None:
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    post = ("-H", "Content-Type: text/plain", "--data-binary")
    r = curl(
        transfer(beacon.url("/track"), opts=("-H", "Content-Type: application/xml", "-d", "<x/>")),
        transfer(beacon.url(f"/track?ev=get&r={run}")),
        transfer(beacon.url(f"/nope?ev=404&r={run}")),
        transfer(beacon.url("/track"), opts=(*post, f"ev=post&r={run}")),
    ).check()
    assert r.codes == ["415", "200", "404", "204"]
    assert r.reused == 3
    assert clients.delta(beacon, before) == {
        "unsupported_media_type": 1,
        "bad_rows_kept": 1,  # the 415 is kept (README "Bad rows"); a 404 is not
        "accepted": 2,
        "not_found": 1,
        "connections.total": 1,
    }
    assert clients.stored_since(beacon, since, expect=2) == [
        {"ev": "get", "r": run},
        {"ev": "post", "r": run},
    ]
