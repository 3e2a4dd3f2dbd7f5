"""The admin listener against the real server: counters move exactly as requests are
sent, Prometheus text parses, /info, /healthz, /debug gating, loopback-only binding."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from beacon import __version__
from beacon._beacon import backend_stats
from support.accounting import wait_accounted
from support.admin import admin_get, stats
from support.beacon_server import BeaconServer
from support.http_client import Conn, get
from support.load import BackgroundLoad

CONFIG = {
    "flavors": [
        {"name": "a", "hosts": ["a.example"], "required_params": ["ev"]},
        {
            "name": "b",
            "hosts": ["b.example"],
            "query_format": "rack",
            "dedup_param": "eid",
            "dedup_ttl_s": 60,
        },
    ],
    "default_flavor": None,
}


@pytest.fixture
def srv(tmp_path: Path) -> BeaconServer:
    s = BeaconServer(tmp_path, CONFIG).start()
    yield s
    s.stop()


def test_stats_counters_move_exactly_as_requests_are_sent(srv: BeaconServer) -> None:
    before = stats(srv.admin_port)
    assert before["requests"]["accepted"] == 0
    sends = [
        ("/track?ev=1", "a.example", 200),
        ("/track?ev=2", "a.example", 200),
        ("/track?x=1", "a.example", 400),  # missing ev
        ("/track?a=%zz", "b.example", 400),  # malformed in rack mode
        ("/track?eid=7", "b.example", 200),
        ("/track?eid=7", "b.example", 200),  # duplicate
        ("/nope", "a.example", 404),
        ("/track?ev=1", "c.example", 400),  # unknown host, no default
        ("/track?ev=" + "x" * 9000, "a.example", 414),
    ]
    for target, host, status in sends:
        assert get(srv.port, target, host=host).status == status, target
    with Conn(srv.port) as c:
        c.send(b"BROKEN\r\n\r\n")
        assert c.read_response().status == 400
    s = stats(srv.admin_port)
    r = s["requests"]
    assert r["accepted"] == 3
    assert r["malformed"] == 1
    assert r["missing_param"] == 1
    assert r["duplicate"] == 1
    assert r["not_found"] == 1
    assert r["unknown_host"] == 1
    assert r["too_large"] == 1
    assert r["bad_http"] == 1
    assert r["errors"] == 0
    assert s["flavors"]["a"]["accepted"] == 2 and s["flavors"]["b"]["accepted"] == 1
    assert s["flavors"]["b"]["duplicate"] == 1 and s["flavors"]["b"]["malformed"] == 1
    assert s["connections"]["total"] >= len(sends) + 1
    assert s["memory"]["rss_bytes"] > 10_000_000
    assert s["version"] == __version__ and s["uptime_s"] > 0
    assert set(s["gc"]) >= {
        "collections",
        "pause_total_us",
        "pause_avg_us",
        "pause_max_us",
        "pause_p99_us",
        "pause_last_5m_us",
    }
    f = s["backends"]["file"]
    assert set(f) >= {"buffered", "written", "spooled", "replayed", "dropped", "errors"}
    deadline = time.monotonic() + 10
    while stats(srv.admin_port)["backends"]["file"]["written"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_metrics_parse_with_the_prometheus_parser(srv: BeaconServer) -> None:
    for _ in range(3):
        get(srv.port, "/track?ev=1", host="a.example")
    get(srv.port, "/nope", host="a.example")
    status, text = admin_get(srv.admin_port, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["beacon_requests"]
    assert requests.type == "counter"
    accepted = [
        s.value for s in requests.samples if s.labels == {"flavor": "a", "outcome": "accepted"}
    ]
    assert accepted == [3.0]
    not_found = [s.value for s in requests.samples if s.labels["outcome"] == "not_found"]
    assert sum(not_found) == 1.0
    gc_hist = families["beacon_gc_pause_seconds"]
    assert gc_hist.type == "histogram"
    assert any(
        s.name == "beacon_gc_pause_seconds_bucket" and s.labels["le"] == "+Inf"
        for s in gc_hist.samples
    )
    assert families["beacon_backend_written_events"].type == "counter"
    assert families["beacon_backend_buffered_events"].type == "gauge"
    assert families["beacon_memory_rss_bytes"].samples[0].value > 0


def backend_figures(text: str) -> dict[tuple[str, str], float]:
    """(backend, /stats key) -> value, from /metrics text, through the stats schema."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    out = {}
    for key, metric, _kind, _help, _only in backend_stats():
        if metric not in families:  # only the backends running have samples
            continue
        for s in families[metric].samples:
            if not s.name.endswith("_created"):
                out[(s.labels["backend"], key)] = s.value
    return out


def flat(backends: dict[str, dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Each backend's own figures (its flavors' are checked in tests/test_metrics.py)."""
    return {
        (b, k): float(v)
        for b, figures in backends.items()
        for k, v in figures.items()
        if k != "flavors"
    }


def test_stats_and_metrics_agree_on_every_backend_figure_under_load(srv: BeaconServer) -> None:
    """Under load every counter /metrics shows lies between the /stats read just before
    and the one just after it; once the load stops, the two agree number for number."""
    counters = {key for key, _, kind, _, _ in backend_stats() if kind == "counter"}
    reqs = (("a.example", f"/track?ev=view&n={i}") for i in itertools.count())
    load = BackgroundLoad("127.0.0.1", srv.port, reqs, connections=4, rate=2000).start()
    try:
        for _ in range(10):
            before = flat(stats(srv.admin_port)["backends"])
            status, text = admin_get(srv.admin_port, "/metrics")
            after = flat(stats(srv.admin_port)["backends"])
            scraped = backend_figures(text)
            assert status == 200 and set(scraped) == set(before) == set(after)
            for (backend, key), value in scraped.items():
                if key in counters:
                    assert before[backend, key] <= value <= after[backend, key], key
            time.sleep(0.1)
    finally:
        result = load.stop()
    assert result.statuses == {200: result.sent} and result.sent > 0
    left = wait_accounted(lambda: stats(srv.admin_port)["backends"])
    assert not any(left.values()) and "file/a" in left, left
    deadline = time.monotonic() + 10  # the file buffers reach the disk every second
    while (quiet := flat(stats(srv.admin_port)["backends"]))["file", "in_flight"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert backend_figures(admin_get(srv.admin_port, "/metrics")[1]) == quiet
    assert quiet["file", "written"] == quiet["file", "accepted"] == result.sent


def test_info_has_build_and_time_fields(srv: BeaconServer) -> None:
    status, body = admin_get(srv.admin_port, "/info")
    assert status == 200
    info = json.loads(body)
    assert info["version"] == __version__
    assert len(info["git_sha"]) >= 7
    assert info["build_date"].endswith("Z")
    assert abs(info["server_time"] - time.time()) < 5
    assert info["start_time"] <= info["server_time"]
    assert ":" in info["uptime"]


def test_healthz_is_ok_and_debug_is_off_by_default(srv: BeaconServer) -> None:
    assert admin_get(srv.admin_port, "/healthz") == (200, "ok\n")
    assert admin_get(srv.admin_port, "/debug/stacks")[0] == 404
    assert admin_get(srv.admin_port, "/debug/gc")[0] == 404


def test_public_listener_never_serves_admin_routes(srv: BeaconServer) -> None:
    for path in ("/healthz", "/stats", "/metrics", "/info", "/debug/stacks"):
        assert get(srv.port, path, host="a.example").status == 404


def test_debug_routes_when_enabled(tmp_path: Path) -> None:
    cfg = {"debug": {"enabled": True, "tracemalloc": True}}
    with BeaconServer(tmp_path, cfg) as s:
        status, body = admin_get(s.admin_port, "/debug/stacks")
        assert status == 200 and "beacon-file" in body and "MainThread" in body
        status, body = admin_get(s.admin_port, "/debug/gc")
        doc = json.loads(body)
        assert status == 200 and doc["tracemalloc"] and doc["top_allocations"]


def test_admin_refuses_a_public_address_unless_allowed(tmp_path: Path) -> None:
    from beacon.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"admin_listen: 0\.0\.0\.0 is not a loopback"):
        parse_config({"admin_listen": "0.0.0.0:9090"})
    cfg = parse_config({"admin_listen": "0.0.0.0:9090", "allow_public_admin": True})
    assert cfg.admin_listen.host == "0.0.0.0"


def test_healthz_is_degraded_not_down_while_kafka_is_unreachable(tmp_path: Path) -> None:
    from support.beacon_server import free_port

    dead = f"127.0.0.1:{free_port()}"
    cfg = {"backends": {"kafka": {"enabled": True, "bootstrap_servers": dead}}}
    with BeaconServer(tmp_path, cfg) as s:
        assert get(s.port, "/track?n=1").status == 200
        deadline = time.monotonic() + 20
        while stats(s.admin_port)["backends"]["kafka"]["up"]:
            assert time.monotonic() < deadline, "the feeder never noticed the dead broker"
            time.sleep(0.2)
        assert admin_get(s.admin_port, "/healthz") == (
            200,
            "ok (degraded: kafka down, spooling)\n",
        )


def test_healthz_is_degraded_while_a_spool_is_older_than_its_mark(tmp_path: Path) -> None:
    from support.beacon_server import free_port

    dead = f"127.0.0.1:{free_port()}"
    kafka = {
        "enabled": True,
        "bootstrap_servers": dead,
        "spool_max_age_s": 1,
        # librdkafka gives the event back (to the spool) after this instead of 5 minutes.
        "producer": {"message.timeout.ms": 1000},
    }
    with BeaconServer(tmp_path, {"backends": {"kafka": kafka}}) as s:
        assert get(s.port, "/track?n=1").status == 200
        deadline = time.monotonic() + 30
        while (health := admin_get(s.admin_port, "/healthz")) != (
            200,
            "ok (degraded: kafka down, spooling, kafka spool older than 1s)\n",
        ):
            assert time.monotonic() < deadline, (health, stats(s.admin_port)["backends"])
            time.sleep(0.2)
        assert stats(s.admin_port)["backends"]["kafka"]["spool_age_s"] > 1
        assert admin_get(s.admin_port, "/healthz")[1].count("older than") == 1  # kafka only


def test_healthz_is_503_while_a_backend_drops_events(tmp_path: Path) -> None:
    import subprocess

    data = tmp_path / "data"
    data.mkdir()
    # Files and spool on one tiny filesystem: once it is full, events are dropped.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(data)], check=True)
    try:
        with BeaconServer(tmp_path, {"backends": {"file": {"flush_interval_ms": 50}}}) as s:
            pad = "x" * 2000
            for n in range(300):
                assert get(s.port, f"/track?n={n}&pad={pad}").status == 200
            deadline = time.monotonic() + 20
            while stats(s.admin_port)["backends"]["file"]["dropped"] == 0:
                assert time.monotonic() < deadline, "nothing was ever dropped"
                time.sleep(0.2)
            status, body = admin_get(s.admin_port, "/healthz")
            assert (status, body) == (503, "backend failing: file (dropping events)\n")
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
