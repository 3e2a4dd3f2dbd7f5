"""The `/stats` document: every counter the server keeps, in one JSON-able dict."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from beacon import __version__

if TYPE_CHECKING:
    from beacon.admin.view import AdminView

# Refusals made in Python (before or around the Rust call), folded into `requests`.
_PY_REASON_TO_OUTCOME = {"too_large": "too_large", "errors": "errors"}
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def iso_utc(epoch_s: float) -> str:
    """`2026-11-24T10:15:02.123Z`."""
    stamp = datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def config_in_force(view: AdminView) -> dict[str, Any]:
    """The config file in force: the sha256 of its bytes and when it was (re)loaded."""
    return {"sha256": view.config_sha256, "loaded_at": iso_utc(view.config_loaded_at)}


def config_doc(view: AdminView) -> dict[str, Any]:
    """`config_in_force` and the reloads (state.py keeps the counts)."""
    return {
        **config_in_force(view),
        "reloaded": view.config_reloads["reloaded"],
        "reload_failed": view.config_reloads["reload_failed"],
    }


def collect(view: AdminView) -> dict[str, Any]:
    native = view.ingest.stats()
    flavors: dict[str, dict[str, int]] = native.get("flavors", {})
    requests: dict[str, int] = {"errors": 0}
    for row in [*flavors.values(), native.get("no_flavor", {})]:
        for outcome, n in row.items():
            requests[outcome] = requests.get(outcome, 0) + n
    for reason, n in view.refusals.items():
        key = _PY_REASON_TO_OUTCOME.get(reason, reason)
        requests[key] = requests.get(key, 0) + n
    return {
        "uptime_s": round(time.time() - view.started_at, 3),
        "version": __version__,
        "draining": view.draining,
        "requests": requests,
        "flavors": flavors,
        # Each backend's figures, keyed as the stats schema says (rust/src/sinks/stats.rs).
        "backends": native.get("backends", {}),
        "gc": view.gc_stats.snapshot(),
        "memory": {"rss_bytes": rss_bytes()},
        "connections": {
            "open": len(view.connections),
            "total": view.connections_total,
            "refused": view.refusals.get("connections", 0),
        },
        "config": config_doc(view),
    }
