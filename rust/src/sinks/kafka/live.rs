//! Live traffic: the gather window that batches the queue, and the hand-over of a batch to
//! the producer of the current route, with what librdkafka cannot take going to the spool.

use super::{KafkaSink, Level, Message, Producer, Refusal, Route};
use crate::event::SharedEvent;
use crate::sinks::backend::Counters;
use std::time::{Duration, Instant};

/// How often an empty queue is looked at for a first event.
const EMPTY_POLL: Duration = Duration::from_millis(1);

impl<'a> Message<'a> {
    /// An event as a message: its JSON without the file's trailing newline.
    pub fn of(ev: &'a SharedEvent) -> Message<'a> {
        Message::new(ev.flavor, &ev.line, ev.key.as_deref(), ev.ts_ms)
    }
}

/// How a hand-over ended. What it could not hand over goes to the spool with `spill()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handed {
    /// Every message was handed over (or filed as rejected).
    All,
    /// librdkafka's buffer is full: the caller gives it time (a `poll`) before the next
    /// hand-over, which starts with the messages left (or, the second time, spills them).
    Full,
    /// The producer refused; what was left is to be spilled.
    Spooled,
    /// An unexpected error; what was left is to be spilled, the caller raises it.
    Aborted,
}

impl KafkaSink {
    /// Live traffic's route now (see the module doc).
    pub fn route(&self) -> Route {
        if self.lock().up {
            Route::Fast
        } else {
            Route::Live
        }
    }

    /// The next live batch: a batch stalled on a full librdkafka at once, else up to
    /// `batch_max` events off the queue. Waits (call it without the GIL) until the gather
    /// window since the last batch has passed (or `batch_max` are queued when it looks),
    /// at most `idle_wait` (`backlog_wait` while replaying) for a first event. `drain`: no
    /// waiting.
    pub fn take_live(&self, drain: bool) -> Vec<SharedEvent> {
        let (deadline, gathered, max) = {
            let mut st = self.lock();
            if !st.stalled.is_empty() {
                return st.stalled.drain(..).collect();
            }
            let now = Instant::now();
            let (wait, gather) = if drain {
                (Duration::ZERO, Duration::ZERO)
            } else if st.up && self.backlog(&st) {
                (st.cfg.backlog_wait, st.cfg.gather)
            } else {
                (st.cfg.idle_wait, st.cfg.gather)
            };
            let gathered = st.last_pop.map_or(now, |t| t + gather);
            (now + wait, gathered, st.cfg.batch_max)
        };
        let queue = &self.backend.queue;
        loop {
            let queued = queue.len();
            let now = Instant::now();
            let ready = queued >= max || (queued > 0 && now >= gathered);
            if ready || now >= deadline {
                break;
            }
            // Without the GIL: the event loop runs meanwhile. With events queued, sleep to
            // the window's end in one go, not in 1 ms polls: each wake-up preempts the event
            // loop on a shared core (the feeder's context switches halved under wrk). A
            // queue reaching `batch_max` meanwhile waits too: at the 10 ms default that
            // takes 200k events/s. An empty queue is polled every `EMPTY_POLL`.
            let until = if queued > 0 {
                gathered.min(deadline)
            } else {
                now + EMPTY_POLL
            };
            std::thread::sleep(until.saturating_duration_since(now));
        }
        let mut batch = Vec::with_capacity(max.min(4096));
        queue.pop_batch(&mut batch, max);
        let mut st = self.lock();
        st.last_pop = Some(Instant::now());
        st.last_batch = batch.len();
        Counters::set(&self.counters().held, batch.len() as u64);
        batch
    }

    /// Hands `batch` to `producer` on `route`. Refused for good: the rejected log. A full
    /// librdkafka: the rest waits for the next hand-over, and if that one cannot hand a
    /// single message either, it is to be spilled. Any other refusal: the rest is to be
    /// spilled and Kafka is down. Call `spill()` next (it writes to disk: without the GIL).
    pub fn hand_live(
        &self,
        batch: Vec<SharedEvent>,
        route: Route,
        producer: &mut impl Producer,
    ) -> Handed {
        let mut handed = 0u64;
        let mut by_slot: Vec<(usize, u64)> = Vec::new(); // runs of one flavor
        let mut stop = None;
        let mut i = 0;
        while i < batch.len() {
            match producer.produce(route, &Message::of(&batch[i])) {
                Ok(()) => {
                    handed += 1;
                    let slot = self.backend.slot(batch[i].flavor);
                    match by_slot.last_mut() {
                        Some((s, n)) if *s == slot => *n += 1,
                        _ => by_slot.push((slot, 1)),
                    }
                }
                Err(Refusal::Reject(error)) => self.reject_unsent(&Message::of(&batch[i]), &error),
                Err(refusal) => {
                    stop = Some(refusal);
                    break;
                }
            }
            i += 1;
        }
        let mut st = self.lock();
        by_slot.into_iter().for_each(|(s, n)| st.fates.handed(s, n));
        match route {
            Route::Fast => st.fast.handed += handed,
            Route::Live | Route::Replay => st.reported_outstanding += handed,
        }
        let rest = &batch[i..];
        let outcome = match stop {
            None => {
                st.stall_retried = false;
                Handed::All
            }
            Some(Refusal::Full) if handed > 0 || !st.stall_retried => {
                st.stalled.extend(rest.iter().cloned());
                st.stall_retried = true;
                Handed::Full
            }
            Some(Refusal::Full) => {
                let error = format!("producer buffer full, {} messages", rest.len());
                self.down(&mut st, Level::Warning, "librdkafka refused", &error, false);
                st.stall_retried = false;
                st.spill.extend_from_slice(rest);
                Handed::Full
            }
            Some(Refusal::Down(error)) => {
                self.down(&mut st, Level::Error, "produce failed", &error, false);
                st.spill.extend_from_slice(rest);
                Handed::Spooled
            }
            Some(Refusal::Fatal(error)) => {
                st.fatal = true;
                self.down(&mut st, Level::Error, "produce failed", &error, false);
                st.spill.extend_from_slice(rest);
                Handed::Spooled
            }
            Some(Refusal::Reject(_)) | Some(Refusal::Abort) => {
                st.spill.extend_from_slice(rest);
                Handed::Aborted
            }
        };
        self.publish(&st);
        outcome
    }

    /// Writes what the last hand-over could not hand over to the spool.
    pub fn spill(&self) {
        let mut st = self.lock();
        if st.spill.is_empty() {
            return;
        }
        let events = std::mem::take(&mut st.spill);
        self.spool_events(&mut st, &events);
        self.publish(&st);
    }
}
