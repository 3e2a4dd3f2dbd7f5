"""What the public listener, the admin listener and the runtime share: the native request
path, open connections, refusal counters, the draining flag, health and GC figures. It
imports nothing from `http/` or `admin/` (they read it; `runtime/` drives it)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from typing import Protocol

from beacon._beacon import Ingest
from beacon.config import Config
from beacon.gcstats import GcStats
from beacon.health import HealthTracker

log = logging.getLogger("beacon.http")


class Connection(Protocol):
    """What the shared state asks of an open client connection."""

    def check_timeouts(self, tick: int, request_ticks: int, idle_ticks: int) -> None: ...
    def close_when_idle(self) -> None: ...
    def close(self) -> None: ...


class ServerState:
    def __init__(self, cfg: Config, ingest: Ingest, config_sha256: str | None = None) -> None:
        self.cfg = cfg
        self.ingest = ingest
        self._read_limits()
        #: The config in force: the sha256 of its file's bytes (None: no file, every
        #: default) and when it was loaded (epoch s); `/info` and `/stats` show them.
        self.config_sha256 = config_sha256
        self.config_loaded_at = time.time()
        #: Config reloads: `reloaded` (applied), `reload_failed` (refused, nothing changed).
        self.config_reloads: Counter[str] = Counter()
        self.tick = 0
        self.connections: set[Connection] = set()
        self.connections_total = 0
        #: Refusals made before a request reaches `Ingest` (bad HTTP, timeouts, ...) and
        #: connection-level ones; `Ingest` counts the rest per flavor.
        self.refusals: Counter[str] = Counter()
        self.draining = False
        self.started_at = time.time()
        self.gc_stats = GcStats()
        self.health = HealthTracker(_spool_ages(cfg))
        self._rid_prefix = os.urandom(3).hex()
        self._rid = 0

    def _read_limits(self) -> None:
        limits = self.cfg.limits
        self.max_request_bytes = limits.max_request_bytes
        self.max_header_bytes = limits.max_header_bytes
        self.max_body_bytes = limits.max_body_bytes
        self.max_url_bytes = limits.max_target_bytes
        # A tick is one second; +1 so at least the full timeout passes before a cut.
        self.request_ticks = math.ceil(limits.header_timeout_s) + 1
        self.idle_ticks = math.ceil(limits.idle_timeout_s) + 1

    # config reload (beacon.runtime.reload)

    def reconfigure(self, cfg: Config, sha256: str | None) -> None:
        """Puts a validated config in force for the next request (its restart-only keys
        are the running ones); raises ValueError, changing nothing, if the native request
        path cannot take it."""
        self.ingest.reconfigure(cfg)
        self.cfg = cfg
        self._read_limits()
        self.health.max_spool_age_s = _spool_ages(cfg)
        self.config_sha256 = sha256
        self.config_loaded_at = time.time()
        self.config_reloads["reloaded"] += 1

    def reload_failed(self) -> None:
        self.config_reloads["reload_failed"] += 1

    # connections

    def connection_opened(self, conn: Connection) -> bool:
        if len(self.connections) >= self.cfg.limits.max_connections:
            self.refusals["connections"] += 1
            return False
        self.connections.add(conn)
        self.connections_total += 1
        return True

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def count_refusal(self, reason: str) -> None:
        self.refusals[reason] += 1

    # errors

    def next_request_id(self) -> str:
        self._rid += 1
        return f"{self._rid_prefix}{self._rid:06x}"

    def request_failed(self, exc: BaseException) -> str:
        rid = self.next_request_id()
        self.refusals["errors"] += 1
        log.error("request %s failed: %r", rid, exc, exc_info=exc)
        return rid


def _spool_ages(cfg: Config) -> dict[str, int | None]:
    """Each backend's `spool_max_age_s`, for the health tracker."""
    return {"file": cfg.file.spool_max_age_s, "kafka": cfg.kafka.spool_max_age_s}
