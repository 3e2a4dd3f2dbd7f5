//! The spool's replay into Kafka. One segment at a time is held: it stays on disk until
//! every message of it is reported (delivered, spooled again, or rejected), so a crash
//! during its replay replays it again at the next start (at-least-once) instead of losing
//! it. While Kafka is up the replay runs at `replay_rate` (a token bucket, `replay_burst`
//! deep), within its share of librdkafka's buffer and at half speed while live traffic
//! fills whole batches; while down it hands `probe_chunk` messages every `probe_interval`
//! as a probe, whose first success marks Kafka up.

use super::{Handed, KafkaSink, Level, Message, Producer, Refusal, Route, State, UNKNOWN_FLAVOR};
use crate::sinks::backend::Counters;
use crate::sinks::spool::Segment;
use std::time::Instant;

pub(super) struct Replay {
    pub(super) held: Option<Held>,
    tokens: f64,
    clock: Instant,
    last_probe: Option<Instant>,
}

/// The segment being replayed.
pub(super) struct Held {
    seg: Segment,
    /// Flavor index of each record (`UNKNOWN_FLAVOR` for flavors no longer configured).
    topics: Vec<u16>,
    /// Records handed over (or refused for good) so far.
    pos: usize,
    /// Handed over, not yet reported.
    pub(super) outstanding: u64,
}

impl Held {
    fn done(&self) -> bool {
        self.pos >= self.seg.records.len()
    }

    /// Its lines that no longer wait in the spool: handed on, or torn.
    fn taken(&self) -> u64 {
        (self.pos + self.seg.corrupt.len()) as u64
    }
}

impl Replay {
    pub(super) fn new() -> Replay {
        Replay {
            held: None,
            tokens: 0.0,
            clock: Instant::now(),
            last_probe: None,
        }
    }

    /// A probe (or metadata probe) is allowed now; if so, it counts as made.
    pub(super) fn probe_now(&mut self, now: Instant, interval: std::time::Duration) -> bool {
        if self.last_probe.is_some_and(|t| now - t < interval) {
            return false;
        }
        self.last_probe = Some(now);
        true
    }
}

impl KafkaSink {
    /// A segment is held or the spool has lines waiting.
    pub(super) fn backlog(&self, st: &State) -> bool {
        st.replay.held.is_some() || self.backend.spool_gauges.pending() > 0
    }

    /// How many spooled messages to hand over now (0: none).
    pub fn replay_budget(&self, now: Instant) -> usize {
        let mut st = self.lock();
        if !self.backlog(&st) {
            return 0;
        }
        let st = &mut *st;
        let (cfg, r) = (&st.cfg, &mut st.replay);
        let refill = (now - r.clock).as_secs_f64() * cfg.replay_rate;
        r.tokens = (r.tokens + refill).min(cfg.replay_burst);
        r.clock = now;
        if st.up {
            let room = cfg.replay_room().saturating_sub(st.reported_outstanding);
            let budget = (r.tokens.max(0.0) as u64).min(room) as usize;
            // Live traffic fills whole batches: it keeps the larger share.
            return if st.last_batch >= cfg.batch_max {
                budget / 2
            } else {
                budget
            };
        }
        if st.reported_outstanding == 0 && r.probe_now(now, cfg.probe_interval) {
            return cfg.probe_chunk;
        }
        0
    }

    /// Takes the oldest spool segment for replay unless one is held (disk I/O: call it
    /// without the GIL). True when the held segment has messages left to hand over.
    pub fn load_segment(&self) -> bool {
        if let Some(h) = &self.lock().replay.held {
            return !h.done();
        }
        if self.backend.spool_gauges.pending() == 0 {
            return false;
        }
        let seg = match self.backend.spool().take_oldest() {
            Ok(Some(seg)) => seg,
            Ok(None) => return false,
            Err(e) => {
                self.note(Level::Error, format!("cannot read the spool: {e}"));
                return false;
            }
        };
        self.backend.drop_torn(&seg);
        let topics: Vec<u16> = (seg.records.iter())
            .map(|r| self.backend.flavor_index(&r.flavor))
            .collect();
        let mut st = self.lock();
        let unknown = topics.iter().filter(|&&t| t == UNKNOWN_FLAVOR).count();
        let to_unknown = match unknown {
            0 => String::new(),
            n => format!(" ({n} of unconfigured flavors to {})", st.cfg.unknown_topic),
        };
        let n = seg.records.len();
        self.note(
            Level::Info,
            format!("replaying {n} spooled messages{to_unknown}"),
        );
        let held = Held {
            seg,
            topics,
            pos: 0,
            outstanding: 0,
        };
        Counters::set(&self.counters().replay_taken, held.taken());
        let ready = !held.done();
        st.replay.held = Some(held);
        ready
    }

    /// Hands up to `budget` messages of the held segment to `producer`; returns how many
    /// it took. What librdkafka does not take stays in memory for the next call; a
    /// refusal marks Kafka down.
    pub fn replay_chunk(&self, budget: usize, producer: &mut impl Producer) -> (usize, Handed) {
        let Some(mut held) = self.lock().replay.held.take() else {
            return (0, Handed::All);
        };
        let start = held.pos;
        let end = (start + budget).min(held.seg.records.len());
        let mut handed = 0u64;
        let mut by_slot = Vec::new();
        let mut stop = None;
        while held.pos < end {
            let rec = &held.seg.records[held.pos];
            let msg = Message::new(
                held.topics[held.pos],
                &rec.line,
                rec.key.as_deref(),
                rec.ts_ms,
            );
            let slot = self.backend.slot(held.topics[held.pos]);
            match producer.produce(Route::Replay, &msg) {
                Ok(()) => {
                    handed += 1;
                    by_slot.push(slot);
                }
                Err(Refusal::Reject(error)) => self.reject_unsent(&msg, &error),
                Err(refusal) => {
                    stop = Some(refusal);
                    break;
                }
            }
            self.backend.taken_from_spool(slot, 1);
            held.pos += 1;
        }
        let mut st = self.lock();
        by_slot.into_iter().for_each(|s| st.fates.handed(s, 1));
        held.outstanding += handed;
        st.reported_outstanding += handed;
        st.replay.tokens -= (held.pos - start) as f64;
        Counters::set(&self.counters().replay_taken, held.taken());
        st.replay.held = Some(held);
        let outcome = self.replay_stopped(&mut st, stop);
        self.publish(&st);
        (handed as usize, outcome)
    }

    fn replay_stopped(&self, st: &mut State, stop: Option<Refusal>) -> Handed {
        match stop {
            None => Handed::All,
            Some(Refusal::Full) => {
                let why = "producer buffer full during the replay";
                self.down(st, Level::Warning, "librdkafka refused", why, false);
                Handed::Full
            }
            Some(Refusal::Down(error)) => {
                self.down(st, Level::Error, "produce failed", &error, false);
                Handed::Full
            }
            Some(Refusal::Fatal(error)) => {
                st.fatal = true;
                self.down(st, Level::Error, "produce failed", &error, false);
                Handed::Full
            }
            Some(Refusal::Reject(_)) | Some(Refusal::Abort) => Handed::Aborted,
        }
    }

    /// At shutdown: the held segment's messages not yet handed over go back to the spool;
    /// the segment is released once those handed over are reported.
    pub fn end_replay(&self) {
        let mut st = self.lock();
        let Some(held) = st.replay.held.as_mut() else {
            return;
        };
        let before = Counters::get(&self.counters().dropped);
        for rec in &held.seg.records[held.pos..] {
            let key = rec.key.as_deref();
            self.backend
                .append_returned(&rec.flavor, rec.ts_ms, key, &rec.line, false);
            let slot = self.backend.slot_of_name(&rec.flavor);
            self.backend.taken_from_spool(slot, 1);
        }
        held.pos = held.seg.records.len();
        Counters::set(&self.counters().replay_taken, held.taken());
        self.check_spool(&mut st, before);
    }

    /// Removes the held segment from disk once every message of it is reported.
    pub(super) fn release_replayed(&self, st: &mut State) {
        match &st.replay.held {
            Some(h) if h.done() && h.outstanding == 0 => {}
            _ => return,
        }
        let held = st.replay.held.take().expect("checked above");
        if let Err(e) = self.backend.spool().remove(held.seg) {
            let text = format!("cannot remove a replayed spool segment ({e}): it will replay");
            self.note(Level::Error, text);
        }
        Counters::set(&self.counters().replay_taken, 0);
    }

    /// At stop: a held segment whose messages are not all reported stays on disk.
    pub fn close(&self) {
        let st = self.lock();
        if let Some(h) = &st.replay.held {
            let text = format!(
                "{} replayed messages unreported; their spool segment stays for the next \
                 start (some may arrive twice)",
                h.outstanding
            );
            self.note(Level::Warning, text);
        }
    }
}
