"""`/metrics`: the `/stats` figures in Prometheus text exposition format 0.0.4."""

from __future__ import annotations

from typing import Any

from beacon._beacon import __git_sha__
from beacon.gcstats import GcStats


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


class _Doc:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, **labels: str) -> None:
        self.lines.append(f"{name}{_labels(**labels) if labels else ''} {value}")


def render(stats: dict[str, Any], gc_stats: GcStats) -> str:
    d = _Doc()
    d.family("beacon_info", "gauge", "Build information.")
    d.sample("beacon_info", 1, version=stats["version"], git_sha=__git_sha__)
    d.family("beacon_uptime_seconds", "gauge", "Seconds since the server started.")
    d.sample("beacon_uptime_seconds", stats["uptime_s"])

    d.family("beacon_requests_total", "counter", "Requests by flavor and outcome.")
    for flavor, row in stats["flavors"].items():
        for outcome, n in row.items():
            d.sample("beacon_requests_total", n, flavor=flavor, outcome=outcome)
    per_flavor = {o for row in stats["flavors"].values() for o in row}
    for outcome, n in stats["requests"].items():
        flavor_sum = sum(row.get(outcome, 0) for row in stats["flavors"].values())
        rest = n - flavor_sum if outcome in per_flavor else n
        d.sample("beacon_requests_total", rest, flavor="", outcome=outcome)

    d.family("beacon_backend_events_total", "counter", "Events by backend and state.")
    for backend, b in stats["backends"].items():
        for state, n in b.items():
            if state not in ("buffered", "spool_pending", "failing", "up", "in_flight", "bytes"):
                d.sample("beacon_backend_events_total", n, backend=backend, state=state)
    d.family("beacon_backend_buffered_events", "gauge", "Events waiting in a backend's queue.")
    for backend, b in stats["backends"].items():
        d.sample("beacon_backend_buffered_events", b["buffered"], backend=backend)
    d.family("beacon_backend_spool_pending_events", "gauge", "Events waiting in a spool.")
    for backend, b in stats["backends"].items():
        d.sample("beacon_backend_spool_pending_events", b["spool_pending"], backend=backend)
    d.family("beacon_backend_up", "gauge", "1 when the backend is taking events.")
    for backend, b in stats["backends"].items():
        up = not b["failing"] if "failing" in b else b.get("up", True)
        d.sample("beacon_backend_up", int(up), backend=backend)

    gc = stats["gc"]
    d.family("beacon_gc_collections_total", "counter", "GC collections by generation.")
    for gen, n in enumerate(gc["collections"]):
        d.sample("beacon_gc_collections_total", n, generation=str(gen))
    d.family("beacon_gc_pause_seconds", "histogram", "GC pause durations.")
    for bound, n in gc_stats.histogram():
        d.sample("beacon_gc_pause_seconds_bucket", n, le=repr(bound))
    d.sample("beacon_gc_pause_seconds_bucket", gc["pauses"], le="+Inf")
    d.sample("beacon_gc_pause_seconds_sum", gc["pause_total_us"] / 1e6)
    d.sample("beacon_gc_pause_seconds_count", gc["pauses"])

    d.family("beacon_memory_rss_bytes", "gauge", "Resident set size.")
    d.sample("beacon_memory_rss_bytes", stats["memory"]["rss_bytes"])
    d.family("beacon_connections_open", "gauge", "Open client connections.")
    d.sample("beacon_connections_open", stats["connections"]["open"])
    d.family("beacon_connections_total", "counter", "Client connections accepted.")
    d.sample("beacon_connections_total", stats["connections"]["total"])
    return "\n".join(d.lines) + "\n"
