"""Loss accounting (rust/src/sinks/stats.rs): for a backend's `/stats` object, what came in
(found in the spool at start, accepted) less every place an event can be now. 0 when every
event is accounted for, at a quiet moment (no event between two places)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def unaccounted(b: dict[str, Any]) -> int:
    done = b["written"] if "written" in b else b["delivered"]
    came = b["recovered"] + b["accepted"]
    are = done + b.get("rejected", 0) + b["dropped"]
    are += b["buffered"] + b["in_flight"] + b["spool_pending"]
    return int(came - are)


def wait_accounted(
    backends: Callable[[], dict[str, dict[str, Any]]], timeout_s: float = 30
) -> dict[str, int]:
    """Reads `backends()` (name -> `/stats` object) until every backend is accounted for,
    or the timeout; returns what is unaccounted per backend (the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = {name: unaccounted(b) for name, b in backends().items()}
        if not any(left.values()) or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)
