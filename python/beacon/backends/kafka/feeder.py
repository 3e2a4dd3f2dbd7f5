"""The Kafka feeder: the "beacon-kafka" thread that does librdkafka's I/O for the Rust Kafka
sink (rust/src/sinks/kafka/). The sink decides what to hand over and when (the gather
window, the replay's rate, the probes) and keeps every count; this thread creates the two
confluent-kafka producers, lets the sink hand them messages, polls them (which runs the
delivery callbacks of delivery.py), and at shutdown flushes and purges them.

Two producers (measured in commit 892c411: the feeder went from 2.2-3.3 to 1.2-1.8 us of
CPU per message): live traffic goes, while Kafka is up, to `producer`, which reports only
failed deliveries (`delivery.report.only.error`), so a success costs no Python call; the
sink counts its deliveries as handed - failed - still in librdkafka. (confluent-kafka keeps
that setting to itself: librdkafka still reports every message, and `poll()` drops the
successes in C, taking the GIL for each: ~a fifth of this thread's time under load, see
docs/performance.md.) Everything whose success must be seen goes to `reporter`: the replay
(a spool segment leaves the disk only when all its messages are reported), the recovery
probes, and live traffic while down, so the first success proves recovery.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException

from beacon.backends.kafka.delivery import Reports, refusal
from beacon.backends.kafka.settings import buffer_limits, make_producer, producer_settings

if TYPE_CHECKING:
    from beacon._beacon import KafkaSink
    from beacon.config import Config

log = logging.getLogger("beacon.kafka")

#: A full librdkafka buffer gets this long (spent polling the producers, which frees the
#: room of delivered messages) before the sink tries again and, still full, spools.
ROOM_WAIT_S = 0.02
#: How long the delivery reports of a purge are waited for.
PURGE_SERVE_S = 5.0
#: How long messages already sent get after the unsent ones are purged at shutdown.
IN_FLIGHT_GRACE_S = 0.5


class KafkaFeeder:
    """Feeds the Kafka sink's messages into Kafka on the "beacon-kafka" thread."""

    def __init__(self, cfg: Config, sink: KafkaSink) -> None:
        self.cfg = cfg
        self.sink = sink
        self.reports = Reports(sink)
        #: live traffic while up; reports failed deliveries only
        self.producer: Any = None
        #: replay, probes and live traffic while down; reports every delivery
        self.reporter: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # A second SIGTERM: stop waiting for the broker, spool what is left.
        self._hurry = threading.Event()
        self._stop_timeout_s = 10.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        # The topics by slot are the Ingest's to set (from the config, and on a reload).
        topics = self.sink.topics()
        messages, kbytes = buffer_limits(producer_settings(self.cfg, reports=True))
        self.sink.configure(
            rejected_dir=self.cfg.spool_dir / "kafka-rejected",
            buffer_messages=messages,
            buffer_kbytes=kbytes,
        )
        self._new_producers()
        self._thread = threading.Thread(target=self._run, name="beacon-kafka", daemon=False)
        self._thread.start()
        pending = self.sink.stats()["spool_pending"]
        log.info(
            "feeding %s (topics %s)%s",
            self.cfg.kafka.bootstrap_servers,
            ", ".join(sorted(set(topics))),
            f", {pending} spooled messages to replay" if pending else "",
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Drains the queue into the producers, flushes for up to `timeout_s`, spools the
        rest."""
        self._stop_timeout_s = timeout_s
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        s = self.sink.stats()
        log.info(
            "stopped: %d delivered, %d failed, %d replayed, %d spooled, %d in spool",
            s["delivered"],
            s["failed"],
            s["replayed"],
            s["spooled"],
            s["spool_pending"],
        )
        # The producers hold callbacks that hold the sink: drop them so librdkafka's
        # threads end.
        self.sink.detach()
        self.producer = self.reporter = None

    def hurry(self) -> None:
        """Cuts a `stop()` in progress short: stop flushing and spool what is undelivered."""
        self._hurry.set()

    def _new_producers(self) -> None:
        def make(reports: bool) -> Any:
            conf = producer_settings(self.cfg, reports)
            conf["error_cb"] = self.reports.error
            return make_producer(self.cfg, conf)

        self.producer, self.reporter = make(reports=False), make(reports=True)
        r = self.reports
        self.sink.attach(
            fast=self.producer.produce,
            reporter=self.reporter.produce,
            on_fast=r.fast,
            on_live=r.live,
            on_replay=r.replay,
            refusal=refusal,
        )

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("feeder thread failed")
            raise
        finally:
            self._shutdown()

    def _loop(self) -> None:
        sink = self.sink
        while not self._stopping.is_set():
            if sink.needs_new_producers():
                self._replace_producers()
            full = sink.produce_live()
            self._poll(full)
            sink.replay()
            if sink.probe_due():
                self._probe()
            self._settle()

    def _poll(self, wait: bool) -> None:
        """Serves both producers' delivery reports; `wait`: for ROOM_WAIT_S in all."""
        for p in self._producers():
            p.poll(ROOM_WAIT_S / 2 if wait else 0)

    def _settle(self) -> None:
        """The sink counts the failures-only producer's deliveries; its notes are logged."""
        self.sink.settle(len(self.producer))
        for level, text in self.sink.take_notes():
            log.log(level, "%s", text)

    def _probe(self) -> None:
        """Down with nothing to send, no delivery can mark Kafka up again: ask the cluster
        for metadata instead."""
        try:
            self.reporter.list_topics(timeout=1.0)
        except KafkaException:
            return
        self.sink.brokers_reachable()

    def _producers(self) -> list[Any]:
        return [self.producer, self.reporter]

    def _in_librdkafka(self) -> int:
        return sum(len(p) for p in self._producers())

    def _replace_producers(self) -> None:
        """After a fatal error a producer refuses everything: purge both (their delivery
        reports spool what they held) and start new ones."""
        log.warning("replacing the producers after a fatal error")
        for old in self._producers():
            old.purge(in_queue=True, in_flight=True)
        self._serve_purge()
        self.sink.producers_replaced()
        self._new_producers()

    def _serve_purge(self) -> None:
        """Serves the delivery reports of a purge (for up to PURGE_SERVE_S)."""
        deadline = time.monotonic() + PURGE_SERVE_S
        while time.monotonic() < deadline:
            served = sum(p.poll(0.05) for p in self._producers())
            if served == 0 and not self._in_librdkafka():
                break
        self._settle()

    def _shutdown(self) -> None:
        """Drain, flush, purge: every message ends delivered, spooled or rejected."""
        sink = self.sink
        deadline = time.monotonic() + self._stop_timeout_s
        # 1. The queue: the HTTP side has stopped, so this ends.
        while sink.buffered():
            full = sink.produce_live(drain=True)
            self._poll(full)
            self._settle()
        # 2. What the replay has not handed over goes back to the spool.
        sink.end_replay()
        # 3. Flush; if the broker is down this takes the whole timeout (or until hurry()).
        remaining = self._in_librdkafka()
        while remaining and not self._hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            remaining = sum(p.flush(min(0.1, left)) for p in self._producers())
            self._settle()
        self._settle()
        if remaining:
            self._purge(remaining)
        sink.close()
        self._settle()

    def _purge(self, remaining: int) -> None:
        """Messages not yet sent can be purged without risk of a duplicate; those in
        flight get a last moment, then are purged too (they may have reached the broker:
        a later replay can duplicate them, which beats losing them). The purge's delivery
        reports spool them."""
        log.warning(
            "%d messages undelivered after %.1f s, spooling", remaining, self._stop_timeout_s
        )
        for p in self._producers():
            p.purge(in_queue=True, in_flight=False)
        for p in self._producers():
            p.flush(IN_FLIGHT_GRACE_S)
        self._settle()
        if self._in_librdkafka():
            log.warning(
                "purging %d messages in flight; they may arrive twice", self._in_librdkafka()
            )
            for p in self._producers():
                p.purge(in_queue=True, in_flight=True)
            self._serve_purge()
