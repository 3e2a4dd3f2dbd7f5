//! The Kafka backend's one owner: its queue and gather window (`live.rs`), the spool and
//! its replay cursor and rate (`replay.rs`), delivery results and every counter
//! (`reports.rs`), the log of messages Kafka refuses for good (`rejected.rs`). Free of pyo3:
//! it hands messages to a [`Producer`], which in production is confluent-kafka's
//! `Producer.produce` called from `py.rs`, and learns their fate from the delivery
//! callbacks of python/beacon/backends/kafka/delivery.py, which only sort the error.
//!
//! Threads: every method here runs on the feeder thread (python/beacon/backends/kafka/
//! feeder.py), including the delivery callbacks (librdkafka serves them inside `poll()` and
//! `flush()`, never inside `produce()`); `/stats` reads the backend's atomics from any
//! thread. The state lock is therefore uncontended, and it is never held while a
//! producer is called. docs/architecture.md ("The Kafka sink") has the whole picture.
//!
//! Two routes for live traffic (measured in the feeder's commit 892c411): while Kafka is
//! up, through a producer that reports only failed deliveries (`delivery.report.only.error`:
//! a success costs no Python call), its deliveries counted as handed - failed - still in
//! librdkafka; while down, through the producer that reports every delivery, whose first
//! success marks Kafka up. The replay and the recovery probes always take the latter.

mod fates;
#[cfg(feature = "python")]
mod lent;
mod live;
#[cfg(feature = "python")]
pub mod py;
mod rejected;
mod replay;
mod reports;
#[cfg(test)]
mod tests;

pub use live::Handed;

use super::backend::{Backend, Counters};
use crate::event::SharedEvent;
use fates::Fates;
use rejected::RejectedLog;
use replay::Replay;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Flavor index of a spool record whose flavor is no longer configured: its messages go to
/// [`KafkaConfig::unknown_topic`].
pub const UNKNOWN_FLAVOR: u16 = u16::MAX;

/// The sink's knobs; `Default` holds beacon's values, each with the reason for it.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// Topic by slot (`Event::flavor`).
    pub topics: Vec<String>,
    /// Where messages of flavors no longer configured are replayed to (their JSON carries
    /// the flavor's name).
    pub unknown_topic: String,
    /// The rejected log: `<spool_dir>/kafka-rejected/`.
    pub rejected_dir: PathBuf,
    /// At most this many live messages per hand-over.
    pub batch_max: usize,
    /// How long a hand-over waits for a first live message when idle.
    pub idle_wait: Duration,
    /// The same while a spool backlog is replayed, so the replay gets its turns.
    pub backlog_wait: Duration,
    /// Under load, take live messages at most this often (unless `batch_max` are queued):
    /// each hand-over takes the GIL from the event loop and each wake-up preempts it on a
    /// shared core, so fewer, bigger batches cost less (docs/performance.md, "Fewer
    /// wake-ups"), and librdkafka then sends each batch as one request. At 80k msg/s the
    /// queue holds ~1,600 meanwhile (above `batch_max`, batches go back to back).
    pub gather: Duration,
    /// Replay at most this many spooled messages per second while Kafka is up: live
    /// traffic keeps priority.
    pub replay_rate: f64,
    /// At most this many replayed messages at once (a 100 ms burst at `replay_rate`).
    pub replay_burst: f64,
    /// While down: messages of the spool handed over as a probe for recovery.
    pub probe_chunk: usize,
    /// At most one probe (or metadata probe) per this interval: a broker that refuses
    /// everything would otherwise have the spool read and rewritten in a tight loop.
    pub probe_interval: Duration,
    /// The replay uses at most this share of librdkafka's buffer (a full buffer refuses
    /// live traffic and marks Kafka down in the middle of a replay).
    pub replay_buffer_share: f64,
    /// Bytes per message assumed when librdkafka's buffer is capped in bytes (events are
    /// ~300).
    pub replay_message_bytes: u64,
    /// librdkafka's `queue.buffering.max.messages` and `.kbytes`, as configured.
    pub buffer_messages: u64,
    pub buffer_kbytes: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            topics: Vec::new(),
            unknown_topic: "beacon.unknown".into(),
            rejected_dir: PathBuf::from("kafka-rejected"),
            batch_max: 2000,
            idle_wait: Duration::from_millis(50),
            backlog_wait: Duration::from_millis(5),
            gather: Duration::from_millis(20),
            replay_rate: 20_000.0,
            replay_burst: 2_000.0,
            probe_chunk: 100,
            probe_interval: Duration::from_secs(5),
            replay_buffer_share: 0.5,
            replay_message_bytes: 512,
            buffer_messages: 100_000,
            buffer_kbytes: 1_048_576,
        }
    }
}

impl KafkaConfig {
    /// How many replayed messages librdkafka may hold at once.
    fn replay_room(&self) -> u64 {
        let by_bytes = self.buffer_kbytes * 1024 / self.replay_message_bytes.max(1);
        (self.buffer_messages.min(by_bytes) as f64 * self.replay_buffer_share) as u64
    }
}

/// Which producer a message went through, and why: its delivery report says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Live traffic while up: the producer that reports failures only.
    Fast,
    /// Live traffic while down: the producer that reports every delivery.
    Live,
    /// The spool's replay (and probes): the producer that reports every delivery.
    Replay,
}

/// One message handed to a producer. The value is the event's JSON without its newline;
/// `id`, the event's id read from it (`envelope::event_id`), goes in the header `id`.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// Flavor index: the topic is `KafkaConfig::topics[topic]`, or `unknown_topic`.
    pub topic: u16,
    pub value: &'a [u8],
    pub key: Option<&'a [u8]>,
    pub ts_ms: i64,
    pub id: Option<&'a [u8]>,
}

impl<'a> Message<'a> {
    /// The message of an event line (its newline dropped).
    pub fn new(topic: u16, line: &'a [u8], key: Option<&'a [u8]>, ts_ms: i64) -> Message<'a> {
        let value = line.strip_suffix(b"\n").unwrap_or(line);
        Message {
            topic,
            value,
            key,
            ts_ms,
            id: crate::envelope::event_id(value),
        }
    }
}

/// Why a producer did not take a message (python/beacon/backends/kafka/delivery.py sorts
/// confluent-kafka's exceptions into these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// librdkafka's buffer is full (BufferError): give it time, then spool.
    Full,
    /// The message itself can never be produced (too large): the rejected log.
    Reject(String),
    /// The producer cannot take messages now: spool and mark Kafka down.
    Down(String),
    /// The producer is done for (fatal idempotence error): spool, replace the producers.
    Fatal(String),
    /// An unexpected error: spool what is left and let the caller raise it.
    Abort,
}

/// Where messages go: confluent-kafka in production, a fake in tests.
pub trait Producer {
    fn produce(&mut self, route: Route, msg: &Message<'_>) -> Result<(), Refusal>;
}

/// A message a delivery report hands back.
#[derive(Clone, Copy, Debug)]
pub struct Returned<'a> {
    pub topic: &'a str,
    pub value: &'a [u8],
    pub key: Option<&'a [u8]>,
    /// The message's timestamp; negative when the report has none (a failed delivery).
    pub ts_ms: i64,
}

/// A line for the `kafka` log (python logging levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info = 20,
    Warning = 30,
    Error = 40,
}

/// The failures-only producer's bookkeeping: its deliveries are never reported, so they
/// are `handed - reported - still in librdkafka` (reported: failures and refusals).
#[derive(Default)]
struct Fast {
    handed: u64,
    reported: u64,
    delivered: u64,
}

struct State {
    cfg: KafkaConfig,
    /// Flavor name by topic (the first flavor of a shared topic), for spooling a failed
    /// delivery.
    flavor_of: HashMap<String, String>,
    rejected: RejectedLog,
    up: bool,
    /// The producers must be replaced (a fatal error).
    fatal: bool,
    last_error: String,
    last_pop: Option<Instant>,
    /// Taken off the queue, refused for a full librdkafka: handed first next time.
    stalled: VecDeque<SharedEvent>,
    /// The stalled batch already had its time to wait for room.
    stall_retried: bool,
    /// Taken off the queue, not handed over, to be spooled (`spill()`, without the GIL).
    spill: Vec<SharedEvent>,
    /// Size of the last live batch (a full one means live traffic is busy).
    last_batch: usize,
    fast: Fast,
    /// Handed to the reporting producer, not yet reported.
    reported_outstanding: u64,
    /// Per flavor: handed, returned, confirmed delivered.
    fates: Fates,
    replay: Replay,
    spool_failing: bool,
}

pub struct KafkaSink {
    pub backend: Arc<Backend>,
    state: Mutex<State>,
    notes: Mutex<Vec<(Level, String)>>,
}

impl KafkaSink {
    pub fn new(backend: Arc<Backend>, cfg: KafkaConfig) -> KafkaSink {
        let sink = KafkaSink {
            backend,
            state: Mutex::new(State {
                flavor_of: HashMap::new(),
                rejected: RejectedLog::new(cfg.rejected_dir.clone()),
                cfg: KafkaConfig::default(),
                up: true,
                fatal: false,
                last_error: String::new(),
                last_pop: None,
                stalled: VecDeque::new(),
                stall_retried: false,
                spill: Vec::new(),
                last_batch: 0,
                fast: Fast::default(),
                reported_outstanding: 0,
                fates: Fates::default(),
                replay: Replay::new(),
                spool_failing: false,
            }),
            notes: Mutex::new(Vec::new()),
        };
        sink.configure(cfg);
        sink
    }

    /// Sets the topics, the rejected log's directory and librdkafka's limits.
    pub fn configure(&self, cfg: KafkaConfig) {
        let mut st = self.lock();
        st.rejected = RejectedLog::new(cfg.rejected_dir.clone());
        st.cfg = cfg;
        self.index_topics(&mut st);
    }

    /// Topics by slot (`Event::flavor`): a reload appends slots before their first event
    /// is offered (rust/src/ingest/settings.rs).
    pub fn set_topics(&self, topics: Vec<String>) {
        let mut st = self.lock();
        st.cfg.topics = topics;
        self.index_topics(&mut st);
    }

    fn index_topics(&self, st: &mut State) {
        st.flavor_of.clear();
        for (i, topic) in st.cfg.topics.iter().enumerate() {
            let name = self.backend.flavor_name(i as u16).to_string();
            st.flavor_of.entry(topic.clone()).or_insert(name);
        }
    }

    pub fn config(&self) -> KafkaConfig {
        self.lock().cfg.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counters(&self) -> &Counters {
        &self.backend.counters
    }

    /// Log lines since the last call, oldest first.
    pub fn take_notes(&self) -> Vec<(Level, String)> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn note(&self, level: Level, text: String) {
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((level, text));
    }

    /// The producers failed fatally and must be replaced (by the feeder).
    pub fn needs_new_producers(&self) -> bool {
        self.lock().fatal
    }

    /// Events waiting for Kafka in memory: the queue and a stalled batch.
    pub fn buffered(&self) -> usize {
        self.backend.queue.len() + self.lock().stalled.len()
    }

    /// Kafka is down: spool instead, route live traffic through the reporting producer.
    /// Notes it when it was up or the error changed (and `quiet` is false).
    fn down(&self, st: &mut State, level: Level, what: &str, error: &str, quiet: bool) {
        if (st.up || st.last_error != error) && !quiet {
            self.note(level, format!("{what} ({error}), spooling"));
        }
        st.up = false;
        st.last_error = error.to_owned();
        self.counters().set_up(false);
    }

    /// Messages handed to librdkafka and not yet known delivered or reported.
    fn in_flight(st: &State) -> u64 {
        st.fast.handed - st.fast.reported - st.fast.delivered + st.reported_outstanding
    }

    /// Publishes the gauges `/stats` reads: in librdkafka, taken off the queue.
    fn publish(&self, st: &State) {
        let c = self.counters();
        Counters::set(&c.in_flight, Self::in_flight(st));
        Counters::set(&c.held, (st.stalled.len() + st.spill.len()) as u64);
    }

    /// Spools events taken off the queue (first time: counted as spooled); notes a spool
    /// that stops taking them.
    fn spool_events(&self, st: &mut State, events: &[SharedEvent]) {
        let dropped = Counters::get(&self.counters().dropped);
        self.backend.spool_events(events);
        self.check_spool(st, dropped);
    }

    /// Notes the first of a run of spool write failures (`dropped` moved since `before`).
    fn check_spool(&self, st: &mut State, before: u64) {
        let lost = Counters::get(&self.counters().dropped) - before;
        if lost > 0 && !st.spool_failing {
            self.note(
                Level::Error,
                format!("spool write failed, {lost} messages dropped"),
            );
        }
        st.spool_failing = lost > 0;
    }
}
