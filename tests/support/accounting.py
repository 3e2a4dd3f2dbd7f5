"""Loss accounting (rust/src/sinks/stats.rs, per flavor rust/src/sinks/per_flavor.rs): for a
backend's `/stats` object, what came in (found in the spool at start, accepted) less every
place an event can be now. 0 when every event is accounted for, at a quiet moment (no event
between two places; per flavor: nothing buffered or in flight either)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Per-flavor figures that add up to the backend's own (besides written or delivered).
SUMMED = ("accepted", "rejected", "dropped", "spooled", "spool_pending", "recovered")


def done_key(b: dict[str, Any]) -> str:
    return "written" if "written" in b else "delivered"


def unaccounted(b: dict[str, Any]) -> int:
    came = b["recovered"] + b["accepted"]
    are = b[done_key(b)] + b.get("rejected", 0) + b["dropped"]
    are += b["buffered"] + b["in_flight"] + b["spool_pending"]
    return int(came - are)


def flavor_unaccounted(b: dict[str, Any]) -> dict[str, int]:
    """Per flavor of the backend `b`, at a quiet moment: what came in less where it is,
    and (keys `total <figure>`) each figure of the backend less its flavors' sum."""
    flavors: dict[str, dict[str, int]] = b["flavors"]
    done = done_key(b)
    out = {}
    for name, f in flavors.items():
        came = f["recovered"] + f["accepted"]
        are = f[done] + f.get("rejected", 0) + f["dropped"] + f["spool_pending"]
        out[name] = int(came - are)
    for key in (*SUMMED, done):
        if key in b:
            out[f"total {key}"] = int(b[key] - sum(f[key] for f in flavors.values()))
    return out


def all_unaccounted(backends: dict[str, dict[str, Any]]) -> dict[str, int]:
    """`backend` -> the backend's unaccounted events, `backend/flavor` -> the flavor's,
    `backend/total <figure>` -> what the flavors' figures miss of the backend's."""
    out = {}
    for name, b in backends.items():
        out[name] = unaccounted(b)
        out |= {f"{name}/{k}": n for k, n in flavor_unaccounted(b).items()}
    return out


def wait_accounted(
    backends: Callable[[], dict[str, dict[str, Any]]], timeout_s: float = 30
) -> dict[str, int]:
    """Reads `backends()` (name -> `/stats` object) until every backend and every flavor of
    it is accounted for, or the timeout; returns `all_unaccounted` (the caller asserts
    that no value is non-zero)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = all_unaccounted(backends())
        if not any(left.values()) or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)
