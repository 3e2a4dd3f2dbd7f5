"""`/metrics`: the `/stats` snapshot as Prometheus families, written by prometheus_client
(a custom collector over one snapshot; `generate_latest` writes the text format 0.0.4).
The backend families come from the backend stats schema (rust/src/sinks/stats.rs, through
`_beacon.backend_stats()`); every other family is declared here, once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry

from beacon._beacon import EXTRA_COUNTERS, __git_sha__, backend_flavor_stats, backend_stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (key, metric, kind, help, only) per backend figure.
BACKEND_STATS = backend_stats()
#: The same per flavor of each backend (`backends.<name>.flavors.<flavor>` in `/stats`).
BACKEND_FLAVOR_STATS = backend_flavor_stats()


class SnapshotCollector:
    """Yields the families of one `/stats` snapshot; `gc_buckets` are the GC pause
    histogram's cumulative (upper bound in seconds, count) pairs; `healthy` is whether
    `/healthz` answers 200 (None: not known, no family)."""

    def __init__(
        self,
        stats: dict[str, Any],
        gc_buckets: list[tuple[float, int]],
        healthy: bool | None = None,
    ) -> None:
        self.stats = stats
        self.gc_buckets = gc_buckets
        self.healthy = healthy

    def collect(self) -> Iterator[Metric]:
        yield from self._server()
        yield self._requests()
        yield self._flavor_counts()
        yield from self._backends()
        yield from self._backend_flavors()
        yield from self._gc()

    def _server(self) -> Iterator[Metric]:
        s = self.stats
        info = GaugeMetricFamily("beacon_info", "Build information.", labels=["version", "git_sha"])
        info.add_metric([s["version"], __git_sha__], 1)
        yield info
        yield GaugeMetricFamily(
            "beacon_uptime_seconds", "Seconds since the server started.", value=s["uptime_s"]
        )
        yield GaugeMetricFamily(
            "beacon_memory_rss_bytes", "Resident set size.", value=s["memory"]["rss_bytes"]
        )
        conns = s["connections"]
        yield GaugeMetricFamily(
            "beacon_connections_open", "Open client connections.", value=conns["open"]
        )
        yield CounterMetricFamily(
            "beacon_connections", "Client connections accepted.", value=conns["total"]
        )
        config = s["config"]
        yield CounterMetricFamily(
            "beacon_config_reloaded",
            "Config reloads (SIGHUP) put in force.",
            value=config["reloaded"],
        )
        yield CounterMetricFamily(
            "beacon_config_reload_failed",
            "Config reloads (SIGHUP) refused: the file had problems, nothing changed.",
            value=config["reload_failed"],
        )
        if self.healthy is not None:
            # For alerts: /healthz's verdict, so Prometheus need not probe it as well.
            yield GaugeMetricFamily(
                "beacon_healthy",
                "1 while /healthz answers 200 (ok or degraded); 0 while it answers 503 "
                "(draining, or a backend losing events).",
                value=int(self.healthy),
            )

    def _requests(self) -> Metric:
        """Per flavor and outcome; what no flavor counts (refused before a flavor was
        known, or in Python) under flavor=""."""
        s = self.stats
        family = CounterMetricFamily(
            "beacon_requests", "Requests by flavor and outcome.", labels=["flavor", "outcome"]
        )
        flavors: dict[str, dict[str, int]] = s["flavors"]
        for flavor, row in flavors.items():
            for outcome, n in row.items():
                if outcome not in EXTRA_COUNTERS:
                    family.add_metric([flavor, outcome], n)
        for outcome, n in s["requests"].items():
            if outcome not in EXTRA_COUNTERS:
                counted = sum(row.get(outcome, 0) for row in flavors.values())
                family.add_metric(["", outcome], n - counted)
        return family

    def _flavor_counts(self) -> Metric:
        """Per-flavor counts that are not requests (a batch's events would swamp them)."""
        family = CounterMetricFamily(
            "beacon_flavor_counts",
            "Per flavor, counts beside the request outcomes: batch_requests (requests on a "
            "batch path), batch_events (events stored from batches), batch_duplicates, "
            "multipart_file_skipped, bad_rows_kept, bad_rows_dropped.",
            labels=["flavor", "counter"],
        )
        flavors: dict[str, dict[str, int]] = self.stats["flavors"]
        for flavor, row in flavors.items():
            for counter in EXTRA_COUNTERS:
                family.add_metric([flavor, counter], row.get(counter, 0))
        # What no flavor counts (a bad row of an unknown Host) under flavor="", as above.
        for counter in EXTRA_COUNTERS:
            counted = sum(row.get(counter, 0) for row in flavors.values())
            family.add_metric(["", counter], self.stats["requests"].get(counter, 0) - counted)
        return family

    def _backends(self) -> Iterator[Metric]:
        backends: dict[str, dict[str, Any]] = self.stats["backends"]
        for key, metric, kind, help_, _only in BACKEND_STATS:
            family: Metric
            if kind == "counter":
                family = CounterMetricFamily(metric, help_, labels=["backend"])
            else:
                family = GaugeMetricFamily(metric, help_, labels=["backend"])
            for backend, figures in backends.items():
                if key in figures:
                    family.add_metric([backend], float(figures[key]))
            if family.samples:
                yield family

    def _backend_flavors(self) -> Iterator[Metric]:
        backends: dict[str, dict[str, Any]] = self.stats["backends"]
        for key, metric, kind, help_, _only in BACKEND_FLAVOR_STATS:
            family: Metric
            labels = ["backend", "flavor"]
            if kind == "counter":
                family = CounterMetricFamily(metric, help_, labels=labels)
            else:
                family = GaugeMetricFamily(metric, help_, labels=labels)
            for backend, figures in backends.items():
                for flavor, row in figures.get("flavors", {}).items():
                    if key in row:
                        family.add_metric([backend, flavor], float(row[key]))
            if family.samples:
                yield family

    def _gc(self) -> Iterator[Metric]:
        gc = self.stats["gc"]
        collections = CounterMetricFamily(
            "beacon_gc_collections", "GC collections by generation.", labels=["generation"]
        )
        for gen, n in enumerate(gc["collections"]):
            collections.add_metric([str(gen)], n)
        yield collections
        buckets = [(repr(bound), n) for bound, n in self.gc_buckets]
        yield HistogramMetricFamily(
            "beacon_gc_pause_seconds",
            "GC pause durations.",
            buckets=[*buckets, ("+Inf", gc["pauses"])],
            sum_value=gc["pause_total_us"] / 1e6,
        )
        # The histogram's buckets cannot say how long the longest pause was.
        yield GaugeMetricFamily(
            "beacon_gc_pause_max_seconds",
            "Longest GC pause since start.",
            value=gc["pause_max_us"] / 1e6,
        )


def render(
    stats: dict[str, Any], gc_buckets: list[tuple[float, int]], healthy: bool | None = None
) -> bytes:
    """The Prometheus text of one `/stats` snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(stats, gc_buckets, healthy))
    return generate_latest(registry)
