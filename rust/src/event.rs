//! One accepted request, rendered once and shared by every backend.

use crate::clock::Day;
use std::sync::Arc;

/// An event: the JSON line a backend writes plus what it needs to route it.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    /// Index into the configured flavors.
    pub flavor: u16,
    /// Local day of receipt in the flavor's zone: picks the daily file.
    pub day: Day,
    /// Receipt time, ms since the epoch: the Kafka message timestamp.
    pub ts_ms: i64,
    /// Kafka message key, from the flavor's `kafka_key_param`.
    pub key: Option<Box<[u8]>>,
    /// The JSON object followed by `\n`.
    pub line: Box<[u8]>,
}

/// Events travel by reference count so two backends share one allocation.
pub type SharedEvent = Arc<Event>;
