//! The per-backend stats schema: each figure a backend reports, declared once with its
//! `/stats` key, its Prometheus family, kind and help. `/stats` (JSON), `/metrics`
//! (python/beacon/admin/metrics.py builds the families from these rows) and `/healthz`
//! (python/beacon/admin/stats.py) read the rows; none of them names a backend figure itself.
//!
//! Loss accounting, per backend, at any quiet moment (no event between two places):
//!
//! ```text
//! recovered + accepted = delivered (written) + rejected + dropped
//!                        + buffered + in_flight + spool_pending
//! ```
//!
//! [`Snapshot::unaccounted`] is the difference; docs/architecture.md ("Loss accounting")
//! says where each event is counted on its way. The same per flavor ([`FLAVOR_STATS`],
//! `backends.<name>.flavors.<flavor>` in `/stats`), at a quiet moment (nothing buffered or
//! in flight): see `per_flavor.rs` for what is exact when.

use super::backend::{Backend, Counters};
use super::per_flavor::FlavorSnapshot;
use crate::clock::now_ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A figure's value: `/stats` shows it as an integer, a number or a boolean; `/metrics`
/// as a number (a flag is 0 or 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Count(u64),
    Seconds(f64),
    Flag(bool),
}

/// One row of the schema: of a backend (`S` = [`Snapshot`]) or of one flavor of it
/// ([`FlavorSnapshot`]).
pub struct Stat<S: 'static = Snapshot> {
    /// Key in the backend's `/stats` object (or its flavor's).
    pub key: &'static str,
    /// Prometheus family, without the `_total` a counter gets; label `backend` (and
    /// `flavor`).
    pub metric: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// The one backend that has it; None: every backend.
    pub only: Option<&'static str>,
    read: fn(&S) -> Value,
}

impl<S> Stat<S> {
    pub fn value(&self, snapshot: &S) -> Value {
        (self.read)(snapshot)
    }

    pub fn applies_to(&self, backend: &str) -> bool {
        match self.only {
            None => true,
            Some(only) => only == backend,
        }
    }
}

/// Every figure of one backend, read once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub accepted: u64,
    pub overflowed: u64,
    pub recovered: u64,
    pub delivered: u64,
    pub bytes: u64,
    pub spooled: u64,
    pub replayed: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub failed: u64,
    pub errors: u64,
    pub buffered: u64,
    pub in_flight: u64,
    pub spool_pending: u64,
    pub spool_bytes: u64,
    pub spool_age_s: f64,
    pub up: bool,
}

impl Snapshot {
    pub fn of(b: &Backend) -> Snapshot {
        let c = &b.counters;
        let get = Counters::get;
        let spool_age_s = match b.spool_gauges.oldest_ts_ms() {
            Some(ts) if b.spool_gauges.pending() > 0 => (now_ms() - ts).max(0) as f64 / 1000.0,
            _ => 0.0,
        };
        Snapshot {
            accepted: b.accepted(),
            overflowed: b.queue.full_count(),
            recovered: b.recovered,
            delivered: get(&c.delivered),
            bytes: get(&c.bytes),
            spooled: get(&c.spooled),
            replayed: get(&c.replayed),
            rejected: get(&c.rejected),
            dropped: get(&c.dropped),
            failed: get(&c.failed),
            errors: get(&c.errors),
            buffered: b.queue.len() as u64 + get(&c.held),
            in_flight: get(&c.in_flight),
            spool_pending: b.spool_pending(),
            spool_bytes: b.spool_gauges.bytes(),
            spool_age_s,
            up: c.is_up(),
        }
    }

    /// Events that came in (`recovered + accepted`) less every place an event can be
    /// now: 0 when every event is accounted for.
    pub fn unaccounted(&self) -> i128 {
        let came = self.recovered + self.accepted;
        let are = self.delivered
            + self.rejected
            + self.dropped
            + self.buffered
            + self.in_flight
            + self.spool_pending;
        i128::from(came) - i128::from(are)
    }

    /// The rows that apply to `backend`, with their values.
    pub fn rows(&self, backend: &str) -> impl Iterator<Item = (&'static Stat, Value)> + '_ {
        let backend = backend.to_owned();
        STATS
            .iter()
            .filter(move |s| s.applies_to(&backend))
            .map(move |s| (s, (s.read)(self)))
    }
}

/// Each flavor's figures of one backend, read once: configured flavors by name, then
/// `(other)` when it has any (`per_flavor.rs`).
pub fn flavor_snapshots(b: &Backend) -> Vec<(String, FlavorSnapshot)> {
    b.per_flavor.snapshot(&b.flavor_names())
}

/// The per-flavor rows that apply to `backend`, with their values for one flavor.
pub fn flavor_rows<'a>(
    f: &'a FlavorSnapshot,
    backend: &'a str,
) -> impl Iterator<Item = (&'static Stat<FlavorSnapshot>, Value)> + 'a {
    FLAVOR_STATS
        .iter()
        .filter(move |s| s.applies_to(backend))
        .map(move |s| (s, (s.read)(f)))
}

const fn counter<S>(
    key: &'static str,
    metric: &'static str,
    only: Option<&'static str>,
    help: &'static str,
    read: fn(&S) -> Value,
) -> Stat<S> {
    Stat {
        key,
        metric,
        kind: Kind::Counter,
        help,
        only,
        read,
    }
}

const fn gauge<S>(
    key: &'static str,
    metric: &'static str,
    help: &'static str,
    read: fn(&S) -> Value,
) -> Stat<S> {
    Stat {
        key,
        metric,
        kind: Kind::Gauge,
        help,
        only: None,
        read,
    }
}

const FILE: Option<&str> = Some("file");
const KAFKA: Option<&str> = Some("kafka");

/// The schema, in `/stats` order.
pub static STATS: &[Stat] = &[
    counter(
        "accepted",
        "beacon_backend_accepted_events",
        None,
        "Events the request path handed the backend.",
        |s| Value::Count(s.accepted),
    ),
    counter(
        "written",
        "beacon_backend_written_events",
        FILE,
        "Events written to their daily file (including replayed ones).",
        |s| Value::Count(s.delivered),
    ),
    counter(
        "delivered",
        "beacon_backend_delivered_events",
        KAFKA,
        "Events Kafka acknowledged (including replayed ones).",
        |s| Value::Count(s.delivered),
    ),
    counter(
        "bytes",
        "beacon_backend_written_bytes",
        FILE,
        "Bytes written to the daily files.",
        |s| Value::Count(s.bytes),
    ),
    counter(
        "spooled",
        "beacon_backend_spooled_events",
        None,
        "Events written to the spool: queue full, store down, or a failed delivery.",
        |s| Value::Count(s.spooled),
    ),
    counter(
        "overflowed",
        "beacon_backend_overflowed_events",
        None,
        "Events spooled by the request path because the queue was full (part of spooled).",
        |s| Value::Count(s.overflowed),
    ),
    counter(
        "replayed",
        "beacon_backend_replayed_events",
        None,
        "Events from the spool that reached the store (part of written or delivered).",
        |s| Value::Count(s.replayed),
    ),
    counter(
        "rejected",
        "beacon_backend_rejected_events",
        KAFKA,
        "Events Kafka refused for good, kept in <spool_dir>/kafka-rejected/.",
        |s| Value::Count(s.rejected),
    ),
    counter(
        "dropped",
        "beacon_backend_dropped_events",
        None,
        "Events lost: the spool or the rejected log could not be written, or a torn spool line.",
        |s| Value::Count(s.dropped),
    ),
    counter(
        "failed",
        "beacon_backend_failed_deliveries",
        KAFKA,
        "Deliveries that failed after librdkafka's retries; each event went to the spool.",
        |s| Value::Count(s.failed),
    ),
    counter(
        "errors",
        "beacon_backend_errors",
        FILE,
        "File writes, opens, syncs and spool reads that failed.",
        |s| Value::Count(s.errors),
    ),
    counter(
        "recovered",
        "beacon_backend_recovered_events",
        None,
        "Spool lines an earlier run left, found at start.",
        |s| Value::Count(s.recovered),
    ),
    gauge(
        "buffered",
        "beacon_backend_buffered_events",
        "Events in the backend's queue, or taken from it and waiting for room in the store.",
        |s| Value::Count(s.buffered),
    ),
    gauge(
        "in_flight",
        "beacon_backend_in_flight_events",
        "Events handed to the store and not yet landed (file buffers; librdkafka's queue).",
        |s| Value::Count(s.in_flight),
    ),
    gauge(
        "spool_pending",
        "beacon_backend_spool_pending_events",
        "Events waiting in the spool for replay.",
        |s| Value::Count(s.spool_pending),
    ),
    gauge(
        "spool_bytes",
        "beacon_backend_spool_bytes",
        "Bytes of the spool on disk (with its write buffer): what spool_high_water_bytes is \
         compared with.",
        |s| Value::Count(s.spool_bytes),
    ),
    gauge(
        "spool_age_s",
        "beacon_backend_spool_age_seconds",
        "Age of the oldest event in the spool (0 when it is empty).",
        |s| Value::Seconds(s.spool_age_s),
    ),
    gauge(
        "up",
        "beacon_backend_up",
        "1 while the store takes events, 0 while they go to the spool.",
        |s| Value::Flag(s.up),
    ),
];

/// The per-flavor schema, in `/stats` order: the figures of the accounting identity, each
/// under the key (and kind) the backend's own has; families with labels `backend` and
/// `flavor`.
pub static FLAVOR_STATS: &[Stat<FlavorSnapshot>] = &[
    counter(
        "accepted",
        "beacon_backend_flavor_accepted_events",
        None,
        "Events of the flavor the request path handed the backend.",
        |f| Value::Count(f.accepted),
    ),
    counter(
        "written",
        "beacon_backend_flavor_written_events",
        FILE,
        "Events of the flavor written to their daily file.",
        |f| Value::Count(f.delivered),
    ),
    counter(
        "delivered",
        "beacon_backend_flavor_delivered_events",
        KAFKA,
        "Events of the flavor Kafka surely acknowledged: exact while nothing is in flight, \
         behind by at most in_flight meanwhile.",
        |f| Value::Count(f.delivered),
    ),
    counter(
        "rejected",
        "beacon_backend_flavor_rejected_events",
        KAFKA,
        "Events of the flavor Kafka refused for good (the rejected log).",
        |f| Value::Count(f.rejected),
    ),
    counter(
        "dropped",
        "beacon_backend_flavor_dropped_events",
        None,
        "Events of the flavor lost (spool or rejected log unwritable, torn spool line).",
        |f| Value::Count(f.dropped),
    ),
    counter(
        "spooled",
        "beacon_backend_flavor_spooled_events",
        None,
        "Events of the flavor written to the spool (the first time).",
        |f| Value::Count(f.spooled),
    ),
    counter(
        "recovered",
        "beacon_backend_flavor_recovered_events",
        None,
        "Spool lines of the flavor an earlier run left, found at start.",
        |f| Value::Count(f.recovered),
    ),
    gauge(
        "spool_pending",
        "beacon_backend_flavor_spool_pending_events",
        "Events of the flavor waiting in the spool for replay.",
        |f| Value::Count(f.spool_pending),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_metrics_are_unique_and_counters_cover_every_ending() {
        for (i, a) in STATS.iter().enumerate() {
            for b in &STATS[i + 1..] {
                assert_ne!(a.key, b.key);
                assert_ne!(a.metric, b.metric);
            }
        }
        // Each place the accounting identity names is a row for every backend.
        for backend in ["file", "kafka"] {
            let keys: Vec<_> = Snapshot::default()
                .rows(backend)
                .map(|(s, _)| s.key)
                .collect();
            let done = if backend == "file" {
                "written"
            } else {
                "delivered"
            };
            for k in [
                "accepted",
                "recovered",
                done,
                "dropped",
                "buffered",
                "in_flight",
                "spool_pending",
            ] {
                assert!(keys.contains(&k), "{backend} lacks {k}");
            }
        }
    }

    #[test]
    fn flavor_rows_are_the_identitys_places_keyed_and_kinded_as_the_backends() {
        for (i, a) in FLAVOR_STATS.iter().enumerate() {
            for b in FLAVOR_STATS[i + 1..].iter() {
                assert_ne!(a.key, b.key);
                assert_ne!(a.metric, b.metric);
            }
            assert!(STATS.iter().all(|s| s.metric != a.metric));
            // The dashboard reads a key's kind from the backend rows.
            let same = STATS
                .iter()
                .find(|s| s.key == a.key)
                .expect("a backend row");
            assert_eq!((same.kind, same.only), (a.kind, a.only), "{}", a.key);
        }
        for (backend, done) in [("file", "written"), ("kafka", "delivered")] {
            let f = FlavorSnapshot::default();
            let keys: Vec<_> = flavor_rows(&f, backend).map(|(s, _)| s.key).collect();
            for k in ["accepted", "recovered", done, "dropped", "spool_pending"] {
                assert!(keys.contains(&k), "{backend} lacks {k}");
            }
        }
    }

    #[test]
    fn unaccounted_is_what_came_in_less_where_it_is() {
        let s = Snapshot {
            recovered: 3,
            accepted: 10,
            delivered: 6,
            rejected: 1,
            dropped: 1,
            buffered: 2,
            in_flight: 1,
            spool_pending: 1,
            ..Snapshot::default()
        };
        assert_eq!(s.unaccounted(), 1);
    }
}
