//! What the request path sees of a backend: its queue, its overflow spool and counters.
//! The backend's own worker (the Rust file writer, the Python Kafka feeder) drains it.

use crate::event::{Event, SharedEvent};
use crate::ring::BackendQueue;
use crate::spool::Spool;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Monotonic counters. Relaxed everywhere: statistics, no ordering with other data.
#[derive(Default)]
pub struct Counters {
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub dropped: AtomicU64,
    pub errors: AtomicU64,
    pub written: AtomicU64,
    pub bytes: AtomicU64,
    pub failed: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

pub struct Backend {
    pub name: &'static str,
    pub queue: BackendQueue,
    spool: Mutex<Spool>,
    pub counters: Counters,
    /// Flavor names by index, for spool records.
    pub flavors: Vec<String>,
}

impl Backend {
    pub fn new(
        name: &'static str,
        capacity: usize,
        spool_dir: &Path,
        flavors: Vec<String>,
    ) -> io::Result<Backend> {
        Ok(Backend {
            name,
            queue: BackendQueue::new(capacity),
            spool: Mutex::new(Spool::open(spool_dir)?),
            counters: Counters::default(),
            flavors,
        })
    }

    /// Hands an event to the backend without blocking on it: into the queue, or when the
    /// queue is full into the spool (the slow path: a short lock and a buffered write).
    pub fn offer(&self, ev: SharedEvent) {
        if let Err(ev) = self.queue.push(ev) {
            self.spool_events(std::slice::from_ref(&ev));
        }
    }

    /// Appends events to the spool, counting each as spooled or (disk failure) dropped.
    pub fn spool_events(&self, events: &[SharedEvent]) {
        self.append_all(events, true);
    }

    /// Puts events taken from the spool back into it (their replay failed). They were
    /// counted as spooled the first time, so `spooled - replayed` stays what is pending.
    pub fn respool_events(&self, events: &[SharedEvent]) {
        self.append_all(events, false);
    }

    fn append_all(&self, events: &[SharedEvent], count: bool) {
        let mut spool = self.spool();
        for ev in events {
            match self.append(&mut spool, ev) {
                Ok(()) if count => Counters::add(&self.counters.spooled, 1),
                Ok(()) => {}
                Err(_) => Counters::add(&self.counters.dropped, 1),
            }
        }
    }

    fn append(&self, spool: &mut Spool, ev: &Event) -> io::Result<()> {
        let flavor = self
            .flavors
            .get(ev.flavor as usize)
            .map_or("unknown", String::as_str);
        spool.append(flavor, ev.ts_ms, ev.day, ev.key.as_deref(), &ev.line)
    }

    /// The spool, for the worker's replay. A poisoned lock still holds a usable spool.
    pub fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Index of a flavor name, for replaying records; unknown names map to `u16::MAX`.
    pub fn flavor_index(&self, name: &str) -> u16 {
        self.flavors
            .iter()
            .position(|f| f == name)
            .map_or(u16::MAX, |i| i as u16)
    }
}
