"""The batch endpoint (README "The batch endpoint") against a real server, with real clients
(Python requests, curl, Node's fetch): a JSON array or NDJSON of events stored as one line
each with one shared ts and an id each; a bad element or one too many refuses the whole
batch; gzip; CORS; and the honest backpressure of a spool over its high-water mark, while
pixels are always taken."""

from __future__ import annotations

import gzip
import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support.admin import stats
from support.beacon_server import BeaconServer, free_port
from support.clients.curl import curl, transfer

ORIGIN = "https://app.example"
CONFIG = {
    "backends": {"file": {"flush_interval_ms": 20}},
    "flavors": [{"name": "default", "required_params": ["ev"], "allowed_origins": [ORIGIN]}],
}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BeaconServer]:
    with BeaconServer(tmp_path_factory.mktemp("batch"), CONFIG) as s:
        yield s


def events(run: str, n: int) -> list[dict[str, Any]]:
    return [{"ev": "view", "run": run, "n": i, "page": f"/p/{i}"} for i in range(n)]


def wait_for(cond: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"not reached within {timeout_s} s: {what}"
        time.sleep(0.05)


def stored(srv: BeaconServer, run: str) -> list[dict[str, Any]]:
    """Every event of `run` stored so far, once everything answered before is written: a
    pixel sent now is waited for (one writer, in order)."""
    mark = secrets.token_hex(4)
    r = requests.get(srv.url(f"/track?ev=mark&run={mark}"), timeout=10)
    assert r.status_code == 200
    wait_for(lambda: any(e["params"]["run"] == mark for e in srv.lines()), "the mark")
    return [e for e in srv.lines() if e["params"].get("run") == run]


def counters(srv: BeaconServer) -> dict[str, int]:
    row: dict[str, int] = stats(srv.admin_port)["flavors"]["default"]
    return row


def moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def assert_one_batch(lines: list[dict[str, Any]], sent: list[dict[str, Any]]) -> None:
    """The lines are the elements, in order, with one ts and distinct increasing ids."""
    assert [e["params"] for e in lines] == sent
    assert len({e["ts"] for e in lines}) == 1
    ids = [e["id"] for e in lines]
    assert len(set(ids)) == len(sent) and ids == sorted(ids)


def test_a_json_array_of_500_is_500_lines_with_one_ts(srv: BeaconServer) -> None:
    run, before = secrets.token_hex(4), counters(srv)
    sent = events(run, 500)
    r = requests.post(srv.url("/batch"), json=sent, timeout=10)
    assert (r.status_code, r.json()) == (200, {"accepted": 500})
    assert r.headers["Content-Type"] == "application/json"
    assert_one_batch(stored(srv, run), sent)
    got = moved(before, counters(srv))
    assert (got["batch_requests"], got["batch_events"]) == (1, 500)
    assert got["accepted"] == 2  # the batch and the mark


def test_ndjson_the_same(srv: BeaconServer) -> None:
    run = secrets.token_hex(4)
    sent = events(run, 500)
    body = "\n".join(json.dumps(e) + ("\n" if i % 7 == 0 else "") for i, e in enumerate(sent))
    r = requests.post(srv.url("/batch"), data=body.encode(), headers=NDJSON, timeout=10)
    assert (r.status_code, r.json()) == (200, {"accepted": 500})
    assert_one_batch(stored(srv, run), sent)


@pytest.mark.parametrize(
    ("bad", "answer"),
    [
        ({"run": "x"}, {"error": "missing_required", "index": 3}),
        (["ev", "view"], {"error": "not_an_object", "index": 3}),
        (
            {"ev": "view", **{f"p{i}": i for i in range(300)}},
            {"error": "too_many_params", "index": 3},
        ),
    ],
)
def test_one_bad_element_stores_none_and_names_its_index(
    srv: BeaconServer, bad: Any, answer: dict[str, Any]
) -> None:
    run, before = secrets.token_hex(4), counters(srv)
    batch: list[Any] = events(run, 10)
    batch[3] = bad
    r = requests.post(srv.url("/batch"), json=batch, timeout=10)
    assert (r.status_code, r.json()) == (400, answer)
    assert r.headers["X-Request-Id"]
    assert stored(srv, run) == []
    outcome = "missing_param" if answer["error"] == "missing_required" else "malformed"
    got = moved(before, counters(srv))
    assert (got[outcome], got["batch_requests"], got.get("batch_events")) == (1, 1, None)


def test_bad_json_names_the_element_or_the_line(srv: BeaconServer) -> None:
    run = secrets.token_hex(4)
    lines = [json.dumps(e) for e in events(run, 5)]
    lines[2] = '{"ev": "view", "run": '
    body = "\n".join(lines).encode()
    r = requests.post(srv.url("/batch"), data=body, headers=NDJSON, timeout=10)
    assert (r.status_code, r.json()) == (400, {"error": "invalid_json", "index": 2})
    body = ("[" + ",".join(lines) + "]").encode()
    r = requests.post(srv.url("/batch"), data=body, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid_json", "index": 2})
    r = requests.post(srv.url("/batch"), json={"ev": "view"}, timeout=10)
    assert (r.status_code, r.json()) == (400, {"error": "not_an_array"})
    assert stored(srv, run) == []


def test_501_elements_is_413(srv: BeaconServer) -> None:
    run, before = secrets.token_hex(4), counters(srv)
    r = requests.post(srv.url("/batch"), json=events(run, 501), timeout=10)
    assert (r.status_code, r.json()) == (413, {"error": "too_many_events", "max_events": 500})
    assert stored(srv, run) == []
    assert moved(before, counters(srv))["batch_too_large"] == 1


def test_a_gzip_batch(srv: BeaconServer) -> None:
    run = secrets.token_hex(4)
    sent = events(run, 300)
    body = gzip.compress(json.dumps(sent).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = requests.post(srv.url("/batch"), data=body, headers=headers, timeout=10)
    assert (r.status_code, r.json()) == (200, {"accepted": 300})
    assert_one_batch(stored(srv, run), sent)


def test_curl_data_binary_from_a_file(srv: BeaconServer, tmp_path: Path) -> None:
    run = secrets.token_hex(4)
    sent = events(run, 50)
    path = tmp_path / "batch.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in sent))
    ndjson = "Content-Type: application/x-ndjson"
    args = ["-sS", "-H", ndjson, "--data-binary", f"@{path}", "-w", "\n%{http_code}"]
    p = subprocess.run(["curl", *args, srv.url("/batch")], capture_output=True, timeout=30)
    body, status = p.stdout.decode().rsplit("\n", 1)
    assert (p.returncode, status, json.loads(body)) == (0, "200", {"accepted": 50})
    assert_one_batch(stored(srv, run), sent)


NODE_FETCH = """
const [url, origin, body] = process.argv.slice(1);
const r = await fetch(url, {method: "POST", body, headers: {
  "Content-Type": "application/json", "Origin": origin}});
console.log(JSON.stringify({status: r.status, body: await r.json(),
  allow: r.headers.get("access-control-allow-origin")}));
"""


def test_node_fetch_with_an_origin(srv: BeaconServer) -> None:
    run = secrets.token_hex(4)
    sent = events(run, 20)
    p = subprocess.run(
        [
            "node",
            "--input-type=module",
            "-e",
            NODE_FETCH,
            srv.url("/batch"),
            ORIGIN,
            json.dumps(sent),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got == {"status": 200, "body": {"accepted": 20}, "allow": ORIGIN}
    assert_one_batch(stored(srv, run), sent)


def test_preflight_cors_and_methods(srv: BeaconServer) -> None:
    pre = requests.options(
        srv.url("/batch"),
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    # A refusal to an allowed origin carries CORS too, so the page can read it.
    r = requests.post(srv.url("/batch"), json=[1], headers={"Origin": ORIGIN}, timeout=10)
    assert (r.status_code, r.headers["Access-Control-Allow-Origin"]) == (400, ORIGIN)
    r = requests.get(srv.url("/batch"), timeout=10)
    assert (r.status_code, r.headers["Allow"]) == (405, "POST, OPTIONS")
    assert r.json() == {"error": "method_not_allowed"}
    r = requests.post(
        srv.url("/batch"),
        data=b"ev=view",
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, r.json()) == (415, {"error": "unsupported_media_type"})


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[BeaconServer]:
    """A server whose file backend cannot write (its flavor's directory is a regular
    file), with a 4 KiB spool high-water mark; `heal()` lets it write again."""
    config = {
        "backends": {"file": {"flush_interval_ms": 20, "spool_high_water_bytes": 4096}},
        "flavors": [{"name": "default", "required_params": ["ev"]}],
    }
    s = BeaconServer(tmp_path, config)
    s.data_dir.mkdir(parents=True)
    (s.data_dir / "default").write_text("not a directory")
    with s:
        yield s


def spool_bytes(srv: BeaconServer) -> int:
    n: int = stats(srv.admin_port)["backends"]["file"]["spool_bytes"]
    return n


def test_a_spool_over_its_mark_refuses_batches_never_pixels(
    stalled: BeaconServer, tmp_path: Path
) -> None:
    srv, run = stalled, secrets.token_hex(4)
    # Pixels and sendBeacon POSTs fill the spool past the mark, each answered as always.
    n = 0
    while spool_bytes(srv) <= 4096:
        for _ in range(20):
            assert (
                requests.get(srv.url(f"/track?ev=px&run={run}&n={n}"), timeout=10).status_code
                == 200
            )
            post = requests.post(srv.url("/track"), data=f"ev=sb&run={run}&n={n}", timeout=10)
            assert post.status_code == 204
            n += 1
    before = counters(srv)
    r = requests.post(srv.url("/batch"), json=events(run, 5), timeout=10)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert r.json() == {"error": "backpressure", "retry_after_s": 5}
    # Refused from the headers, before the body is sent (curl waits for 100 Continue).
    body = tmp_path / "batch.json"
    body.write_text(json.dumps(events(run, 50)))
    opts = ("-H", "Expect: 100-continue", "-H", "Content-Type: application/json")
    early = curl(transfer(srv.url("/batch"), opts=(*opts, "--data-binary", f"@{body}"))).check()
    assert (early.codes, early.uploaded) == (["503"], [0])
    # Pixels still taken meanwhile.
    assert requests.get(srv.url(f"/track?ev=px&run={run}&n={n}"), timeout=10).status_code == 200
    got = moved(before, counters(srv))
    assert (got["batch_backpressure"], got["batch_requests"], got["accepted"]) == (2, 2, 1)
    # Once the disk takes writes again, the spool drains and batches are taken again.
    (srv.data_dir / "default").unlink()
    wait_for(lambda: spool_bytes(srv) <= 4096, "the spool drained below its mark", 60)
    sent = events(run, 5)
    r = requests.post(srv.url("/batch"), json=sent, timeout=10)
    assert (r.status_code, r.json()) == (200, {"accepted": 5})
    lines = stored(srv, run)
    pixels = [(e["params"]["ev"], e["params"]["n"]) for e in lines if e["params"]["ev"] != "view"]
    want = [("px", str(i)) for i in range(n + 1)] + [("sb", str(i)) for i in range(n)]
    assert sorted(pixels) == sorted(want)  # every pixel and beacon, once
    assert [e["params"] for e in lines if e["params"]["ev"] == "view"] == sent


def test_metrics_keep_batch_events_out_of_requests(srv: BeaconServer) -> None:
    run = secrets.token_hex(4)
    assert requests.post(srv.url("/batch"), json=events(run, 30), timeout=10).status_code == 200
    text = requests.get(f"http://127.0.0.1:{srv.admin_port}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counts = {
        s.labels["counter"]: s.value
        for s in families["beacon_flavor_counts"].samples
        if s.labels["flavor"] == "default" and s.name.endswith("_total")
    }
    assert counts["batch_events"] >= 30 and counts["batch_requests"] >= 1
    outcomes = {s.labels["outcome"] for s in families["beacon_requests"].samples}
    assert "accepted" in outcomes and not outcomes & {"batch_events", "batch_requests"}
    schema = requests.get(f"http://127.0.0.1:{srv.admin_port}/stats/schema", timeout=10).json()
    assert "batch_events" in schema["flavor_counters"]


def test_the_kafka_spools_mark_counts_too(tmp_path: Path) -> None:
    """Kafka unreachable: its failed deliveries fill its spool past its mark, and batches
    get 503 while the file backend (no mark) and the pixels go on."""
    config = {
        "backends": {
            "file": {"flush_interval_ms": 20},
            "kafka": {
                "enabled": True,
                "bootstrap_servers": f"127.0.0.1:{free_port()}",  # nothing listens
                "producer": {"message.timeout.ms": 300},
                "spool_high_water_bytes": 2048,
            },
        },
    }
    with BeaconServer(tmp_path, config) as srv:
        n = 0
        while kafka_spool_bytes(srv) <= 2048:
            for _ in range(20):
                assert requests.get(srv.url(f"/track?ev=px&n={n}"), timeout=10).status_code == 200
                n += 1
            time.sleep(0.1)
        r = requests.post(srv.url("/batch"), json=[{"ev": "view"}], timeout=10)
        assert (r.status_code, r.headers["Retry-After"]) == (503, "5")
        wait_for(lambda: len(srv.lines()) == n, "the file backend took every pixel")


def kafka_spool_bytes(srv: BeaconServer) -> int:
    n: int = stats(srv.admin_port)["backends"]["kafka"]["spool_bytes"]
    return n
