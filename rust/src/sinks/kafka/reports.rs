//! What became of each message: delivery reports (handed back by the callbacks of
//! python/beacon/backends/kafka/delivery.py), refusals before a message was taken, the
//! failures-only producer's deliveries (`settle`), and Kafka's up/down state. Every
//! counter of the backend moves here or in `live.rs` / `replay.rs`.

use super::rejected::{Filed, Rejected};
use super::{KafkaSink, Level, Message, Returned, Route, State};
use crate::clock::now_ms;
use crate::sinks::backend::Counters;
use std::time::Instant;

impl KafkaSink {
    /// A delivery report: Kafka acknowledged the message.
    pub fn delivered(&self, route: Route) {
        let mut st = self.lock();
        self.reported(&mut st, route);
        let c = self.counters();
        Counters::add(&c.delivered, 1);
        if route == Route::Replay {
            Counters::add(&c.replayed, 1);
        }
        if !st.up && route != Route::Fast {
            self.up(&mut st, "deliveries succeed again, backend up");
        }
        self.publish(&st);
    }

    /// A delivery report: the message failed after librdkafka's retries (or was purged at
    /// shutdown, `quiet`). It goes to the spool and Kafka is down.
    pub fn failed(&self, route: Route, msg: Returned<'_>, error: &str, quiet: bool) {
        let mut st = self.lock();
        self.reported(&mut st, route);
        Counters::add(&self.counters().failed, 1);
        let flavor = returned_flavor(&st, &msg).to_owned();
        st.fates.returned(self.backend.slot_of_name(&flavor));
        let ts = returned_ts_ms(&msg);
        let before = Counters::get(&self.counters().dropped);
        // A replayed message was counted as spooled the first time.
        let first = route != Route::Replay;
        (self.backend).append_returned(&flavor, ts, msg.key, msg.value, first);
        self.check_spool(&mut st, before);
        self.down(&mut st, Level::Warning, "delivery failed", error, quiet);
        self.publish(&st);
    }

    /// A delivery report: Kafka refused the message for good. It goes to the rejected log.
    pub fn rejected(&self, route: Route, msg: Returned<'_>, error: &str) {
        let mut st = self.lock();
        self.reported(&mut st, route);
        let slot = self.backend.slot_of_name(returned_flavor(&st, &msg));
        st.fates.returned(slot);
        let ts = returned_ts_ms(&msg);
        let r = Rejected {
            topic: msg.topic,
            key: msg.key,
            ts_ms: ts,
            error,
            event: msg.value,
        };
        self.file_rejected(&mut st, &r, slot);
        self.publish(&st);
    }

    /// librdkafka refused a message before taking it (larger than `message.max.bytes`).
    pub(super) fn reject_unsent(&self, msg: &Message<'_>, error: &str) {
        let mut st = self.lock();
        let topic = match st.cfg.topics.get(msg.topic as usize) {
            Some(t) => t.clone(),
            None => st.cfg.unknown_topic.clone(),
        };
        let r = Rejected {
            topic: &topic,
            key: msg.key,
            ts_ms: msg.ts_ms,
            error,
            event: msg.value,
        };
        self.file_rejected(&mut st, &r, self.backend.slot(msg.topic));
    }

    fn file_rejected(&self, st: &mut State, r: &Rejected<'_>, slot: usize) {
        let (c, f) = (self.counters(), &self.backend.per_flavor);
        match st.rejected.file(r) {
            Filed::Kept(note) => {
                Counters::add(&c.rejected, 1);
                f.rejected.add(slot, 1);
                if let Some(n) = note {
                    self.note(Level::Warning, n);
                }
            }
            Filed::Lost(note) => {
                Counters::add(&c.dropped, 1);
                f.dropped.add(slot, 1);
                if let Some(n) = note {
                    self.note(Level::Error, n);
                }
            }
        }
    }

    /// One report fewer to wait for on `route`.
    fn reported(&self, st: &mut State, route: Route) {
        match route {
            Route::Fast => st.fast.reported += 1,
            Route::Live | Route::Replay => {
                st.reported_outstanding = st.reported_outstanding.saturating_sub(1);
            }
        }
        if route == Route::Replay {
            if let Some(h) = st.replay.held.as_mut() {
                h.outstanding = h.outstanding.saturating_sub(1);
            }
        }
    }

    /// After each poll: counts the failures-only producer's deliveries (`fast_held`: what
    /// it still holds, `len(producer)`), releases a fully reported spool segment, and
    /// flushes what went to the spool.
    pub fn settle(&self, fast_held: u64) {
        let mut st = self.lock();
        let fast = &mut st.fast;
        // len() also counts a few queued events, so this can lag; it never runs ahead.
        let delivered = fast.handed.saturating_sub(fast.reported + fast_held);
        if delivered > fast.delivered {
            Counters::add(&self.counters().delivered, delivered - fast.delivered);
            fast.delivered = delivered;
        }
        let in_flight = Self::in_flight(&st);
        st.fates
            .confirm(in_flight, &self.backend.per_flavor.delivered);
        self.release_replayed(&mut st);
        self.publish(&st);
        drop(st);
        let _ = self.backend.spool().flush();
    }

    /// The feeder replaced the producers (after a fatal error; their messages were purged
    /// and reported, and `settle(0)` counted the rest as delivered).
    pub fn producers_replaced(&self) {
        let mut st = self.lock();
        st.fast = Default::default();
        st.fatal = false;
        self.publish(&st);
    }

    /// librdkafka's error callback: every broker is down.
    pub fn brokers_down(&self, error: &str) {
        let mut st = self.lock();
        self.down(&mut st, Level::Warning, "all brokers down", error, false);
    }

    /// librdkafka's error callback: a fatal error; the producers must be replaced.
    pub fn fatal_error(&self, error: &str) {
        let mut st = self.lock();
        st.fatal = true;
        self.down(&mut st, Level::Error, "fatal producer error", error, false);
    }

    /// Down with nothing to deliver, no delivery can mark Kafka up again: a metadata probe
    /// is due (every `probe_interval`).
    pub fn probe_due(&self, now: Instant) -> bool {
        let mut st = self.lock();
        if st.up || st.last_batch > 0 || st.reported_outstanding > 0 || self.backlog(&st) {
            return false;
        }
        let interval = st.cfg.probe_interval;
        st.replay.probe_now(now, interval)
    }

    /// The metadata probe succeeded.
    pub fn brokers_reachable(&self) {
        let mut st = self.lock();
        if !st.up {
            self.up(&mut st, "brokers reachable again (metadata probe)");
        }
    }

    fn up(&self, st: &mut State, why: &str) {
        st.up = true;
        st.last_error.clear();
        self.counters().set_up(true);
        self.note(Level::Info, why.to_owned());
    }
}

/// The flavor of a message a report handed back: the one its JSON names (a topic may be
/// shared by flavors), else its topic's first flavor.
fn returned_flavor<'a>(st: &'a State, msg: &Returned<'a>) -> &'a str {
    event_flavor(msg.value)
        .or_else(|| st.flavor_of.get(msg.topic).map(String::as_str))
        .unwrap_or("unknown")
}

/// The `flavor` an event's JSON names: it comes right after `ts` (and `id`), before any
/// parameter (docs/architecture.md, the event's shape); names need no escapes.
pub(super) fn event_flavor(value: &[u8]) -> Option<&str> {
    const LABEL: &[u8] = b",\"flavor\":\"";
    let head = &value[..value.len().min(256)];
    let at = head.windows(LABEL.len()).position(|w| w == LABEL)? + LABEL.len();
    let rest = &value[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// A returned message's timestamp: a failed delivery report carries none, and then the
/// event's `ts` is read from its JSON.
fn returned_ts_ms(msg: &Returned<'_>) -> i64 {
    if msg.ts_ms >= 0 {
        return msg.ts_ms;
    }
    event_ts_ms(msg.value).unwrap_or_else(now_ms)
}

/// The event's `ts` (ms since the epoch): its JSON starts with it; any other shape is
/// parsed in full.
pub(super) fn event_ts_ms(value: &[u8]) -> Option<i64> {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    let prefix = value.strip_prefix(br#"{"ts":""#).and_then(|rest| {
        let end = rest.iter().position(|&b| b == b'"')?;
        parse(std::str::from_utf8(&rest[..end]).ok()?)
    });
    let when = match prefix {
        Some(t) => t,
        None => {
            let v: serde_json::Value = serde_json::from_slice(value).ok()?;
            parse(v.get("ts")?.as_str()?)?
        }
    };
    Some(when.timestamp_millis())
}
