"""The Kafka feeder: one thread drains the Rust queue (`_beacon.KafkaQueue`) into a
confluent_kafka.Producer; librdkafka batches, compresses, retries and does the I/O on its own
threads. What Kafka cannot take goes to the backend's disk spool and is replayed on recovery.

Reliability (DESIGN.md, "Reliability contract"):
- Every message handed to librdkafka ends in exactly one delivery report. A success counts as
  delivered; an error (after librdkafka's own retries, i.e. `message.timeout.ms` ran out, or a
  purge at shutdown) sends the message to the spool.
- A full librdkafka buffer (BufferError) sends the rest of the batch to the spool at once; the
  HTTP path never waits on Kafka (it only pushes into the Rust queue, which spools on overflow).
- The backend is "down" after a delivery failure, a BufferError or an all-brokers-down error,
  until the next successful delivery. While up, the spool is replayed oldest segment first at a
  bounded rate (`REPLAY_RATE`), so live traffic keeps priority.
- `stop()` drains the queue into the producer, flushes, purges what is left and spools it from
  the purge's delivery reports: nothing accepted is lost; it waits on disk for the next start.

Two producers. Live traffic goes, while the backend is up, to `producer`, which reports only
failed deliveries (`delivery.report.only.error`): a success then costs no Python call and no
Message object (in-process, produce plus reports went from 1.40 to 0.92 us per message). Its
successes are counted as produced - failed - still in librdkafka. Everything whose success
must be seen goes to `reporter`, which reports every delivery: the replay (a spool segment
leaves the disk only when all its messages are reported), the recovery probes, and live
traffic while the backend is down, so the first success proves recovery.

Replayed messages are marked by their delivery callback (a second bound method passed per
`produce()` call), not by a header: nothing per message is allocated and consumers see the
same record either way. Spool records of flavors no longer configured (index 65535) go to
`UNKNOWN_TOPIC`; their JSON carries the flavor name.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, Producer

if TYPE_CHECKING:
    from beacon._beacon import KafkaQueue, Message, SpooledSegment
    from beacon.config import Config

log = logging.getLogger("beacon.kafka")

#: Where spooled messages of a flavor that is no longer configured are replayed to.
UNKNOWN_TOPIC = "beacon.unknown"
UNKNOWN_FLAVOR = 65535

BATCH_MAX = 2000
BATCH_WAIT_MS = 50
#: Under load, pop live messages at most every this many ms (unless BATCH_MAX are queued):
#: each wake-up takes the GIL from the event loop, so fewer, bigger batches cost less.
#: librdkafka's own linger.ms batches further; at 100k msg/s the ring holds ~1,000 meanwhile.
GATHER_MS = 10
#: Replay at most this many spooled messages per second (while up).
REPLAY_RATE = 20_000
#: At most this many replayed messages per loop (a 100 ms burst at REPLAY_RATE).
REPLAY_BURST = REPLAY_RATE // 10
#: Replay chunk when the backend is down and librdkafka is empty: a probe for recovery.
PROBE_CHUNK = 100
#: At most one probe per this many seconds (a broker that refuses messages outright would
#: otherwise have the spool read and rewritten in a tight loop).
PROBE_INTERVAL_S = 5.0
#: Replay only while librdkafka holds fewer messages than this share of its buffer.
REPLAY_BUFFER_SHARE = 0.5
#: Bytes per message assumed when librdkafka's buffer is capped in bytes (events are ~300).
REPLAY_MESSAGE_BYTES = 512

#: Errors about the message itself, not the cluster (too large for the topic, a record the
#: broker refuses): retrying cannot help, so such a message is written to the rejected file
#: (`<spool_dir>/kafka-rejected/<UTC date>.jsonl`) and counted, instead of being spooled and
#: retried forever while the backend flaps between down and up.
REJECTED_ERRORS = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG_SIZE}
)

#: librdkafka settings; `backends.kafka.producer` from the config is applied over them.
#: - linger.ms 20: bigger batches cost librdkafka's broker thread less per message
#:   (measured with wrk: 0.6 against 0.7-0.95 us per message at 5 ms), for 15 ms more latency.
#: - librdkafka buffers up to 100k messages or 4 MiB of them, whichever comes first: that
#:   rides out a moment of a slow broker at a 50k msg/s peak, or a 30 s+ outage at moderate
#:   traffic, before BufferError sends the rest to the spool (on disk, replayed); and it
#:   bounds RSS: in the load benchmark the first messages to a new topic wait for it to be
#:   created, and with no byte cap RSS went from 44 to 66 MB, with 8 MiB to 61 MB.
#: - A message waits up to 2 minutes for a broker before its delivery report fails it into
#:   the spool.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 100_000,
    "queue.buffering.max.kbytes": 4096,
    "message.timeout.ms": 120_000,
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS_PREFIX = b'{"ts":"'


def event_ts_ms(value: bytes) -> int:
    """The event's `ts` (ms since the epoch) from its JSON, which starts with it. Only the
    failure path uses this: a failed delivery report carries no timestamp."""
    if value.startswith(_TS_PREFIX):
        end = value.find(b'"', len(_TS_PREFIX))
        try:
            when = datetime.fromisoformat(value[len(_TS_PREFIX) : end].decode())
            return (when - _EPOCH) // timedelta(milliseconds=1)
        except ValueError:
            pass
    when_s = json.loads(value)["ts"]  # an event whose JSON has another shape
    return (datetime.fromisoformat(when_s) - _EPOCH) // timedelta(milliseconds=1)


def producer_settings(cfg: Config, reports: bool) -> dict[str, Any]:
    """librdkafka settings: beacon's defaults, the config's `producer` over them, and which
    deliveries are reported (the feeder's business, not the config's: see the module doc)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": cfg.kafka.bootstrap_servers,
        **PRODUCER_DEFAULTS,
        **cfg.kafka.producer,
    }
    conf["delivery.report.only.error"] = not reports
    return conf


def make_producer(cfg: Config, conf: dict[str, Any]) -> Any:
    """A Producer with `conf`; raises KafkaException for settings librdkafka refuses."""
    try:
        return Producer(conf)
    except KafkaException:
        if "compression.type" in cfg.kafka.producer:
            raise
    # A librdkafka built without lz4: fall back to snappy, then no compression.
    for codec in ("snappy", "none"):
        conf["compression.type"] = codec
        try:
            producer = Producer(conf)
        except KafkaException:
            continue
        log.warning("lz4 unavailable in librdkafka, compressing with %s", codec)
        return producer
    return Producer(conf)


def producer_problems(cfg: Config) -> list[str]:
    """What librdkafka refuses in `backends.kafka.producer` (an unknown key, a bad value, a
    conflict with beacon's defaults), as config problems: found by creating, and at once
    destroying, a producer with the settings the feeder would use. No message is sent."""
    if not cfg.kafka.enabled:
        return []
    try:
        producer = make_producer(cfg, producer_settings(cfg, reports=False))
    except KafkaException as e:
        err = _kafka_error(e)
        return [f"backends.kafka.producer: {err.str() if err is not None else e}"]
    except (TypeError, ValueError) as e:
        return [f"backends.kafka.producer: {e}"]
    del producer  # rd_kafka_destroy: its threads end here
    return []


def _kafka_error(e: KafkaException) -> KafkaError | None:
    err = e.args[0] if e.args else None
    return err if isinstance(err, KafkaError) else None


def _is_fatal(e: KafkaException) -> bool:
    err = _kafka_error(e)
    return err is not None and bool(err.fatal())


class KafkaFeeder:
    """Feeds the Kafka backend's queue into Kafka on the "beacon-kafka" thread."""

    def __init__(self, cfg: Config, queue: KafkaQueue) -> None:
        self.cfg = cfg
        self.queue = queue
        flavor_names = queue.flavors()
        by_name = {f.name: f.topic for f in cfg.flavors}
        #: topic by flavor index (the queue's order, which is the config's)
        self.topics: list[str] = [by_name.get(n, f"beacon.{n}") for n in flavor_names]
        #: flavor index by topic, to spool a failed message from its delivery report. Two
        #: flavors sharing a topic map to the first: replay sends it to the same topic.
        self.flavor_of: dict[str, int] = {}
        for i, t in enumerate(self.topics):
            self.flavor_of.setdefault(t, i)
        #: live traffic while up; reports failed deliveries only
        self.producer: Any = None
        #: replay, probes and live traffic while down; reports every delivery
        self.reporter: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # A second SIGTERM: stop waiting for the broker, spool what is left.
        self._hurry = threading.Event()
        # Counters (written by the feeder thread only; read anywhere).
        self.produced = 0
        self.delivered = 0
        self.failed = 0
        self.buffer_errors = 0
        self.replayed = 0
        self.spooled = 0
        # `producer` (failures-only reports): what it was handed and what it reported failed;
        # its deliveries are the difference less what it still holds (`_after_poll`).
        self._fast_produced = 0
        self._fast_failed = 0
        self._fast_delivered = 0
        self.spool_dropped = 0
        self.rejected = 0
        self.rejected_dir = cfg.spool_dir / "kafka-rejected"
        # Messages Kafka refused for good: (topic, value, key, ts_ms, error), written after
        # each poll.
        self._rejected_msgs: list[tuple[str, bytes, bytes | None, int, str]] = []
        self._replayed_unreported = 0
        # Health.
        self._up = True
        self._last_error = ""
        # Delivery reports that failed, spooled in one call after each poll.
        self._failed_msgs: list[Message] = []
        # The spool segment being replayed: its messages, how far we got, how many of those
        # await their delivery report, and the segment, on disk until all are reported.
        self._replay: list[Message] = []
        self._replay_pos = 0
        self._replay_outstanding = 0
        self._held: SpooledSegment | None = None
        self._replay_tokens = 0.0
        self._replay_clock = time.monotonic()
        self._queue_max = 100_000
        self._stop_timeout_s = 10.0
        self._last_probe = 0.0
        self._fatal = False
        self._on_fast = self._on_fast_failure
        self._on_live = self._on_delivery
        self._on_replay = self._on_replay_delivery

    # -- lifecycle ------------------------------------------------------------------------

    def _producer_config(self, reports: bool) -> dict[str, Any]:
        conf = producer_settings(self.cfg, reports)
        conf["error_cb"] = self._on_error
        conf["on_delivery"] = self._on_live if reports else self._on_fast
        return conf

    def _make_producer(self, reports: bool) -> Any:
        return make_producer(self.cfg, self._producer_config(reports))

    def _producers(self) -> list[Any]:
        return [p for p in (self.producer, self.reporter) if p is not None]

    def start(self) -> None:
        self.producer = self._make_producer(reports=False)
        self.reporter = self._make_producer(reports=True)
        conf = producer_settings(self.cfg, reports=True)
        kbytes = int(conf.get("queue.buffering.max.kbytes", 1_048_576))
        # The replay's share of librdkafka's buffer is counted in messages: with a byte cap,
        # in messages of a generous event size, so the replay does not fill it (BufferError
        # would mark the backend down in the middle of a replay).
        qmax = int(conf.get("queue.buffering.max.messages", 100_000))
        self._queue_max = min(qmax, kbytes * 1024 // REPLAY_MESSAGE_BYTES)
        self._thread = threading.Thread(target=self._run, name="beacon-kafka", daemon=False)
        self._thread.start()
        pending = self.queue.spool_pending()
        log.info(
            "feeding %s (topics %s)%s",
            self.cfg.kafka.bootstrap_servers,
            ", ".join(sorted(set(self.topics))),
            f", {pending} spooled messages to replay" if pending else "",
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Drains the queue into the producer, flushes for up to `timeout_s`, spools the rest."""
        self._stop_timeout_s = timeout_s
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        s = self.stats()
        log.info(
            "stopped: %d delivered, %d failed, %d replayed, %d spooled, %d in spool",
            s["delivered"],
            s["failed"],
            s["replayed"],
            s["spooled"],
            s["spool_pending"],
        )
        # Drop the producers (they hold our bound methods: a cycle) so librdkafka's threads
        # end.
        self.producer = self.reporter = None

    def hurry(self) -> None:
        """Cuts a `stop()` in progress short: stop flushing and spool what is undelivered."""
        self._hurry.set()

    # -- health and stats -----------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self._up

    def stats(self) -> dict[str, Any]:
        return {
            "up": self._up,
            "produced": self.produced,
            "delivered": self.delivered + self._fast_delivered,
            "failed": self.failed,
            "buffer_errors": self.buffer_errors,
            "replayed": self.replayed,
            "spooled": self.spooled,
            "spool_dropped": self.spool_dropped,
            "rejected": self.rejected,
            "in_flight": self._in_librdkafka(),
            "buffered": self.queue.buffered(),
            "spool_pending": self.queue.spool_pending(),
            "last_error": self._last_error,
        }

    # -- librdkafka callbacks (run on the feeder thread, inside poll/flush) ---------------

    def _on_fast_failure(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:  # delivery.report.only.error: always
            self._fast_failed += 1
            self._fail(err, msg)

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            if not self._up:
                self._up = True
                log.info("deliveries succeed again, backend up")
            return
        self._fail(err, msg)

    def _on_replay_delivery(self, err: KafkaError | None, msg: Any) -> None:
        self._replay_outstanding -= 1
        if err is None:
            self.delivered += 1
            self.replayed += 1
            self._replayed_unreported += 1
            if not self._up:
                self._up = True
                log.info("deliveries succeed again, backend up")
            return
        self._fail(err, msg)

    def _fail(self, err: KafkaError, msg: Any) -> None:
        value = msg.value()
        ts = msg.timestamp()[1]
        if ts < 0:  # librdkafka reports no timestamp with a failed delivery
            ts = event_ts_ms(value)
        if err.code() in REJECTED_ERRORS:
            self._rejected_msgs.append((msg.topic(), value, msg.key(), ts, err.str()))
            return
        self.failed += 1
        if self._up or self._last_error != err.str():
            self._last_error = err.str()
            if err.code() != KafkaError._PURGE_QUEUE:
                log.warning("delivery failed (%s), spooling", err.str())
        self._up = False
        self._failed_msgs.append(
            (self.flavor_of.get(msg.topic(), UNKNOWN_FLAVOR), value, msg.key(), ts)
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._up:
                log.warning("all brokers down: %s", err.str())
            self._up = False
            self._last_error = err.str()
        elif err.fatal():
            log.error("fatal producer error: %s", err.str())
            self._up = False
            self._fatal = True
            self._last_error = err.str()
        else:
            log.debug("%s", err.str())

    # -- the feeder thread ----------------------------------------------------------------

    def _spool(self, msgs: list[Message]) -> None:
        if not msgs:
            return
        n = self.queue.spool(msgs)
        self.spooled += n
        if n < len(msgs):
            self.spool_dropped += len(msgs) - n
            log.error("spool write failed, %d messages dropped", len(msgs) - n)

    def _write_rejected(self) -> None:
        """Appends the messages Kafka refused for good to today's rejected file."""
        msgs, self._rejected_msgs = self._rejected_msgs, []
        lines = []
        for topic, value, key, ts, error in msgs:
            record = {
                "topic": topic,
                "key": key.decode("utf-8", "replace") if key is not None else None,
                "ts_ms": ts,
                "error": error,
                "event": value.decode("utf-8", "replace"),
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        path = self.rejected_dir / f"{datetime.now(UTC):%Y-%m-%d}.jsonl"
        try:
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write("".join(lines))
        except OSError as e:
            self.spool_dropped += len(msgs)
            log.error("cannot write %d rejected messages to %s: %s", len(msgs), path, e)
            return
        if self.rejected == 0 or msgs[0][4] != self._last_error:
            log.warning("Kafka refused %d messages (%s): kept in %s", len(msgs), msgs[0][4], path)
            self._last_error = msgs[0][4]
        self.rejected += len(msgs)

    def _after_poll(self) -> None:
        """Spools failed delivery reports, files rejected ones, counts `producer`'s
        deliveries and reports replay progress to the Rust counters."""
        if self._rejected_msgs:
            self._write_rejected()
        if self.producer is not None:
            # len() also counts queued events (a few), so this can lag; it never runs ahead.
            delivered = self._fast_produced - self._fast_failed - len(self.producer)
            self._fast_delivered = max(self._fast_delivered, delivered)
        if self._failed_msgs:
            failed, self._failed_msgs = self._failed_msgs, []
            self._spool(failed)
        if self._replayed_unreported:
            self.queue.add_replayed(self._replayed_unreported)
            self._replayed_unreported = 0
        if (
            self._held is not None
            and self._replay_pos >= len(self._replay)
            and self._replay_outstanding == 0
        ):
            # Every message of the segment is delivered or spooled again: off the disk.
            self._held.release()
            self._held = None
            self._replay, self._replay_pos = [], 0

    def _produce(
        self, producer: Any, batch: list[Message], on_delivery: Any, spool_rest: bool = True
    ) -> tuple[int, int]:
        """Hands `batch` to `producer`; on a persistent BufferError spools the rest (or with
        `spool_rest=False` leaves it to the caller). Returns how many messages of `batch`
        were dealt with, and how many of those were handed over (the others were refused
        for good, see REJECTED_ERRORS, and will have no delivery report)."""
        done, refused = self._produce_into(producer, batch, on_delivery, spool_rest)
        self._count_handed(producer, done - refused)
        return done, done - refused

    def _count_handed(self, producer: Any, n: int) -> None:
        self.produced += n
        if producer is self.producer:
            self._fast_produced += n

    def _produce_into(
        self, producer: Any, batch: list[Message], on_delivery: Any, spool_rest: bool
    ) -> tuple[int, int]:
        produce = producer.produce
        topics = self.topics
        refused = 0
        i = 0
        n = len(batch)
        polled = False
        while i < n:
            flavor, value, key, ts = batch[i]
            topic = topics[flavor] if flavor < len(topics) else UNKNOWN_TOPIC
            try:
                # Positional (partition -1 = any, callback, on_delivery, timestamp): no
                # keyword parsing per message.
                produce(topic, value, key, -1, on_delivery, None, ts)
            except KafkaException as e:
                err = _kafka_error(e)
                if err is not None and err.code() in REJECTED_ERRORS:
                    # librdkafka's own check (message.max.bytes): this message, not Kafka.
                    self._rejected_msgs.append((topic, value, key, ts, err.str()))
                    refused += 1
                    i += 1
                    continue
                # A fatal producer error (the idempotent producer cannot go on) or a local
                # one: keep the rest on disk; the loop replaces a fatally failed producer.
                log.error("produce failed (%s), spooling", e)
                self._up = False
                self._fatal = self._fatal or _is_fatal(e)
                if spool_rest:
                    self._spool(batch[i:])
                return i, refused
            except BufferError:
                self.buffer_errors += 1
                if not polled:  # once per batch: let librdkafka hand off what it can
                    polled = True
                    producer.poll(0.02)
                    try:
                        produce(topic, value, key, -1, on_delivery, None, ts)
                        i += 1
                        continue
                    except BufferError:
                        self.buffer_errors += 1
                if self._up:
                    log.warning("producer buffer full (%d messages), spooling", len(producer))
                self._up = False
                if spool_rest:
                    self._spool(batch[i:])
                return i, refused
            i += 1
        return n, refused

    def _replay_step(self, live_busy: bool) -> None:
        """Produces the next chunk of the spool segment being replayed, within the rate."""
        now = time.monotonic()
        self._replay_tokens = min(
            float(REPLAY_BURST), self._replay_tokens + (now - self._replay_clock) * REPLAY_RATE
        )
        self._replay_clock = now
        in_flight = len(self.reporter)
        if self._up:
            room = int(self._queue_max * REPLAY_BUFFER_SHARE) - in_flight
            budget = min(int(self._replay_tokens), room)
            if live_busy:
                budget //= 2
        elif in_flight == 0 and now - self._last_probe >= PROBE_INTERVAL_S:
            budget = PROBE_CHUNK  # probe: a success turns the backend up again
            self._last_probe = now
        else:
            return
        if budget <= 0:
            return
        if self._replay_pos >= len(self._replay):
            if self._held is not None or self.queue.spool_pending() == 0:
                return  # the held segment is still being delivered
            held = self.queue.hold_spooled()
            if held is None:
                return
            segment, self._held = held
            self._replay, self._replay_pos = segment, 0
            unknown = sum(1 for m in segment if m[0] == UNKNOWN_FLAVOR)
            log.info(
                "replaying %d spooled messages%s",
                len(segment),
                f" ({unknown} of unconfigured flavors to {UNKNOWN_TOPIC})" if unknown else "",
            )
        chunk = self._replay[self._replay_pos : self._replay_pos + budget]
        # What librdkafka cannot take now stays in memory for the next step (no re-spooling).
        done, handed = self._produce(self.reporter, chunk, self._on_replay, spool_rest=False)
        self._replay_pos += done
        self._replay_outstanding += handed
        self._replay_tokens -= done

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("feeder thread failed")
            raise
        finally:
            self._shutdown()

    def _replace_producers(self) -> None:
        """After a fatal error a producer refuses everything: purge both (their delivery
        reports spool what they held) and start new ones."""
        log.warning("replacing the producers after a fatal error")
        olds = self._producers()
        for old in olds:
            old.purge(in_queue=True, in_flight=True)
        self._serve_purge(olds)
        self.delivered += self._fast_delivered  # the new producer counts from zero
        self.producer = self._make_producer(reports=False)
        self.reporter = self._make_producer(reports=True)
        self._fast_produced = self._fast_failed = self._fast_delivered = 0
        self._fatal = False

    def _serve_purge(self, producers: list[Any]) -> None:
        """Serves the delivery reports of a purge (for up to 5 s), then spools the failed."""
        for _ in range(50):
            served = sum(p.poll(0.05) for p in producers)
            if served == 0 and not any(len(p) for p in producers):
                break
        self._after_poll()

    def _live(self) -> tuple[Any, Any]:
        """Where live traffic goes now, with its delivery callback (see the module doc)."""
        if self._up:
            return self.producer, self._on_fast
        return self.reporter, self._on_live

    def _produce_rest(
        self, producer: Any, on_delivery: Any, rest: list[Message], error: BaseException
    ) -> None:
        """The rest of a batch `produce_batch` stopped on: retried (and on a persistent
        error spooled) by `_produce`; an unexpected error spools it and propagates."""
        if isinstance(error, BufferError | KafkaException):
            self._produce(producer, rest, on_delivery)
            return
        self._spool(rest)
        raise error

    def _produce_live(self, wait_ms: int, gather_ms: int) -> int:
        """Pops a batch of live messages into the live producer; returns how many."""
        producer, on_delivery = self._live()
        handed, rest, error = self.queue.produce_batch(
            producer.produce, self.topics, UNKNOWN_TOPIC, on_delivery, BATCH_MAX, wait_ms, gather_ms
        )
        self._count_handed(producer, handed)
        if error is not None:
            self._produce_rest(producer, on_delivery, rest, error)
        return handed + len(rest)

    def _loop(self) -> None:
        queue = self.queue
        while not self._stopping.is_set():
            if self._fatal:
                self._replace_producers()
            backlog = self._held is not None or queue.spool_pending() > 0
            # While replaying, wait less for live traffic; while down, the replay only probes.
            wait_ms = 5 if backlog and self._up else BATCH_WAIT_MS
            popped = self._produce_live(wait_ms, GATHER_MS)
            self.producer.poll(0)
            self.reporter.poll(0)
            if backlog:
                self._replay_step(live_busy=popped == BATCH_MAX)
            elif not popped and not self._up and not len(self.reporter):
                self._probe_idle(self.reporter)
            self._after_poll()

    def _probe_idle(self, producer: Any) -> None:
        """Down with nothing to send: no delivery can succeed to mark the backend up again,
        so ask the cluster for metadata every PROBE_INTERVAL_S instead."""
        now = time.monotonic()
        if now - self._last_probe < PROBE_INTERVAL_S:
            return
        self._last_probe = now
        try:
            producer.list_topics(timeout=1.0)
        except KafkaException:
            return
        log.info("brokers reachable again (metadata probe)")
        self._up = True

    def _in_librdkafka(self) -> int:
        return sum(len(p) for p in self._producers())

    def _shutdown(self) -> None:
        """Drain, flush, purge: every message ends delivered or spooled."""
        producers = self._producers()
        timeout_s = self._stop_timeout_s
        deadline = time.monotonic() + timeout_s
        # 1. The queue: the HTTP side has stopped, so this ends.
        while self._produce_live(0, 0):
            for p in producers:
                p.poll(0)
            self._after_poll()
        # 2. The rest of a replay in progress goes back to the spool; the held segment is
        # released once the part handed to librdkafka is reported (in _after_poll).
        if self._replay_pos < len(self._replay):
            self._spool(self._replay[self._replay_pos :])
            self._replay_pos = len(self._replay)
        # 3. Flush; if the broker is down this takes the whole timeout (or until hurry()).
        remaining = self._in_librdkafka()
        while remaining and not self._hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            remaining = sum(p.flush(min(0.1, left)) for p in producers)
            self._after_poll()
        self._after_poll()
        if remaining:
            log.warning("%d messages undelivered after %.1f s, spooling", remaining, timeout_s)
            # Messages not yet sent can be purged without risk of a duplicate; give those in
            # flight a last moment, then purge them too (they may have reached the broker:
            # a later replay can duplicate them, which beats losing them).
            for p in producers:
                p.purge(in_queue=True, in_flight=False)
            for p in producers:
                p.flush(0.5)
            self._after_poll()
            if self._in_librdkafka():
                log.warning(
                    "purging %d messages in flight; they may arrive twice", self._in_librdkafka()
                )
                for p in producers:
                    p.purge(in_queue=True, in_flight=True)
                self._serve_purge(producers)
            self._after_poll()
        if self._held is not None:
            log.warning(
                "%d replayed messages unreported; their spool segment stays for the "
                "next start (some may arrive twice)",
                self._replay_outstanding,
            )
