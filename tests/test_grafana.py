"""The Grafana dashboard (packaging/grafana/beacon.json) and the Prometheus alert rules
(packaging/prometheus/beacon-alerts.yml) read only metrics that beacon's /metrics exposes,
and promtool accepts them: `check rules` on the alerts, `test rules` on their unit tests, and
every dashboard query compiled as a recording rule.

The server here has Kafka on, pointed at a port where no broker listens: /metrics builds the
backend families from the stats schema and every figure of an enabled backend is in /stats
from the start, so this exposes the same families as a server with a live broker (checked
below: every schema row is there, for both backends)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from beacon._beacon import backend_stats
from support.admin import admin_get
from support.beacon_server import REPO, BeaconServer, free_port
from support.http_client import get
from support.promql import metric_names

DASHBOARD = REPO / "packaging" / "grafana" / "beacon.json"
ALERTS = REPO / "packaging" / "prometheus" / "beacon-alerts.yml"
ALERT_TESTS = REPO / "packaging" / "prometheus" / "beacon-alerts.test.yml"
#: Series Prometheus makes itself for every scrape, not in /metrics.
SCRAPE_SERIES = {"up"}


def promtool() -> str:
    path = shutil.which("promtool") or str(REPO / "target" / "tools" / "promtool")
    assert Path(path).exists(), "promtool is missing: run scripts/system-deps"
    return path


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name a live server's /metrics has, Kafka on."""
    config = {
        "default_flavor": None,
        "flavors": [{"name": "shop", "hosts": ["shop.test"]}],
        "backends": {"kafka": {"enabled": True, "bootstrap_servers": f"127.0.0.1:{free_port()}"}},
    }
    with BeaconServer(tmp_path_factory.mktemp("grafana"), config) as srv:
        assert get(srv.port, "/track?ev=view", host="shop.test").status == 200
        status, text = admin_get(srv.admin_port, "/metrics")
        assert status == 200, text
    names = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    for _key, metric, kind, _help, only in backend_stats():
        sample = f"{metric}_total" if kind == "counter" else metric
        assert sample in names, f"{sample} ({only or 'every backend'}) not in /metrics"
    yield names


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL or label_values query) for every panel target and query variable."""
    doc = dashboard()
    out = [
        (f"panel {p['title']!r} {t['refId']}", t["expr"])
        for p in doc["panels"]
        for t in p.get("targets", [])
    ]
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((f"variable {var['name']}", query))
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_dashboard_query_names_only_exposed_metrics(exposed: set[str]) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    for where, expr in queries:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= exposed, f"{where}: {sorted(names - exposed)} not in /metrics"


def test_every_alert_names_only_exposed_metrics(exposed: set[str]) -> None:
    rules = alert_rules()
    alerts = {rule["alert"] for rule in rules}
    # What the issue asks for: Kafka down, spool growing, events dropped, health failing.
    wanted = {"BeaconKafkaDown", "BeaconSpoolGrowing", "BeaconEventsDropped"}
    assert wanted | {"BeaconHealthFailing", "BeaconDown"} <= alerts
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule
        assert names <= exposed | SCRAPE_SERIES, (rule["alert"], sorted(names - exposed))
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    tool = promtool()
    check = subprocess.run(
        [tool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in check.stdout
    tests = subprocess.run(
        [tool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_promtool_accepts_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, as a recording rule."""
    rules = []
    for i, (_where, expr) in enumerate(dashboard_queries()):
        if expr.startswith("label_values("):
            continue  # Grafana's own query syntax, not PromQL
        promql = expr.replace("$__rate_interval", "5m")
        assert "$" not in re.sub(r'"[^"]*"', "", promql), expr  # variables only in matchers
        rules.append({"record": f"beacon:dashboard_query_{i}", "expr": promql})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_dashboard_has_a_datasource_variable_and_the_pages_panels() -> None:
    doc = dashboard()
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    ds = variables["datasource"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    # The live page's panels (python/beacon/admin/dashboard/panels.js), by what they read.
    exprs = " ".join(expr for _, expr in dashboard_queries())
    for metric in [
        "beacon_requests_total",  # by outcome, per flavor
        "beacon_backend_accepted_events_total",  # into each backend
        "beacon_backend_written_events_total",  # out of it
        "beacon_backend_delivered_events_total",
        "beacon_backend_buffered_events",  # queue and spool depth
        "beacon_backend_spool_pending_events",
        "beacon_backend_spool_age_seconds",
        "beacon_backend_up",
        "beacon_gc_pause_seconds_bucket",  # p99
        "beacon_gc_pause_max_seconds",
        "beacon_connections_open",
        "beacon_memory_rss_bytes",
    ]:
        assert metric in exprs, metric
