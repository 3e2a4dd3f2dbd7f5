"""Backends behind the ring: the daily-file writer lives in Rust (rust/src/filesink.rs);
the Kafka feeder lives here."""
