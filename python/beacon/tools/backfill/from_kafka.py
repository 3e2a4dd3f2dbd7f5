"""`beacon backfill --from kafka`: rebuilds a daily file from the flavor's topic."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Message

from beacon.config import Config, FlavorConfig
from beacon.tools.backfill.counts import Counts
from beacon.tools.backfill.daily import aside, check_whole, daily_path, lines
from beacon.tools.backfill.day import Day
from beacon.tools.backfill.errors import BackfillError
from beacon.tools.backfill.events import event_id, message_id
from beacon.tools.backfill.matching import Present
from beacon.tools.backfill.topic import Topic


def from_kafka(cfg: Config, flavor: FlavorConfig, day: Day, merge: bool) -> tuple[Path, Counts]:
    path = daily_path(cfg, flavor, day)
    keep = path.exists()
    if keep and not merge:
        raise BackfillError(f"{path} exists: --merge adds only the events it lacks")
    present = Present()
    if keep:
        check_whole(path)
        for _, line in lines(path):
            present.add(event_id(line), line)
    counts = Counts()
    topic = Topic(cfg, flavor.topic)
    try:
        with aside(path, keep) as out:
            for m in topic.day_messages(day, f"reading {flavor.topic}"):
                value = _line(m)
                counts.read += 1
                if present.take(message_id(m.headers(), value), value):
                    counts.present += 1
                else:
                    out.write(value)
                    counts.written += 1
            if counts.read == 0:
                raise BackfillError(f"topic {flavor.topic!r} has no message on {day.date}")
            if counts.written:
                out.commit()
    finally:
        topic.close()
    return path, counts


def _line(m: Message) -> bytes:
    """A message's value as a line of the file; a value that cannot be one is refused."""
    value = m.value()
    if not value or b"\n" in value or not value.startswith(b"{"):
        where = f"{m.topic()}[{m.partition()}] offset {m.offset()}"
        raise BackfillError(f"{where}: not an event line")
    return bytes(value)
