//! Bad rows (README "Bad rows", docs/architecture.md): a request to a tracked path that is
//! refused is kept whole, as one JSON line (`row.rs`), so that `beacon reprocess` can run it
//! again once the config is fixed. The row travels as an event of the pseudo-flavor `_bad`
//! (a slot of its own, `Ingest::add_slot`) through the backends' own queues, with the
//! same spool and retry: the file backend writes it to `<data_dir>/_bad/<UTC date>.jsonl`,
//! the Kafka backend to `bad_rows.topic`.
//!
//! Bounded (`limiter.rs`): past `max_per_s` or the day's `max_bytes_per_day` a refused
//! request is only counted (`bad_rows_dropped`), never buffered. The accepted path pays one
//! comparison; a refused one within the limits a row's build and a queue push.

mod limiter;
mod row;

pub use limiter::Limiter;
pub use row::{write_row, Refused, RowLimits};

use super::outcome::{BAD_ROWS_DROPPED, BAD_ROWS_KEPT};
use super::{Ingest, Outcome, Request, Verdict, OUTCOMES};
use crate::clock::{now_ms, parse_tz, Stamper};
use crate::event::Event;
use std::path::PathBuf;
use std::sync::Arc;

/// The pseudo-flavor of bad rows: their directory under `data_dir` and their name in the
/// spools. Flavor names start with a letter or digit, so none can take it.
pub const BAD_ROWS_FLAVOR: &str = "_bad";

/// Where this process's daily bad-row files are: `<dir>/<YYYY-MM-DD><suffix>.jsonl`.
#[derive(Clone, Debug)]
pub struct DayFiles {
    pub dir: PathBuf,
    pub suffix: String,
}

impl DayFiles {
    /// Bytes the file of a UTC day (days since the epoch) already holds: a restart on the
    /// same day starts its budget from there.
    fn size(&self, day: i64) -> u64 {
        let date = chrono::DateTime::from_timestamp(day * 86_400, 0).map(|t| t.date_naive());
        let Some(date) = date else { return 0 };
        let path = self
            .dir
            .join(format!("{}{}.jsonl", date.format("%F"), self.suffix));
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}

pub struct BadRows {
    limiter: Limiter,
    limits: RowLimits,
    utc: Stamper,
    /// None without the file backend.
    files: Option<DayFiles>,
    scratch: Vec<u8>,
    /// The backends' slot of bad rows (`Ingest::add_slot`): their directory and topic.
    slot: u16,
}

impl BadRows {
    pub fn new(max_per_s: u64, max_bytes_per_day: u64, limits: RowLimits) -> BadRows {
        BadRows {
            limiter: Limiter::new(max_per_s, max_bytes_per_day),
            limits,
            utc: Stamper::new(parse_tz("UTC").expect("UTC is a zone")),
            files: None,
            scratch: Vec::with_capacity(1024),
            slot: u16::MAX,
        }
    }

    /// Bad rows go to the backends' `slot`.
    pub fn in_slot(self, slot: u16) -> BadRows {
        BadRows { slot, ..self }
    }

    /// Counts the day's file, as found on disk, against the day's budget.
    pub fn with_files(self, files: DayFiles) -> BadRows {
        BadRows {
            files: Some(files),
            ..self
        }
    }

    /// Bytes kept on the current UTC day.
    pub fn used(&self) -> u64 {
        self.limiter.used()
    }
}

impl Ingest {
    /// Keeps a request to a tracked path that was refused, or counts it dropped.
    #[inline]
    pub(super) fn keep_if_refused(&mut self, req: &Request<'_>, row: usize, v: Verdict) {
        // Not kept: 404s (other paths) and refused CORS preflights (no event in them).
        if v.status >= 400
            && !matches!(v.outcome, Outcome::NotFound | Outcome::CorsDenied)
            && self.bad_rows.is_some()
        {
            self.keep(req, row, v);
        }
    }

    #[cold]
    fn keep(&mut self, req: &Request<'_>, row: usize, v: Verdict) {
        let bad = self.bad_rows.as_mut().expect("checked by the caller");
        let ts = self.fixed_clock_ms.unwrap_or_else(now_ms);
        let files = &bad.files;
        if !bad
            .limiter
            .admit(ts, |day| files.as_ref().map_or(0, |f| f.size(day)))
        {
            self.counts[row][BAD_ROWS_DROPPED] += 1;
            return;
        }
        let why = Refused {
            reason: OUTCOMES[v.outcome as usize],
            status: v.status,
            flavor: self.flavors.get(row).map(|f| f.name.as_str()),
        };
        let id = self.ids.next(ts);
        bad.scratch.clear();
        let day = write_row(
            &mut bad.scratch,
            &mut bad.utc,
            ts,
            &id,
            &why,
            req,
            &bad.limits,
        );
        if !bad.limiter.spend(bad.scratch.len() as u64) {
            self.counts[row][BAD_ROWS_DROPPED] += 1;
            return;
        }
        let ev = Arc::new(Event {
            flavor: bad.slot,
            day,
            ts_ms: ts,
            key: None,
            line: bad.scratch.as_slice().into(),
        });
        for b in &self.backends {
            b.offer(ev.clone());
        }
        self.counts[row][BAD_ROWS_KEPT] += 1;
    }
}

#[cfg(test)]
mod tests;
