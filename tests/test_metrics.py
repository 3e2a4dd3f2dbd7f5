"""`/metrics` and `/healthz` without a server process: one `/stats` snapshot (from a real
in-process Ingest with both backends' stats) rendered by prometheus_client and read back
with its parser; the health verdicts on crafted backend figures with a fake clock."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from beacon._beacon import Ingest, backend_flavor_stats, backend_stats
from beacon.admin import metrics, stats
from beacon.config import parse_config
from beacon.gcstats import GcStats
from beacon.health import FAILING_WINDOW_S, HealthTracker


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[dict[str, Any], GcStats]:
    """A `/stats` document of a server that took 3 requests (one refused) on two flavors,
    with the file and Kafka backends (no feeder: the Kafka events wait in its queue)."""
    cfg = parse_config(
        {
            "data_dir": str(tmp_path / "data"),
            "default_flavor": None,
            "flavors": [{"name": "a", "hosts": ["a.test"]}, {"name": "b", "hosts": ["b.test"]}],
            "backends": {"kafka": {"enabled": True, "bootstrap_servers": "127.0.0.1:9"}},
        }
    )
    ingest = Ingest(cfg)
    ingest.start()
    assert ingest.handle(b"/track?x=1", b"a.test") == 200
    assert ingest.handle(b"/track?x=2", b"b.test") == 200
    assert ingest.handle(b"/track?x=3", b"nobody.test") == 400
    gc_stats = GcStats()
    gc_stats._callback("start", {})
    gc_stats._callback("stop", {"generation": 0})
    server: Any = SimpleNamespace(
        ingest=ingest,
        refusals=Counter({"bad_http": 2}),
        started_at=time.time() - 5,
        draining=False,
        gc_stats=gc_stats,
        connections=set(),
        connections_total=7,
        config_sha256="ab" * 32,
        config_loaded_at=time.time(),
        config_reloads=Counter({"reloaded": 2, "reload_failed": 1}),
    )
    doc = stats.collect(server)
    ingest.shutdown()
    return doc, gc_stats


def families(doc: dict[str, Any], gc_stats: GcStats) -> dict[str, Any]:
    text = metrics.render(doc, gc_stats.histogram()).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_backend_figure_is_one_family_with_the_schemas_kind_help_and_value(
    snapshot: tuple[dict[str, Any], GcStats],
) -> None:
    doc, gc_stats = snapshot
    fams = families(doc, gc_stats)
    backends = doc["backends"]
    assert set(backends) == {"file", "kafka"}
    seen = set()
    for key, metric, kind, help_, only in backend_stats():
        fam = fams[metric]
        assert (fam.type, fam.documentation) == (kind, help_)
        values = {
            s.labels["backend"]: s.value for s in fam.samples if s.name != metric + "_created"
        }
        expected = {b: float(v[key]) for b, v in backends.items() if key in v}
        assert values == expected, key
        assert set(values) == ({only} if only else {"file", "kafka"})
        seen |= {(b, key) for b in values}
    # ... and nothing in /stats lacks a family (the flavors have their own, below).
    assert seen == {(b, k) for b, v in backends.items() for k in v if k != "flavors"}
    kafka = backends["kafka"]
    # The two events and the refused request's bad row (README "Bad rows").
    assert kafka["accepted"] == kafka["buffered"] == 3 and kafka["up"] is True


def test_every_per_flavor_figure_is_one_family_labelled_by_backend_and_flavor(
    snapshot: tuple[dict[str, Any], GcStats],
) -> None:
    doc, gc_stats = snapshot
    fams = families(doc, gc_stats)
    backends = doc["backends"]
    seen = set()
    for key, metric, kind, help_, only in backend_flavor_stats():
        fam = fams[metric]
        assert (fam.type, fam.documentation) == (kind, help_)
        values = {
            (s.labels["backend"], s.labels["flavor"]): s.value
            for s in fam.samples
            if s.name != metric + "_created"
        }
        expected = {
            (b, f): float(row[key])
            for b, v in backends.items()
            for f, row in v["flavors"].items()
            if key in row
        }
        assert values == expected, key
        assert {b for b, _ in values} == ({only} if only else {"file", "kafka"})
        seen |= {(b, f, key) for b, f in values}
    rows = [(b, f, row) for b, v in backends.items() for f, row in v["flavors"].items()]
    assert seen == {(b, f, k) for b, f, row in rows for k in row}
    # One event of each flavor accepted by each backend (the Kafka ones wait in its queue),
    # and the unknown Host's request kept as a bad row (its own row, `_bad`).
    for b in ("file", "kafka"):
        accepted = {f: row["accepted"] for f, row in backends[b]["flavors"].items()}
        assert accepted == {"a": 1, "b": 1, "_bad": 1}
    assert backends["kafka"]["flavors"]["b"]["delivered"] == 0


def test_requests_connections_and_gc_families(snapshot: tuple[dict[str, Any], GcStats]) -> None:
    doc, gc_stats = snapshot
    fams = families(doc, gc_stats)
    requests = {
        (s.labels["flavor"], s.labels["outcome"]): s.value for s in fams["beacon_requests"].samples
    }
    assert requests[("a", "accepted")] == requests[("b", "accepted")] == 1
    assert requests[("", "unknown_host")] == 1 and requests[("", "bad_http")] == 2
    assert fams["beacon_requests"].type == "counter"
    assert fams["beacon_connections"].samples[0].value == 7
    hist = fams["beacon_gc_pause_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 1
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)  # cumulative
    count = [s.value for s in hist.samples if s.name.endswith("_count")]
    assert count == [1.0]
    assert fams["beacon_info"].samples[0].labels["version"] == doc["version"]
    assert doc["config"]["sha256"] == "ab" * 32
    assert fams["beacon_config_reloaded"].samples[0].value == 2
    assert fams["beacon_config_reload_failed"].type == "counter"
    assert fams["beacon_config_reload_failed"].samples[0].value == 1


def backend(dropped: int = 0, up: bool = True, spool_age_s: float = 0.0) -> dict[str, Any]:
    return {"dropped": dropped, "up": up, "spool_age_s": spool_age_s}


def test_health_is_failing_while_dropped_moves_and_degraded_while_down() -> None:
    now = [1000.0]
    health = HealthTracker(clock=lambda: now[0])
    assert health.check({"backends": {"file": backend(), "kafka": backend()}}) == ([], [])
    down = {"file": backend(), "kafka": backend(up=False)}
    assert health.check({"backends": down}) == ([], ["kafka down, spooling"])
    dropping = {"file": backend(dropped=3, up=False), "kafka": backend()}
    assert health.check({"backends": dropping}) == (["file (dropping events)"], [])
    now[0] += FAILING_WINDOW_S - 1
    assert health.check({"backends": dropping}) == (["file (dropping events)"], [])
    now[0] += 2  # dropped has not moved for the whole window: down, no longer losing
    assert health.check({"backends": dropping}) == ([], ["file down, spooling"])
    dropping["file"]["dropped"] = 4
    assert health.check({"backends": dropping})[0] == ["file (dropping events)"]


def test_health_is_degraded_while_a_spool_is_older_than_its_backends_mark() -> None:
    health = HealthTracker({"file": 300, "kafka": None})
    old = {"file": backend(spool_age_s=301.0), "kafka": backend(spool_age_s=10_000.0)}
    assert health.check({"backends": old}) == ([], ["file spool older than 300s"])
    old["file"]["spool_age_s"] = 300.0  # at the mark: not past it
    assert health.check({"backends": old}) == ([], [])
