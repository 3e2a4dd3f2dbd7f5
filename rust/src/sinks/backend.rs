//! What the request path sees of a backend: its queue, its overflow spool, and every
//! counter of the backend, per flavor too (`per_flavor.rs`). The backend's own worker (the file writer thread, the Kafka
//! sink driven by its feeder thread) drains the queue and keeps the counters; `/stats`,
//! `/metrics` and `/healthz` read them through [`super::stats`].

use super::per_flavor::{PerFlavor, MAX_FLAVORS, OTHER};
use super::spool::{Segment, Spool, SpoolGauges};
use crate::clock::Day;
use crate::event::{Event, SharedEvent};
use crate::ring::BackendQueue;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// Every counter and gauge of one backend, each kept here and nowhere else
/// (docs/architecture.md, "Where each counter is kept"). Relaxed everywhere: statistics,
/// with no ordering to other data; a reader may see one counter a moment ahead of another.
#[derive(Default)]
pub struct Counters {
    /// Events that reached the store: written to their daily file, acknowledged by Kafka.
    pub delivered: AtomicU64,
    /// Events written to the spool (overflow, store down, failed delivery); an event that
    /// goes back to the spool after a failed replay is not counted again.
    pub spooled: AtomicU64,
    /// Delivered events that came from the spool (a part of `delivered`).
    pub replayed: AtomicU64,
    /// Events the store refused for good, kept in the rejected log (Kafka).
    pub rejected: AtomicU64,
    /// Events lost: neither the spool nor the rejected log could take them, or a torn
    /// spool line.
    pub dropped: AtomicU64,
    /// Deliveries that failed and went back to the spool (Kafka).
    pub failed: AtomicU64,
    /// Store operations that failed: writes, opens, syncs, spool reads (file).
    pub errors: AtomicU64,
    /// Bytes written to the store (file).
    pub bytes: AtomicU64,
    /// Gauge: events taken off the queue and not yet handed on (Kafka: a batch waiting
    /// for room in librdkafka).
    pub held: AtomicU64,
    /// Gauge: events handed to the store and not yet landed (file: write buffers; Kafka:
    /// librdkafka's queue, awaiting the broker's acknowledgement).
    pub in_flight: AtomicU64,
    /// Gauge: lines of the segment being replayed that no longer wait in the spool
    /// (handed on, spooled again, or torn); it stays on disk until all are reported.
    pub replay_taken: AtomicU64,
    /// Gauge: the store takes events (file: writes succeed; Kafka: deliveries succeed).
    pub up: AtomicBool,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(c: &AtomicU64, n: u64) {
        c.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn set(c: &AtomicU64, n: u64) {
        c.store(n, Ordering::Relaxed);
    }

    /// Sets `up`; returns what it was.
    pub fn set_up(&self, up: bool) -> bool {
        self.up.swap(up, Ordering::Relaxed)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

pub struct Backend {
    /// `file` or `kafka`: the key in `/stats` and the `backend` label in `/metrics`.
    pub name: &'static str,
    pub queue: BackendQueue,
    spool: Mutex<Spool>,
    /// The spool's figures, read without its lock.
    pub spool_gauges: Arc<SpoolGauges>,
    /// Spool lines an earlier run left, found at start.
    pub recovered: u64,
    pub counters: Counters,
    /// Flavor names by slot (`Event::flavor`), for spool records and file directories.
    /// A reload appends (rust/src/ingest/settings.rs); a slot never changes its name.
    flavors: RwLock<Vec<Arc<str>>>,
    /// `spool_high_water_bytes`: past it, the batch endpoint refuses batches (503).
    pub spool_high_water: Option<u64>,
    /// The same figures per flavor (those of the accounting identity), by slot.
    pub per_flavor: Box<PerFlavor>,
}

impl Backend {
    pub fn new(
        name: &'static str,
        capacity: usize,
        spool_dir: &Path,
        flavors: Vec<String>,
    ) -> io::Result<Backend> {
        let spool = Spool::open(spool_dir)?;
        let counters = Counters::default();
        counters.set_up(true);
        let per_flavor = Box::<PerFlavor>::default();
        let flavors: Vec<Arc<str>> = flavors.iter().map(|f| Arc::from(f.as_str())).collect();
        for (flavor, &n) in spool.recovered_by_flavor() {
            let slot = slot_of_name(&flavors, flavor);
            per_flavor.recovered.add(slot, n);
            per_flavor.spool_pending.add(slot, n);
        }
        Ok(Backend {
            name,
            queue: BackendQueue::new(capacity),
            spool_gauges: spool.gauges(),
            recovered: spool.recovered(),
            spool: Mutex::new(spool),
            counters,
            flavors: RwLock::new(flavors),
            spool_high_water: None,
            per_flavor,
        })
    }

    /// The spool holds more bytes than its high-water mark (one atomic load).
    pub fn over_high_water(&self) -> bool {
        self.spool_high_water
            .is_some_and(|mark| self.spool_gauges.bytes() > mark)
    }

    /// Hands an event to the backend without blocking on it: into the queue, or when the
    /// queue is full into the spool (the slow path: a short lock and a buffered write).
    pub fn offer(&self, ev: SharedEvent) {
        self.per_flavor.accepted.add(self.slot(ev.flavor), 1);
        if let Err(ev) = self.queue.push(ev) {
            self.spool_events(std::slice::from_ref(&ev));
        }
    }

    /// Events the request path handed this backend: queued, or spooled because the queue
    /// was full.
    pub fn accepted(&self) -> u64 {
        self.queue.pushed() + self.queue.full_count()
    }

    /// Appends events to the spool, counting each as spooled or (disk failure) dropped.
    pub fn spool_events(&self, events: &[SharedEvent]) {
        self.append_all(events, true);
    }

    /// Puts events taken from the spool back into it (their replay failed). They were
    /// counted as spooled the first time.
    pub fn respool_events(&self, events: &[SharedEvent]) {
        self.append_all(events, false);
    }

    fn append_all(&self, events: &[SharedEvent], first: bool) {
        let mut spool = self.spool();
        for ev in events {
            self.append(&mut spool, ev, first);
        }
    }

    /// Appends one event to a locked spool, counting it; false when the disk refused it
    /// (counted as dropped).
    pub fn append(&self, spool: &mut Spool, ev: &Event, first: bool) -> bool {
        let flavor = self.flavor_name(ev.flavor);
        let key = ev.key.as_deref();
        let done = spool.append(&flavor, ev.ts_ms, ev.day, key, &ev.line);
        self.count_spooled(done, first, self.slot(ev.flavor))
    }

    /// Appends a message the store handed back (a failed Kafka delivery), counting it as
    /// `append` does. `line` is the JSON object, with or without its newline.
    pub fn append_returned(
        &self,
        flavor: &str,
        ts_ms: i64,
        key: Option<&[u8]>,
        line: &[u8],
        first: bool,
    ) -> bool {
        // The day only matters to the file backend; its records keep the event's own.
        let mut spool = self.spool();
        let done = spool.append(flavor, ts_ms, Day(0), key, line);
        self.count_spooled(done, first, self.slot_of_name(flavor))
    }

    /// Counts one append, under the spool's lock: a replay cannot take the line (and
    /// count it out of `spool_pending`) before it is counted in.
    fn count_spooled(&self, done: io::Result<()>, first: bool, slot: usize) -> bool {
        let (c, f) = (&self.counters, &self.per_flavor);
        match done {
            Ok(()) => {
                f.spool_pending.add(slot, 1);
                if first {
                    Counters::add(&c.spooled, 1);
                    f.spooled.add(slot, 1);
                }
            }
            Err(_) => {
                Counters::add(&c.dropped, 1);
                f.dropped.add(slot, 1);
            }
        }
        done.is_ok()
    }

    /// Spool lines of a flavor a replay took (handed on, or spooled again).
    pub fn taken_from_spool(&self, slot: usize, n: u64) {
        self.per_flavor.spool_pending.sub(slot, n);
    }

    /// A taken segment's torn lines: dropped, each under its flavor.
    pub fn drop_torn(&self, seg: &Segment) {
        Counters::add(&self.counters.dropped, seg.corrupt.len() as u64);
        for flavor in &seg.corrupt {
            let slot = self.slot_of_name(flavor);
            self.per_flavor.dropped.add(slot, 1);
            self.taken_from_spool(slot, 1);
        }
    }

    /// The spool, for the worker's replay. A poisoned lock still holds a usable spool.
    pub fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spool lines waiting for replay: on disk, less what the replay in progress has
    /// already taken (those are counted where they went).
    pub fn spool_pending(&self) -> u64 {
        let taken = Counters::get(&self.counters.replay_taken);
        self.spool_gauges.pending().saturating_sub(taken)
    }

    /// The flavor names by slot, now.
    pub fn flavor_names(&self) -> Vec<Arc<str>> {
        self.names().clone()
    }

    /// Names the slots past the ones known (a reload added flavors or topics). Called
    /// before any event of a new slot is offered.
    pub fn set_flavors(&self, names: &[String]) {
        let mut known = self.flavors.write().unwrap_or_else(|p| p.into_inner());
        let new = names.iter().skip(known.len());
        known.extend(new.map(|n| Arc::from(n.as_str())));
    }

    fn names(&self) -> RwLockReadGuard<'_, Vec<Arc<str>>> {
        self.flavors.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Slot of a flavor name, for replaying records: its latest (where the config now
    /// sends it); unknown names map to `u16::MAX`.
    pub fn flavor_index(&self, name: &str) -> u16 {
        self.names()
            .iter()
            .rposition(|f| &**f == name)
            .map_or(u16::MAX, |i| i as u16)
    }

    /// The per-flavor row of an event's slot: [`OTHER`] past the rows there are. Rows are
    /// slots, so two slots of one name (a topic changed by a reload) are two rows, summed
    /// by name in the snapshot.
    pub fn slot(&self, index: u16) -> usize {
        usize::from(index).min(OTHER)
    }

    /// The per-flavor row of a flavor name (a spool record's): its first slot, [`OTHER`]
    /// for a name no slot has.
    pub fn slot_of_name(&self, name: &str) -> usize {
        slot_of_name(&self.names(), name)
    }

    /// Name of a slot; `unknown` past the end.
    pub fn flavor_name(&self, index: u16) -> Arc<str> {
        self.names()
            .get(index as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from("unknown"))
    }
}

fn slot_of_name(names: &[Arc<str>], name: &str) -> usize {
    (names.iter().take(MAX_FLAVORS))
        .position(|n| &**n == name)
        .unwrap_or(OTHER)
}
