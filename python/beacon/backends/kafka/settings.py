"""librdkafka settings of the Kafka backend's producers: beacon's defaults, the config's
`backends.kafka.producer` over them, and librdkafka's own verdict on the result."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException, Producer

from beacon.backends.kafka.delivery import kafka_error

if TYPE_CHECKING:
    from beacon.config import Config

log = logging.getLogger("beacon.kafka")

#: librdkafka settings; `backends.kafka.producer` from the config is applied over them.
#: - linger.ms 5: the Kafka sink already hands messages over in batches, one per gather
#:   window (`KafkaConfig::gather`, rust/src/sinks/kafka/mod.rs), and a batch's produce()
#:   calls take a few ms, so 5 ms still sends each as one request; longer only held
#:   messages, and memory, for nothing (docs/performance.md, "Fewer wake-ups").
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
    "linger.ms": 5,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 100_000,
    "queue.buffering.max.kbytes": 4096,
    "message.timeout.ms": 120_000,
}


def producer_settings(cfg: Config, reports: bool) -> dict[str, Any]:
    """librdkafka settings: beacon's defaults, the config's `producer` over them, and which
    deliveries are reported (the feeder's business, not the config's: see feeder.py)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": cfg.kafka.bootstrap_servers,
        **PRODUCER_DEFAULTS,
        **cfg.kafka.producer,
    }
    conf["delivery.report.only.error"] = not reports
    return conf


#: Settings of `backends.kafka.producer` that say how to reach and log in to the brokers, and
#: so apply to any client of them (the backfill's consumers, say), not only to producers.
CONNECTION_PREFIXES = (
    "security.",
    "ssl.",
    "ssl_",
    "sasl.",
    "enable.ssl.",
    "enable.sasl.",
    "socket.",
    "broker.",
    "client.",
    "reconnect.",
    "api.version.",
    "connections.max.idle.ms",
    "topic.metadata.",
    "metadata.max.age.ms",
)


def client_settings(cfg: Config) -> dict[str, Any]:
    """The bootstrap servers and the connection and security settings of the config's
    `producer`, without beacon's producer defaults: what any client of the brokers needs."""
    common = {k: v for k, v in cfg.kafka.producer.items() if k.startswith(CONNECTION_PREFIXES)}
    return {"bootstrap.servers": cfg.kafka.bootstrap_servers, **common}


def buffer_limits(conf: dict[str, Any]) -> tuple[int, int]:
    """librdkafka's buffer caps under `conf`: (messages, kbytes), librdkafka's own defaults
    where unset. The sink keeps its replay within a share of them."""
    return (
        int(conf.get("queue.buffering.max.messages", 100_000)),
        int(conf.get("queue.buffering.max.kbytes", 1_048_576)),
    )


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
        err = kafka_error(e)
        return [f"backends.kafka.producer: {err.str() if err is not None else e}"]
    except (TypeError, ValueError) as e:
        return [f"backends.kafka.producer: {e}"]
    del producer  # rd_kafka_destroy: its threads end here
    return []
