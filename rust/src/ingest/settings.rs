//! What a config sets of the request path, and swapping a new config in while serving
//! (SIGHUP: README "Config reload", docs/architecture.md "Config reload").
//!
//! Flavors are matched by name. A kept flavor keeps its row (its counters and, when its
//! `dedup_param` is unchanged, its dedup store); a new one gets a new row; a removed one
//! keeps its row and counters but no Host or default leads to it any more.
//!
//! Events carry a *slot*, not a row: the index of a (flavor name, Kafka topic) pair the
//! backends know (the file directory by name, the topic by slot). Slots are never reused
//! for another pair, so an event queued before a reload still goes to the directory and
//! topic of the config it was received under; a flavor whose topic changes gets a new
//! slot (or its earlier slot for that topic back).

use super::{Batches, Ingest, RawLimits, EXTRA_COUNTERS, OUTCOMES};
use crate::flavor::{Flavor, HostMap};
use crate::privacy::Cidr;
use crate::query::Limits;
use std::collections::HashMap;

/// A backend destination: the flavor's name (its file directory) and its Kafka topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub topic: String,
}

/// Everything a config sets of the request path, flavors in the config's order.
pub struct Settings {
    /// Each flavor with its Kafka topic.
    pub flavors: Vec<(Flavor, String)>,
    /// Host → index into `flavors`.
    pub hosts: HostMap,
    pub paths: Vec<String>,
    /// The batch paths and `max_batch_events`.
    pub batch: Batches,
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub raw_limits: RawLimits,
    pub trusted_proxies: Vec<Cidr>,
    pub panic_target: Option<Box<[u8]>>,
}

/// Rows and slots stop below this: `u16::MAX` is the backends' "no such flavor".
const MAX_INDEX: usize = u16::MAX as usize - 1;

impl Ingest {
    /// The server's: empty, then configured, so start-up and a reload take one path.
    pub fn configured(s: Settings) -> Result<Ingest, String> {
        let mut ingest = Ingest::new(Vec::new(), HostMap::default(), Vec::new(), s.limits, 0);
        ingest.reconfigure(s)?;
        Ok(ingest)
    }

    /// The backend destinations by slot: what `Event::flavor` indexes.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The slot of a destination that is not a configured flavor (bad rows: their
    /// directory and topic), added once and kept like every slot.
    pub fn add_slot(&mut self, slot: Slot) -> Result<u16, String> {
        if let Some(i) = self.slots.iter().position(|s| *s == slot) {
            return Ok(i as u16);
        }
        if self.slots.len() >= MAX_INDEX {
            return Err(format!("more than {MAX_INDEX} flavor topics: restart"));
        }
        self.slots.push(slot);
        Ok((self.slots.len() - 1) as u16)
    }

    /// Swaps in a new config's request-path settings. Nothing changes when it fails (too
    /// many flavors or topics over the process's life). Called between requests: the
    /// event loop thread is the only one that handles requests, so the next request sees
    /// the new settings whole and none sees a mix.
    pub fn reconfigure(&mut self, s: Settings) -> Result<(), String> {
        let (rows, slots) = self.plan(&s.flavors)?;
        for ((mut flavor, _), (row, slot)) in s.flavors.into_iter().zip(rows.iter().zip(slots)) {
            flavor.slot = slot;
            let row = *row as usize;
            if row == self.flavors.len() {
                // The row of requests without a flavor stays last.
                self.counts
                    .insert(row, [0; OUTCOMES.len() + EXTRA_COUNTERS.len()]);
                self.flavors.push(flavor);
                continue;
            }
            let old = &mut self.flavors[row];
            if old.opts.dedup_param == flavor.opts.dedup_param {
                if let Some(mut store) = old.dedup.take() {
                    store.set_max_entries(flavor.opts.dedup_max_entries);
                    flavor.dedup = Some(store);
                }
            }
            *old = flavor;
        }
        // Removed flavors: their dedup memory goes now; rows and counters stay.
        for (i, f) in self.flavors.iter_mut().enumerate() {
            if !rows.contains(&(i as u16)) {
                f.dedup = None;
            }
        }
        self.hosts = s.hosts.remap(&rows);
        self.paths = s.paths.into_iter().map(|p| p.into_bytes().into()).collect();
        self.batch = s.batch;
        self.limits = s.limits;
        self.max_body_bytes = s.max_body_bytes;
        self.raw_limits = s.raw_limits;
        self.trusted_proxies = s.trusted_proxies;
        self.panic_target = s.panic_target;
        Ok(())
    }

    /// The row and slot of each new flavor; appends new slots to `self.slots` only once
    /// every one fits.
    fn plan(&mut self, flavors: &[(Flavor, String)]) -> Result<(Vec<u16>, Vec<u16>), String> {
        let mut known: HashMap<(&str, &str), usize> = (self.slots.iter().enumerate())
            .map(|(i, s)| ((&s.name[..], &s.topic[..]), i))
            .collect();
        let rows_now: HashMap<&str, usize> = (self.flavors.iter().enumerate())
            .map(|(i, f)| (&f.name[..], i))
            .collect();
        let (mut rows, mut slots, mut new_slots) = (Vec::new(), Vec::new(), Vec::new());
        let mut next_row = self.flavors.len();
        for (f, topic) in flavors {
            let row = rows_now.get(&f.name[..]).copied().unwrap_or_else(|| {
                next_row += 1;
                next_row - 1
            });
            let next_slot = self.slots.len() + new_slots.len();
            let slot = *known.entry((&f.name, topic)).or_insert_with(|| {
                new_slots.push(Slot {
                    name: f.name.clone(),
                    topic: topic.clone(),
                });
                next_slot
            });
            rows.push(row);
            slots.push(slot);
        }
        if next_row > MAX_INDEX || self.slots.len() + new_slots.len() > MAX_INDEX {
            return Err(format!(
                "more than {MAX_INDEX} flavors or flavor topics since start: restart to reload"
            ));
        }
        self.slots.extend(new_slots);
        let small = |v: Vec<usize>| v.into_iter().map(|i| i as u16).collect();
        Ok((small(rows), small(slots)))
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
