"""The `/stats` document: every counter the server keeps, in one JSON-able dict."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from beacon import __version__

if TYPE_CHECKING:
    from beacon.server import Server

# Refusals made in Python (before or around the Rust call), folded into `requests`.
_PY_REASON_TO_OUTCOME = {"too_large": "too_large", "errors": "errors"}
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def collect(server: Server) -> dict[str, Any]:
    native = server.ingest.stats()
    flavors: dict[str, dict[str, int]] = native.get("flavors", {})
    requests: dict[str, int] = {"errors": 0}
    for row in [*flavors.values(), native.get("no_flavor", {})]:
        for outcome, n in row.items():
            requests[outcome] = requests.get(outcome, 0) + n
    for reason, n in server.refusals.items():
        key = _PY_REASON_TO_OUTCOME.get(reason, reason)
        requests[key] = requests.get(key, 0) + n
    return {
        "uptime_s": round(time.time() - server.started_at, 3),
        "version": __version__,
        "draining": server.draining,
        "requests": requests,
        "flavors": flavors,
        # Each backend's figures, keyed as the stats schema says (rust/src/sinks/stats.rs).
        "backends": native.get("backends", {}),
        "gc": server.gc_stats.snapshot(),
        "memory": {"rss_bytes": rss_bytes()},
        "connections": {
            "open": len(server.connections),
            "total": server.connections_total,
            "refused": server.refusals.get("connections", 0),
        },
    }


# A backend is failing, for /healthz, while it loses events: its `dropped` counter moved
# within this window. A backend that is down but spooling is degraded, not failing: every
# instance shares the same Kafka and disk layout, so answering 503 for that would take all
# of them out of the load balancer at once while each could still accept and spool.
FAILING_WINDOW_S = 60.0


class HealthTracker:
    """Remembers when each backend's `dropped` counter last moved."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, tuple[int, float]] = {}

    def check(self, stats: dict[str, Any]) -> tuple[list[str], list[str]]:
        """(failing, degraded) backend descriptions for the current stats."""
        now = self._clock()
        failing, degraded = [], []
        for name, b in stats["backends"].items():
            dropped = int(b["dropped"])
            last, changed = self._seen.get(name, (0, 0.0))
            if dropped != last:
                self._seen[name] = (dropped, now)
                changed = now
            if dropped and now - changed < FAILING_WINDOW_S:
                failing.append(f"{name} (dropping events)")
            elif not b["up"]:
                degraded.append(f"{name} down, spooling")
        return failing, degraded
