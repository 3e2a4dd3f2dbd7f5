"""When a backend counts as failing or degraded, for `/healthz` (and the exit status of a
health check behind a load balancer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

# A backend is failing, for /healthz, while it loses events: its `dropped` counter moved
# within this window. A backend that is down but spooling is degraded, not failing: every
# instance shares the same Kafka and disk layout, so answering 503 for that would take all
# of them out of the load balancer at once while each could still accept and spool.
FAILING_WINDOW_S = 60.0


class HealthTracker:
    """Remembers when each backend's `dropped` counter last moved; `max_spool_age_s` holds
    each backend's `spool_max_age_s` (none: its spool's age alone never degrades)."""

    def __init__(
        self,
        max_spool_age_s: Mapping[str, int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.max_spool_age_s = dict(max_spool_age_s or {})
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
            if (limit := self.max_spool_age_s.get(name)) and b["spool_age_s"] > limit:
                degraded.append(f"{name} spool older than {limit}s")
        return failing, degraded
