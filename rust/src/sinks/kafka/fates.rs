//! What became of each flavor's messages once handed to a producer, for the per-flavor
//! figures (sinks/per_flavor.rs). Kafka acknowledges the failures-only producer's messages
//! in bulk (`settle`), never one by one, so a flavor's deliveries are known only as a
//! bound: handed, less reported failed or refused, less whatever librdkafka still holds of
//! any flavor. Exact whenever librdkafka holds nothing; never ahead of the truth.

use crate::sinks::per_flavor::Row;

/// Per slot; kept under the sink's state lock.
#[derive(Default)]
pub(super) struct Fates {
    handed: Vec<u64>,
    /// Reported failed (spooled again) or refused for good after being handed.
    returned: Vec<u64>,
    /// Counted into the backend's per-flavor `delivered` so far.
    confirmed: Vec<u64>,
}

fn bump(v: &mut Vec<u64>, slot: usize, n: u64) {
    if v.len() <= slot {
        v.resize(slot + 1, 0);
    }
    v[slot] += n;
}

impl Fates {
    pub(super) fn handed(&mut self, slot: usize, n: u64) {
        bump(&mut self.handed, slot, n);
    }

    pub(super) fn returned(&mut self, slot: usize) {
        bump(&mut self.returned, slot, 1);
    }

    /// Counts into `delivered` what each flavor has surely delivered, with `in_flight`
    /// messages (of any flavor) still unreported.
    pub(super) fn confirm(&mut self, in_flight: u64, delivered: &Row) {
        self.confirmed.resize(self.handed.len(), 0);
        for (slot, &handed) in self.handed.iter().enumerate() {
            let returned = self.returned.get(slot).copied().unwrap_or(0);
            let sure = handed.saturating_sub(returned + in_flight);
            let before = self.confirmed[slot];
            if sure > before {
                delivered.add(slot, sure - before);
                self.confirmed[slot] = sure;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flavor_is_confirmed_only_as_far_as_librdkafka_may_hold_its_messages() {
        let row = Row::default();
        let mut f = Fates::default();
        f.handed(0, 10);
        f.handed(2, 5);
        f.returned(2);
        f.confirm(6, &row); // 6 unreported, of any flavor
        assert_eq!((row.get(0), row.get(1), row.get(2)), (4, 0, 0));
        f.confirm(9, &row); // never taken back
        assert_eq!(row.get(0), 4);
        f.confirm(0, &row);
        assert_eq!((row.get(0), row.get(2)), (10, 4));
    }
}
