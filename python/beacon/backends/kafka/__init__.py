"""The Kafka backend's Python side: librdkafka's I/O through confluent-kafka, for the Rust
Kafka sink (rust/src/sinks/kafka/), which owns the queue, the spool and its replay, the
rejected log and every counter.

- `settings.py`: the producers' librdkafka settings and their check (`check-config`).
- `delivery.py`: the delivery callbacks and the sorting of confluent-kafka's errors.
- `feeder.py`: the feeder thread: produce, poll, flush, purge, probe, the shutdown.
"""
