//! The batch endpoint (README "The batch endpoint"): a POST on one of `batch_paths` of a
//! JSON array or NDJSON of events. Each element becomes one event, rendered as a JSON
//! object body is (`envelope::render_event`), all with the request's `ts`, each with its
//! own id. The events are handed to the backends only once every element is good (dedup
//! values are looked up then too), so a refused batch stores nothing and leaves no trace,
//! and its retry duplicates nothing.
//!
//! Backpressure: while a backend's spool holds more than its `spool_high_water_bytes`,
//! batches are refused with 503 and `Retry-After` (their senders can retry); the pixel
//! paths never are (their senders cannot).

use super::outcome::{BATCH_DUPLICATES, BATCH_EVENTS, BATCH_REQUESTS};
use super::{meta_for, verdict, Ingest, Matched, Method, Outcome, Request, Verdict};
use crate::body::elements::{self, ElementsError, Format};
use crate::body::encoding::ContentEncoding;
use crate::body::BodyError;
use crate::clock::now_ms;
use crate::envelope::{is_duplicate, render_event, Params, Refusal, Rendered};
use crate::query::{Limits, QueryError};
use std::sync::Arc;

/// `Retry-After` of a batch refused for backpressure, in seconds: the Kafka backend's
/// recovery probe interval (docs/architecture.md), the soonest a stalled backend is seen
/// back; the file writer retries every second.
pub const RETRY_AFTER_S: u32 = 5;

/// The batch endpoint's settings and its reusable buffer.
#[derive(Default)]
pub struct Batches {
    /// `batch_paths`; none: no batch endpoint.
    pub paths: Vec<Box<[u8]>>,
    /// `limits.max_batch_events`.
    pub max_events: usize,
    /// The events of the batch being read, held until every element is good.
    rendered: Vec<Rendered>,
}

impl Batches {
    pub fn new(paths: &[impl AsRef<[u8]>], max_events: usize) -> Batches {
        Batches {
            paths: paths.iter().map(|p| p.as_ref().into()).collect(),
            max_events,
            rendered: Vec::new(),
        }
    }

    pub fn is_batch_path(&self, path: &[u8]) -> bool {
        self.paths.iter().any(|p| **p == *path)
    }
}

/// A batch answer's JSON body: `{"accepted":n}`, or `{"error":"<name>"}` with
/// `,"<key>":n` when it has a number (`BATCH_ANSWERS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchAnswer {
    pub reason: Reason,
    pub n: Option<u32>,
}

/// Which answer: an index into `BATCH_ANSWERS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    Accepted = 0,
    InvalidJson = 1,
    NotAnArray = 2,
    NotAnObject = 3,
    MissingRequired = 4,
    TooManyParams = 5,
    TooDeep = 6,
    TooManyEvents = 7,
    TooLarge = 8,
    BadEncoding = 9,
    UnsupportedMediaType = 10,
    MethodNotAllowed = 11,
    Backpressure = 12,
}

/// Per `Reason`: the `error` name and the key of its number. Exported to Python, which
/// writes the body (`python/beacon/http/responses.py`).
pub const BATCH_ANSWERS: [(&str, &str); 13] = [
    ("accepted", "accepted"),
    ("invalid_json", "index"),
    ("not_an_array", ""),
    ("not_an_object", "index"),
    ("missing_required", "index"),
    ("too_many_params", "index"),
    ("too_deep", "index"),
    ("too_many_events", "max_events"),
    ("too_large", "max_bytes"),
    ("bad_encoding", ""),
    ("unsupported_media_type", ""),
    ("method_not_allowed", ""),
    ("backpressure", "retry_after_s"),
];

fn answer(outcome: Outcome, status: u16, cors: bool, reason: Reason, n: Option<usize>) -> Verdict {
    let n = n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Verdict {
        batch: Some(BatchAnswer { reason, n }),
        ..verdict(outcome, status, cors)
    }
}

/// Why one element is refused.
fn element_refusal(r: Refusal) -> (Outcome, Reason) {
    match r {
        Refusal::MissingParam(_) => (Outcome::MissingParam, Reason::MissingRequired),
        Refusal::Malformed(QueryError::TooManyParams { .. }) => {
            (Outcome::Malformed, Reason::TooManyParams)
        }
        Refusal::Malformed(QueryError::TooDeep { .. }) => (Outcome::Malformed, Reason::TooDeep),
        // Neither comes from an object render_event was given (it looks no dedup value up).
        Refusal::Malformed(_) | Refusal::Duplicate => (Outcome::Malformed, Reason::InvalidJson),
    }
}

impl Ingest {
    /// A request on a batch path, counted as one; its answer has a JSON body.
    pub(super) fn answer_batch(&mut self, req: &Request<'_>, m: &Matched<'_>) -> Verdict {
        self.counts[m.row][BATCH_REQUESTS] += 1;
        if let Some(v) = self.refuse_batch(req, m) {
            return v;
        }
        let h = &req.headers;
        let format = Format::of(h.content_type).expect("checked by refuse_batch");
        let raw = req.body.unwrap_or_default();
        let body = match self
            .bodies
            .decode(raw, h.content_encoding, self.max_body_bytes)
        {
            Ok(b) => b,
            Err(BodyError::TooLarge { max }) => {
                return answer(Outcome::TooLarge, 413, m.cors, Reason::TooLarge, Some(max))
            }
            Err(BodyError::Unsupported) => {
                let r = Reason::UnsupportedMediaType;
                return answer(Outcome::UnsupportedMediaType, 415, m.cors, r, None);
            }
            Err(BodyError::Malformed(_)) => {
                return answer(Outcome::Malformed, 400, m.cors, Reason::BadEncoding, None)
            }
        };
        let flavor = &mut self.flavors[m.row];
        let ts = self.fixed_clock_ms.unwrap_or_else(now_ms);
        let meta = meta_for(&flavor.opts, &self.trusted_proxies, req);
        let limits = Limits {
            max_bytes: usize::MAX, // the body was bounded by `max_body_bytes`
            ..self.limits
        };
        let (ids, scratch, rendered) = (&mut self.ids, &mut self.scratch, &mut self.batch.rendered);
        rendered.clear();
        let read = elements::for_each(body, format, self.batch.max_events, |value| {
            if !value.is_object() {
                return Err((Outcome::Malformed, Reason::NotAnObject));
            }
            let mut meta = meta;
            meta.id = flavor.opts.event_id.then(|| ids.next(ts));
            let params = Params::Value(&value);
            let r = render_event(flavor.slot, flavor, ts, params, &meta, &limits, scratch);
            rendered.push(r.map_err(element_refusal)?);
            Ok(())
        });
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                rendered.clear();
                return self.refuse_elements(e, m.cors);
            }
        };
        if h.do_not_track() && flavor.opts.honor_dnt {
            rendered.clear();
            return answer(Outcome::DoNotTrack, 200, m.cors, Reason::Accepted, Some(n));
        }
        self.hand_over(m.row, ts);
        answer(Outcome::Accepted, 200, m.cors, Reason::Accepted, Some(n))
    }

    /// The refusals a batch's headers decide (also for `Expect: 100-continue`): a method
    /// other than POST, backpressure, a Content-Type or Content-Encoding not taken.
    pub(super) fn refuse_batch(&self, req: &Request<'_>, m: &Matched<'_>) -> Option<Verdict> {
        match req.method {
            Method::Post => {}
            Method::Options => return self.refuse_method(req, m),
            _ => {
                let r = Reason::MethodNotAllowed;
                return Some(answer(Outcome::Method, 405, m.cors, r, None));
            }
        }
        if self.backends.iter().any(|b| b.over_high_water()) {
            let retry = Some(RETRY_AFTER_S as usize);
            let o = Outcome::BatchBackpressure;
            return Some(answer(o, 503, m.cors, Reason::Backpressure, retry));
        }
        let h = &req.headers;
        if Format::of(h.content_type).is_none()
            || ContentEncoding::parse(h.content_encoding).is_err()
        {
            let r = Reason::UnsupportedMediaType;
            return Some(answer(Outcome::UnsupportedMediaType, 415, m.cors, r, None));
        }
        None
    }

    /// `check_expect` for a batch path: the refusal, counted as a batch request.
    pub(super) fn expect_batch(&mut self, req: &Request<'_>, m: &Matched<'_>) -> Option<Verdict> {
        let v = self.refuse_batch(req, m)?;
        self.counts[m.row][BATCH_REQUESTS] += 1;
        Some(v)
    }

    fn refuse_elements(&self, e: ElementsError<(Outcome, Reason)>, cors: bool) -> Verdict {
        match e {
            ElementsError::InvalidJson { index } => {
                answer(Outcome::Malformed, 400, cors, Reason::InvalidJson, index)
            }
            ElementsError::NotAnArray => {
                answer(Outcome::Malformed, 400, cors, Reason::NotAnArray, None)
            }
            ElementsError::TooMany { max } => {
                let o = Outcome::BatchTooLarge;
                answer(o, 413, cors, Reason::TooManyEvents, Some(max))
            }
            ElementsError::Refused { index, why: (o, r) } => answer(o, 400, cors, r, Some(index)),
        }
    }

    /// Every element was good: the events go to the backends, but for those whose dedup
    /// value was seen (within the batch too).
    fn hand_over(&mut self, row: usize, ts: i64) {
        let flavor = &mut self.flavors[row];
        let (mut stored, mut duplicates) = (0, 0);
        for r in self.batch.rendered.drain(..) {
            if is_duplicate(flavor, r.dedup.as_deref(), ts) {
                duplicates += 1;
                continue;
            }
            let ev = Arc::new(r.event);
            for b in &self.backends {
                b.offer(ev.clone());
            }
            stored += 1;
        }
        let counts = &mut self.counts[row];
        counts[BATCH_EVENTS] += stored;
        counts[BATCH_DUPLICATES] += duplicates;
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
