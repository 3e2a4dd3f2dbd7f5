"""What the backfill reads from an event line (README "Query string to JSON"): its `id`, and
for Kafka its timestamp and key, chosen as the live path chooses them (rust/src/envelope.rs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beacon.tools.backfill.day import Day


def event_id(value: bytes) -> str | None:
    """The `id` of an event (a line without its newline, or a Kafka value), if it has one."""
    try:
        ev = json.loads(value)
    except ValueError:
        return None
    found = ev.get("id") if isinstance(ev, dict) else None
    return found if isinstance(found, str) else None


def message_id(headers: Any, value: bytes) -> str | None:
    """A Kafka message's event id: its header `id` (`headers`: confluent-kafka's list of
    (name, value) pairs, or None), else the `id` in its value."""
    for name, v in headers or ():
        if name == "id" and isinstance(v, bytes | str):
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return event_id(value)


@dataclass(frozen=True)
class Outgoing:
    """An event line as a Kafka message."""

    value: bytes
    ts_ms: int
    key: bytes | None
    id: str | None


def outgoing(value: bytes, key_param: str | None, day: Day) -> Outgoing:
    """The message of one line of `day`'s file; ValueError says what is wrong with it."""
    # Numbers kept as their text: a JSON body's `"uid": 42` is keyed `42`, as live.
    ev = json.loads(value, parse_int=str, parse_float=str)
    if not isinstance(ev, dict) or not isinstance(ev.get("ts"), str):
        raise ValueError("not an event: no ts")
    ts = datetime.fromisoformat(ev["ts"])
    if ts.tzinfo is None:
        raise ValueError(f"ts {ev['ts']!r} has no UTC offset")
    # `timestamp()` is a float: round to the whole ms that `ts` carries.
    ts_ms = round(ts.timestamp() * 1000)
    if not day.holds(ts_ms):
        raise ValueError(f"ts {ev['ts']} is not on {day.date}")
    params = ev.get("params")
    key = None
    if key_param is not None and isinstance(params, dict) and key_param in params:
        key = _key(params[key_param])
    found = ev.get("id")
    return Outgoing(value, ts_ms, key, found if isinstance(found, str) else None)


def _key(v: Any) -> bytes:
    """The live key of a parameter's value: its text, the last value of a repeated one, `""`
    for a name without a value (rack's `null`) or a JSON body's object or null."""
    if isinstance(v, list):
        v = v[-1] if v else None
    if isinstance(v, bool):
        return b"true" if v else b"false"
    if isinstance(v, str):
        return v.encode()
    return b""
