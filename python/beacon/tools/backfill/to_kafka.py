"""`beacon backfill --to kafka`: sends a daily file to the flavor's topic, each event with
its own timestamp, key and `id` header, as the live path would have sent it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from beacon.backends.kafka.delivery import kafka_error
from beacon.backends.kafka.settings import make_producer, producer_settings
from beacon.config import Config, FlavorConfig
from beacon.tools.backfill.counts import Counts
from beacon.tools.backfill.daily import check_whole, daily_path, lines
from beacon.tools.backfill.day import Day
from beacon.tools.backfill.errors import BackfillError
from beacon.tools.backfill.events import Outgoing, message_id, outgoing
from beacon.tools.backfill.matching import Present
from beacon.tools.backfill.progress import Progress
from beacon.tools.backfill.topic import Quiet, Topic, settings_error


def to_kafka(cfg: Config, flavor: FlavorConfig, day: Day, merge: bool) -> tuple[Path, Counts]:
    path = daily_path(cfg, flavor, day)
    if not path.exists():
        raise BackfillError(f"{path}: no such file")
    check_whole(path)
    total = sum(1 for _ in _events(path, flavor, day))  # every line checked before a send
    if total == 0:
        raise BackfillError(f"{path}: no events")
    topic = Topic(cfg, flavor.topic)
    present = Present()
    try:
        if merge:
            for m in topic.day_messages(day, f"reading {flavor.topic}"):
                value = bytes(m.value() or b"")
                present.add(message_id(m.headers(), value), value)
    finally:
        topic.close()
    counts = Counts()
    sender = _Sender(cfg)
    progress = Progress(f"sending to {flavor.topic}", total)
    try:
        for ev in _events(path, flavor, day):
            counts.read += 1
            progress.step()
            if present.take(ev.id, ev.value):
                counts.present += 1
            else:
                sender.send(flavor.topic, ev)
        sender.finish()
    finally:
        progress.close()
    counts.written = sender.delivered
    return path, counts


def _events(path: Path, flavor: FlavorConfig, day: Day) -> Iterator[Outgoing]:
    for n, line in lines(path):
        try:
            yield outgoing(line, flavor.kafka_key_param, day)
        except ValueError as e:
            raise BackfillError(f"{path}:{n}: {e}") from None


class _Sender:
    """One producer with beacon's settings (`backends.kafka.producer` over its defaults),
    acks=all and idempotence whatever they say, every delivery reported and checked."""

    def __init__(self, cfg: Config) -> None:
        self.quiet = Quiet()
        conf: dict[str, Any] = {
            **producer_settings(cfg, reports=True),
            "acks": "all",
            "enable.idempotence": True,
            **self.quiet.settings(),
        }
        try:
            self.producer = make_producer(cfg, conf)
        except (KafkaException, TypeError, ValueError) as e:
            raise settings_error(e) from None
        self.delivered = 0
        self.failed = 0
        self.first_error = ""

    def send(self, topic: str, ev: Outgoing) -> None:
        headers = [("id", ev.id.encode())] if ev.id is not None else None
        while True:
            try:
                self.producer.produce(
                    topic,
                    ev.value,
                    ev.key,
                    on_delivery=self._report,
                    timestamp=ev.ts_ms,
                    headers=headers,
                )
                break
            except BufferError:  # librdkafka's buffer is full: let deliveries free it
                self.producer.poll(0.1)
            except KafkaException as e:  # refused before sending (too large, say)
                err = kafka_error(e)
                self._failed(err.str() if err is not None else str(e))
                break
        self.producer.poll(0)

    def _report(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self._failed(err.str())

    def _failed(self, why: str) -> None:
        self.failed += 1
        self.first_error = self.first_error or why

    def finish(self) -> None:
        """Waits for every delivery report (librdkafka fails a message after its
        `message.timeout.ms`); any failure is an error."""
        while self.producer.flush(1.0) > 0:
            pass
        if self.failed:
            raise BackfillError(
                f"{self.failed} events not delivered ({self.delivered} were): {self.first_error}"
            )
