"""What librdkafka says about each message, sorted and handed to the Rust Kafka sink
(rust/src/sinks/kafka/reports.rs), which does the rest: counting, spooling, the rejected
log, up and down. librdkafka calls the callbacks from `poll()` and `flush()` on the feeder
thread, never from `produce()`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException

if TYPE_CHECKING:
    from beacon._beacon import KafkaSink
    from beacon._beacon import _Route as Route
    from beacon._beacon import _Verdict as Verdict

log = logging.getLogger("beacon.kafka")

#: Errors about the message itself, not the cluster (too large for the topic, a record the
#: broker refuses): retrying cannot help, so such a message goes to the rejected log
#: (`<spool_dir>/kafka-rejected/<UTC date>.jsonl`), instead of being spooled and retried
#: forever while the backend flaps between down and up.
REJECTED_ERRORS = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG_SIZE}
)


def kafka_error(e: BaseException) -> KafkaError | None:
    """The KafkaError a KafkaException carries, if any."""
    err = e.args[0] if isinstance(e, KafkaException) and e.args else None
    return err if isinstance(err, KafkaError) else None


def refusal(e: BaseException) -> tuple[Verdict, str]:
    """What an exception from `Producer.produce()` means for the message: a full buffer
    (wait, then spool), refused for good (the rejected log), a producer that is down or
    fatally failed (spool, mark down), or none of these (spool the rest and raise it)."""
    if isinstance(e, BufferError):
        return "full", str(e)
    err = kafka_error(e)
    if err is None:
        return "raise", str(e)
    if err.code() in REJECTED_ERRORS:
        return "reject", err.str()
    return ("fatal" if err.fatal() else "down"), err.str()


class Reports:
    """The producers' callbacks. Each delivery callback only says which message and what
    became of it; the sink knows what that means."""

    def __init__(self, sink: KafkaSink) -> None:
        self._sink = sink

    def fast(self, err: KafkaError | None, msg: Any) -> None:
        """The live producer while up: it reports failures only."""
        if err is not None:
            self._failed("fast", err, msg)

    def live(self, err: KafkaError | None, msg: Any) -> None:
        """Live traffic while down (the reporting producer)."""
        if err is None:
            self._sink.delivered("live")
        else:
            self._failed("live", err, msg)

    def replay(self, err: KafkaError | None, msg: Any) -> None:
        """The spool's replay and probes (the reporting producer)."""
        if err is None:
            self._sink.delivered("replay")
        else:
            self._failed("replay", err, msg)

    def _failed(self, route: Route, err: KafkaError, msg: Any) -> None:
        # A failed report carries no timestamp (-1): the sink reads the event's own.
        topic, value, key, ts = msg.topic(), msg.value(), msg.key(), msg.timestamp()[1]
        if err.code() in REJECTED_ERRORS:
            self._sink.reject(route, topic, value, key, ts, err.str())
        else:
            quiet = err.code() == KafkaError._PURGE_QUEUE  # our own purge at shutdown
            self._sink.fail(route, topic, value, key, ts, err.str(), quiet)

    def error(self, err: KafkaError) -> None:
        """librdkafka's error callback (both producers)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._sink.brokers_down(err.str())
        elif err.fatal():
            self._sink.fatal_error(err.str())
        else:
            log.debug("%s", err.str())
