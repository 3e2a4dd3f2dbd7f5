"""What the admin routes read of the running server: a narrow, read-only view (the shared
state, `beacon.state.ServerState`, provides it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sized
from typing import Any, Protocol

from beacon.config import Config
from beacon.gcstats import GcStats
from beacon.health import HealthTracker


class NativeStats(Protocol):
    def stats(self) -> dict[str, Any]: ...


class AdminView(Protocol):
    @property
    def cfg(self) -> Config: ...
    @property
    def ingest(self) -> NativeStats: ...
    @property
    def refusals(self) -> Counter[str]: ...
    @property
    def connections(self) -> Sized: ...
    @property
    def connections_total(self) -> int: ...
    @property
    def draining(self) -> bool: ...
    @property
    def started_at(self) -> float: ...
    @property
    def gc_stats(self) -> GcStats: ...
    @property
    def health(self) -> HealthTracker: ...
