"""The flavor's topic on the backfill's side: reaching it within a bounded time, and reading
one day's messages (README "Rebuilding a store")."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from beacon.backends.kafka.delivery import kafka_error
from beacon.backends.kafka.settings import client_settings
from beacon.config import Config
from beacon.tools.backfill.day import Day
from beacon.tools.backfill.errors import BackfillError
from beacon.tools.backfill.progress import Progress

#: How long the brokers get to answer a request (metadata, offsets), and a read to bring a
#: message, before the backfill gives up.
TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0


def settings_error(e: Exception) -> BackfillError:
    """librdkafka refused the settings taken from `backends.kafka`."""
    err = kafka_error(e)
    return BackfillError(f"backends.kafka.producer: {err.str() if err is not None else e}")


class Quiet:
    """librdkafka's log and error callbacks: kept, not printed (the command prints one line),
    the last error quoted in that line."""

    def __init__(self) -> None:
        self.last = ""
        self.logger = logging.getLogger("beacon.backfill.librdkafka")
        self.logger.propagate = False
        self.logger.addHandler(logging.NullHandler())

    def error(self, err: KafkaError) -> None:
        self.last = err.str()

    def settings(self) -> dict[str, Any]:
        return {"logger": self.logger, "error_cb": self.error}

    def why(self) -> str:
        return f" ({self.last})" if self.last else ""


class Topic:
    """The topic `name` on the config's brokers; refuses one that does not exist."""

    def __init__(self, cfg: Config, name: str) -> None:
        self.name = name
        self.quiet = Quiet()
        conf = {
            **client_settings(cfg),
            **self.quiet.settings(),
            "group.id": "beacon-backfill",  # required by the client; nothing is committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "allow.auto.create.topics": False,
        }
        try:
            self.consumer = Consumer(conf)
        except (KafkaException, TypeError, ValueError) as e:
            raise settings_error(e) from None
        try:
            meta = self.consumer.list_topics(name, timeout=TIMEOUT_S)
        except KafkaException:
            self.close()
            servers = cfg.kafka.bootstrap_servers
            raise BackfillError(
                f"cannot reach Kafka at {servers} within {TIMEOUT_S:g} s{self.quiet.why()}"
            ) from None
        topic = meta.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            self.close()
            raise BackfillError(f"topic {name!r} does not exist")
        self.partitions = sorted(topic.partitions)

    def close(self) -> None:
        self.consumer.close()

    def day_messages(self, day: Day, label: str) -> Iterator[Message]:
        """The messages whose timestamps fall in `day`: partition by partition, in offset
        order within each; a partition's read ends at the first message past the day, or at
        its high watermark as it was when the read began."""
        spans = self._spans(day)
        progress = Progress(label, sum(high - start for _, start, high in spans))
        try:
            for p, start, high in spans:
                yield from self._read(p, start, high, day, progress)
        finally:
            progress.close()

    def _spans(self, day: Day) -> list[tuple[int, int, int]]:
        """(partition, first offset of the day, high watermark) of each partition with
        messages at or after the day's start."""
        wanted = [TopicPartition(self.name, p, day.start_ms) for p in self.partitions]
        try:
            found = self.consumer.offsets_for_times(wanted, timeout=TIMEOUT_S)
            spans = []
            for tp in found:
                if tp.error is not None:
                    raise KafkaException(tp.error)
                if tp.offset < 0:  # nothing from the day's start on
                    continue
                whole = TopicPartition(self.name, tp.partition)
                _, high = self.consumer.get_watermark_offsets(whole, timeout=TIMEOUT_S)
                if tp.offset < high:
                    spans.append((tp.partition, tp.offset, high))
        except (KafkaException, TypeError) as e:  # TypeError: None for a timeout
            raise BackfillError(f"cannot read the offsets of {self.name!r}: {e}") from None
        return spans

    def _read(
        self, p: int, start: int, high: int, day: Day, progress: Progress
    ) -> Iterator[Message]:
        self.consumer.assign([TopicPartition(self.name, p, start)])
        at = start
        quiet_since = time.monotonic()
        while True:
            # A batch call waits for all its messages or its timeout: keep it short.
            batch = self.consumer.consume(1000, timeout=0.1)
            if not batch:
                if time.monotonic() - quiet_since >= READ_TIMEOUT_S:
                    raise BackfillError(
                        f"{self.name}[{p}]: no message for {READ_TIMEOUT_S:g} s "
                        f"at offset {at}{self.quiet.why()}"
                    )
                continue
            quiet_since = time.monotonic()
            for m in batch:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return
                    raise BackfillError(f"{self.name}[{p}]: {err.str()}")
                progress.step()
                ts = m.timestamp()[1]
                if ts >= day.stop_ms:
                    return
                if day.holds(ts):
                    yield m
                at = (m.offset() or 0) + 1
                if at >= high:
                    return
