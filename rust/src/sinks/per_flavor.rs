//! Loss accounting per flavor for one backend: where each flavor's events ended, in fixed
//! rows of Relaxed atomics indexed by flavor (docs/architecture.md, "Loss accounting").
//!
//! The rows have room for [`MAX_FLAVORS`] flavors (python/beacon/config/load.py refuses
//! more), so that flavors appended at run time find a slot without a lock or an
//! allocation; one more slot, [`OTHER`], takes whatever has no configured flavor: spool
//! records of flavors no longer configured, torn spool lines, indices past the end.
//!
//! What is exact when (each backend's own figures stay exact at all times):
//! accepted, rejected, dropped, spooled, spool_pending and recovered are exact per flavor;
//! written (file) is exact; Kafka's delivered is exact whenever librdkafka holds none of
//! the backend's messages (`in_flight` = 0) and a lower bound meanwhile (deliveries through
//! the failures-only producer are never reported one by one). The queue and librdkafka
//! are not split by flavor, so per flavor, at any quiet moment (the backend's `buffered`
//! and `in_flight` are 0):
//!
//! ```text
//! recovered + accepted = delivered (written) + rejected + dropped + spool_pending
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// Flavors a backend keeps figures for (the config check's limit).
pub const MAX_FLAVORS: usize = 256;
/// The slot of events without a configured flavor; `/stats` key [`OTHER_KEY`].
pub const OTHER: usize = MAX_FLAVORS;
/// `/stats` key and `flavor` label of [`OTHER`]: not a valid flavor name.
pub const OTHER_KEY: &str = "(other)";
const SLOTS: usize = MAX_FLAVORS + 1;

/// One figure for every flavor. Aligned so that the request path's row (accepted) shares
/// no cache line with the worker's rows.
#[repr(align(128))]
pub struct Row([AtomicU64; SLOTS]);

impl Default for Row {
    fn default() -> Self {
        Row(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Row {
    pub fn add(&self, slot: usize, n: u64) {
        if n > 0 {
            self.0[slot.min(OTHER)].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn sub(&self, slot: usize, n: u64) {
        if n > 0 {
            self.0[slot.min(OTHER)].fetch_sub(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, slot: usize) -> u64 {
        self.0[slot.min(OTHER)].load(Ordering::Relaxed)
    }

    /// A gauge's value, 0 if taking ran ahead of adding (a spool segment whose removal
    /// failed is replayed again), as the backend's own `spool_pending` saturates.
    pub fn gauge(&self, slot: usize) -> u64 {
        (self.get(slot) as i64).max(0) as u64
    }
}

/// Every per-flavor figure of one backend.
#[derive(Default)]
pub struct PerFlavor {
    /// Handed to the backend by the request path (queued, or spooled as overflow).
    pub accepted: Row,
    /// Written to the daily file (file) or acknowledged by Kafka (see the module doc).
    pub delivered: Row,
    pub rejected: Row,
    pub dropped: Row,
    /// Written to the spool the first time.
    pub spooled: Row,
    /// Gauge: lines in the spool not yet taken by a replay (counted under the spool's lock).
    pub spool_pending: Row,
    /// Spool lines an earlier run left, found at start.
    pub recovered: Row,
}

/// One flavor's figures, read once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlavorSnapshot {
    pub accepted: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub dropped: u64,
    pub spooled: u64,
    pub spool_pending: u64,
    pub recovered: u64,
}

impl FlavorSnapshot {
    /// What came in less where it is, at a quiet moment (module doc): 0 when accounted.
    pub fn unaccounted(&self) -> i128 {
        let came = self.recovered + self.accepted;
        let are = self.delivered + self.rejected + self.dropped + self.spool_pending;
        i128::from(came) - i128::from(are)
    }

    fn is_empty(&self) -> bool {
        *self == FlavorSnapshot::default()
    }

    fn add(&mut self, o: &FlavorSnapshot) {
        self.accepted += o.accepted;
        self.delivered += o.delivered;
        self.rejected += o.rejected;
        self.dropped += o.dropped;
        self.spooled += o.spooled;
        self.spool_pending += o.spool_pending;
        self.recovered += o.recovered;
    }
}

impl PerFlavor {
    fn read(&self, slot: usize) -> FlavorSnapshot {
        FlavorSnapshot {
            accepted: self.accepted.get(slot),
            delivered: self.delivered.get(slot),
            rejected: self.rejected.get(slot),
            dropped: self.dropped.get(slot),
            spooled: self.spooled.get(slot),
            spool_pending: self.spool_pending.gauge(slot),
            recovered: self.recovered.get(slot),
        }
    }

    /// Each configured flavor's figures by name, then [`OTHER_KEY`]'s (every slot without
    /// a name folded in) when it has any.
    /// The rows by name, `names` by slot: the slots of one name (a reload gave a flavor
    /// a new topic, hence a new slot) are summed into one row.
    pub fn snapshot(&self, names: &[impl AsRef<str>]) -> Vec<(String, FlavorSnapshot)> {
        let named = names.len().min(MAX_FLAVORS);
        let mut out: Vec<(String, FlavorSnapshot)> = Vec::with_capacity(named + 1);
        for (i, n) in names[..named].iter().enumerate() {
            let row = self.read(i);
            match out.iter_mut().find(|(name, _)| name == n.as_ref()) {
                Some((_, sum)) => sum.add(&row),
                None => out.push((n.as_ref().to_owned(), row)),
            }
        }
        let mut other = FlavorSnapshot::default();
        (named..SLOTS).for_each(|slot| other.add(&self.read(slot)));
        if !other.is_empty() {
            out.push((OTHER_KEY.to_owned(), other));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_past_the_names_fold_into_other() {
        let p = PerFlavor::default();
        let names = vec!["a".to_owned(), "b".to_owned()];
        p.accepted.add(0, 3);
        p.delivered.add(0, 3);
        assert_eq!(
            p.snapshot(&names).len(),
            2,
            "no other row while it is empty"
        );
        p.recovered.add(OTHER, 2);
        p.dropped.add(7, 1); // a slot with no name
        p.delivered.add(usize::MAX, 1); // past the capacity: OTHER
        let snap = p.snapshot(&names);
        assert_eq!(snap[0].0, "a");
        assert_eq!(snap[0].1.unaccounted(), 0);
        assert_eq!(snap[2].0, OTHER_KEY);
        assert_eq!((snap[2].1.recovered, snap[2].1.dropped), (2, 1));
        assert_eq!(snap[2].1.unaccounted(), 0);
        p.spool_pending.sub(1, 1);
        assert_eq!(
            p.snapshot(&names)[1].1.spool_pending,
            0,
            "a gauge never wraps"
        );
    }

    #[test]
    fn the_request_paths_row_has_cache_lines_of_its_own() {
        let p = PerFlavor::default();
        let start = |r: &Row| r as *const Row as usize;
        assert_eq!(start(&p.accepted) % 128, 0);
        assert!(start(&p.delivered) >= start(&p.accepted) + std::mem::size_of::<Row>());
    }
}
