"""Requests for `support.load` in fixed per-host proportions, each one's wall-clock time
recorded as it is handed out, so a test can count what was sent in any window."""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from collections.abc import Iterator


class CountedRequests:
    """An endless `(host, target)` iterator: with `rates = {"a.test": 200, "b.test": 100}`
    it hands out a, a, b, a, a, b, ... (the rates divided by their greatest common divisor);
    paced at `sum(rates)` requests/s, each host gets its rate."""

    def __init__(self, rates: dict[str, int]) -> None:
        step = math.gcd(*rates.values())
        self.pattern = [host for host, r in rates.items() for _ in range(r // step)]
        self.total_rate = sum(rates.values())
        self.sent: dict[str, list[float]] = {host: [] for host in rates}
        self._lock = threading.Lock()
        self._n = itertools.count()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for host in itertools.cycle(self.pattern):
            with self._lock:
                self.sent[host].append(time.time())
                n = next(self._n)
            yield host, f"/track?ev=view&n={n}"

    def rate(self, host: str, since: float, until: float) -> float:
        """Requests/s handed out for `host` in (since, until] (wall clock, seconds)."""
        with self._lock:
            times = list(self.sent[host])
        n = bisect.bisect_right(times, until) - bisect.bisect_right(times, since)
        return n / (until - since)
