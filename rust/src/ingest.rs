//! The request path: one call per request turns the raw target and Host header into an
//! event and hands it to every enabled backend. Counts every outcome per flavor.

use crate::backend::Backend;
use crate::clock::now_ms;
use crate::envelope::{build_event, Refusal};
use crate::flavor::{Flavor, HostMap};
use crate::query::{Limits, QueryError};
use std::sync::Arc;

/// What became of one request; the HTTP layer maps it to a status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    Accepted = 0,
    Malformed = 1,
    TooLong = 2,
    NotFound = 3,
    UnknownHost = 4,
    MissingParam = 5,
}

pub const OUTCOMES: [&str; 6] = [
    "accepted",
    "malformed",
    "too_large",
    "not_found",
    "unknown_host",
    "missing_param",
];

impl Outcome {
    pub fn status(self) -> u16 {
        match self {
            Outcome::Accepted => 200,
            Outcome::TooLong => 414,
            Outcome::NotFound => 404,
            Outcome::Malformed | Outcome::UnknownHost | Outcome::MissingParam => 400,
        }
    }
}

pub struct Ingest {
    pub flavors: Vec<Flavor>,
    hosts: HostMap,
    paths: Vec<Box<[u8]>>,
    limits: Limits,
    pub backends: Vec<Arc<Backend>>,
    scratch: Vec<u8>,
    /// Injected receipt time for tests; `None` reads the system clock.
    pub fixed_clock_ms: Option<i64>,
    /// `counts[flavor][outcome]`; requests with no flavor are counted in the last row.
    counts: Vec<[u64; 6]>,
}

impl Ingest {
    pub fn new(flavors: Vec<Flavor>, hosts: HostMap, paths: Vec<String>, limits: Limits) -> Self {
        let rows = flavors.len() + 1;
        Ingest {
            flavors,
            hosts,
            paths: paths
                .into_iter()
                .map(|p| p.into_bytes().into_boxed_slice())
                .collect(),
            limits,
            backends: Vec::new(),
            scratch: Vec::with_capacity(1024),
            fixed_clock_ms: None,
            counts: vec![[0; 6]; rows],
        }
    }

    /// Handles one request target (`/path?query`) with its Host header.
    pub fn handle(&mut self, target: &[u8], host: Option<&[u8]>) -> Outcome {
        let (path, query) = split_target(target);
        let no_flavor = self.flavors.len();
        if !self.paths.iter().any(|p| **p == *path) {
            return self.count(no_flavor, Outcome::NotFound);
        }
        let Some(fi) = self.hosts.lookup(host) else {
            return self.count(no_flavor, Outcome::UnknownHost);
        };
        let ts = self.fixed_clock_ms.unwrap_or_else(now_ms);
        let flavor = &mut self.flavors[fi as usize];
        match build_event(fi, flavor, ts, query, &self.limits, &mut self.scratch) {
            Ok(ev) => {
                let ev = Arc::new(ev);
                for b in &self.backends {
                    b.offer(ev.clone());
                }
                self.count(fi as usize, Outcome::Accepted)
            }
            Err(Refusal::Malformed(QueryError::TooLong { .. })) => {
                self.count(fi as usize, Outcome::TooLong)
            }
            Err(Refusal::Malformed(_)) => self.count(fi as usize, Outcome::Malformed),
            Err(Refusal::MissingParam(_)) => self.count(fi as usize, Outcome::MissingParam),
        }
    }

    fn count(&mut self, row: usize, outcome: Outcome) -> Outcome {
        self.counts[row][outcome as usize] += 1;
        outcome
    }

    /// Per-flavor outcome counts, then the row for requests that matched no flavor.
    pub fn counts(&self) -> &[[u64; 6]] {
        &self.counts
    }
}

/// Splits `/path?query` (the query may be absent or empty).
fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{parse_tz, Stamper};
    use crate::query::Mode;

    fn ingest() -> Ingest {
        let f = Flavor::new(
            "site",
            Stamper::new(parse_tz("UTC").unwrap()),
            Mode::Flat,
            vec![],
            None,
        );
        let mut hosts = HostMap::new(None);
        hosts.insert("site.example", 0);
        Ingest::new(
            vec![f],
            hosts,
            vec!["/track".into()],
            Limits {
                max_bytes: 16,
                ..Limits::default()
            },
        )
    }

    #[test]
    fn outcomes_are_counted_per_flavor() {
        let mut i = ingest();
        let h = Some(&b"site.example"[..]);
        assert_eq!(i.handle(b"/track?a=1", h), Outcome::Accepted);
        assert_eq!(i.handle(b"/track", h), Outcome::Accepted);
        assert_eq!(i.handle(b"/other?a=1", h), Outcome::NotFound);
        assert_eq!(
            i.handle(b"/track?a=1", Some(b"evil.example")),
            Outcome::UnknownHost
        );
        assert_eq!(
            i.handle(b"/track?a=01234567890123456789", h),
            Outcome::TooLong
        );
        assert_eq!(i.counts()[0], [2, 0, 1, 0, 0, 0]);
        assert_eq!(i.counts()[1], [0, 0, 0, 1, 1, 0]);
        assert_eq!(Outcome::TooLong.status(), 414);
    }
}
