"""GC pause metrics from `gc.callbacks`: no cost on the request path, two clock reads per
collection."""

from __future__ import annotations

import bisect
import gc
import time
from collections import deque
from typing import Any

# Prometheus histogram bucket upper bounds, seconds.
BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1)
WINDOW_S = 300.0


class GcStats:
    def __init__(self, keep: int = 10_000) -> None:
        self.collections = [0, 0, 0]
        self.total_ns = 0
        self.max_ns = 0
        self.count = 0
        self.bucket_counts = [0] * len(BUCKETS)
        # (monotonic end time, pause ns) of recent pauses, for p99 and the 5-minute sum.
        self.recent: deque[tuple[float, int]] = deque(maxlen=keep)
        self._start = 0

    def install(self) -> None:
        gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
            return
        pause = time.perf_counter_ns() - self._start
        self.collections[info["generation"]] += 1
        self.count += 1
        self.total_ns += pause
        self.max_ns = max(self.max_ns, pause)
        i = bisect.bisect_left(BUCKETS, pause / 1e9)
        if i < len(BUCKETS):
            self.bucket_counts[i] += 1
        self.recent.append((time.monotonic(), pause))

    def snapshot(self) -> dict[str, Any]:
        pauses = sorted(p for _, p in self.recent)
        p99 = pauses[min(len(pauses) - 1, int(len(pauses) * 0.99))] if pauses else 0
        since = time.monotonic() - WINDOW_S
        last_5m = sum(p for t, p in self.recent if t >= since)
        return {
            "collections": list(self.collections),
            "pauses": self.count,
            "pause_total_us": self.total_ns / 1000,
            "pause_avg_us": self.total_ns / self.count / 1000 if self.count else 0.0,
            "pause_max_us": self.max_ns / 1000,
            "pause_p99_us": p99 / 1000,
            "pause_last_5m_us": last_5m / 1000,
            "frozen_objects": gc.get_freeze_count(),
        }

    def histogram(self) -> list[tuple[float, int]]:
        """Cumulative (upper bound, count) pairs for Prometheus."""
        out, running = [], 0
        for bound, n in zip(BUCKETS, self.bucket_counts, strict=True):
            running += n
            out.append((bound, running))
        return out
