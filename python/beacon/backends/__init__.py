"""Backends behind the ring. Their queues, spools, counters and the file writer live in
Rust (rust/src/sinks/); the Kafka backend's librdkafka I/O lives here (`kafka/`)."""
