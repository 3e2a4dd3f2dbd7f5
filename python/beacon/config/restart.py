"""What a running server cannot change (README "Config reload"): the listeners, the
directories, the backends and their queues. A reload keeps the running values of these
keys, names each one that differs as needing a restart, and applies the rest."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from beacon.config.schema import Config

#: Keys (as the file spells them) whose change needs a restart.
RESTART_KEYS: tuple[str, ...] = (
    "listen",
    "admin_listen",
    "allow_public_admin",
    "data_dir",
    "spool_dir",
    "ring_capacity",
    "backends.file.enabled",
    "backends.file.flush_interval_ms",
    "backends.file.fsync_interval_ms",
    "backends.file.spool_high_water_bytes",
    "backends.kafka.enabled",
    "backends.kafka.bootstrap_servers",
    "backends.kafka.producer",
    "backends.kafka.spool_high_water_bytes",
    "debug.tracemalloc",
    # Bad rows have their slot (directory, topic) and their limiter from the start.
    "bad_rows",
)

#: Keys whose field has another name (`load.py` reads the file's `spool_dir` into it).
_FIELDS = {"spool_dir": "spool_root"}


def _get(obj: Any, key: str) -> Any:
    for step in key.split("."):
        obj = getattr(obj, _FIELDS.get(step, step))
    return obj


def _with(obj: Any, key: str, value: Any) -> Any:
    """`obj` with the field at dotted `key` set to `value` (frozen dataclasses)."""
    head, _, rest = key.partition(".")
    name = _FIELDS.get(head, head)
    inner = _with(getattr(obj, name), rest, value) if rest else value
    return replace(obj, **{name: inner})


def split_restart(running: Config, new: Config) -> tuple[Config, list[str]]:
    """`new` with every restart-only key as `running` has it, and the keys that differed."""
    differ = [k for k in RESTART_KEYS if _get(running, k) != _get(new, k)]
    for key in differ:
        new = _with(new, key, _get(running, key))
    return new, differ
