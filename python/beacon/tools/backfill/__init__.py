"""`beacon backfill`: rebuilds a flavor's daily file from its Kafka topic, or its topic from
the daily file (README "Rebuilding a store", docs/architecture.md "Backfill")."""

from __future__ import annotations

from pathlib import Path

from beacon.config import Config, FlavorConfig
from beacon.tools.backfill.counts import Counts
from beacon.tools.backfill.day import parse_day
from beacon.tools.backfill.errors import BackfillError
from beacon.tools.backfill.from_kafka import from_kafka
from beacon.tools.backfill.to_kafka import to_kafka

__all__ = ["BackfillError", "backfill"]


def backfill(
    cfg: Config, flavor_name: str, date: str, direction: str, merge: bool
) -> tuple[Path, Counts]:
    """`direction`: "from" (topic to file) or "to" (file to topic). Raises BackfillError."""
    flavor = _flavor(cfg, flavor_name)
    if not cfg.kafka.bootstrap_servers:
        raise BackfillError("Kafka is not configured (backends.kafka.bootstrap_servers)")
    day = parse_day(date, flavor.timezone)
    run = from_kafka if direction == "from" else to_kafka
    return run(cfg, flavor, day, merge)


def _flavor(cfg: Config, name: str) -> FlavorConfig:
    for f in cfg.flavors:
        if f.name == name:
            return f
    known = ", ".join(f.name for f in cfg.flavors)
    raise BackfillError(f"--flavor: unknown flavor {name!r} (the config has {known})")
