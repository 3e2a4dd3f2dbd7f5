//! The request path: one call per request turns the raw request (method, target, the few
//! headers that matter, body) into an event, hands it to every enabled backend, and
//! returns the answer (`Verdict`), CORS decision included. Counts every outcome per flavor.
//! A batch path's requests are answered by `batch.rs`.

mod bad_rows;
mod batch;
mod outcome;
mod params;
mod raw;
mod request;
mod settings;
mod target;

pub use bad_rows::{BadRows, DayFiles, RowLimits, BAD_ROWS_FLAVOR};
pub use batch::{BatchAnswer, Batches, Reason, BATCH_ANSWERS, RETRY_AFTER_S};
pub use outcome::{
    CountRow, Outcome, Verdict, CODE_BATCH, CODE_CORS, CODE_HEAD, CODE_PREFLIGHT, EXTRA_COUNTERS,
    OUTCOMES,
};
pub use raw::RawLimits;
pub use request::{Headers, Method, Request, HEADER_NAMES, METHODS};
pub use settings::{Settings, Slot};
pub use target::{split as split_target, Target};

use crate::body::BodyError;
use crate::clock::now_ms;
use crate::envelope::{build_event, Meta, Refusal};
use crate::event_id::IdGen;
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::privacy::{anonymize, client_ip, Cidr, IpMode};
use crate::query::{Limits, QueryError};
use crate::sinks::Backend;
use outcome::FILES_SKIPPED;
use params::{BodyRules, BodyScratch};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

pub struct Ingest {
    /// By row: the flavors configured now, then those a reload removed.
    pub flavors: Vec<Flavor>,
    /// The backend destinations events carry (`settings.rs`).
    slots: Vec<Slot>,
    hosts: HostMap,
    paths: Vec<Box<[u8]>>,
    /// Query limits; `max_bytes` is the URL query's (`limits.max_query_bytes`).
    limits: Limits,
    /// A body, raw or decoded, longer than this is refused (413).
    max_body_bytes: usize,
    /// Past these the fast path leaves a request to the full parser.
    pub raw_limits: RawLimits,
    pub trusted_proxies: Vec<Cidr>,
    pub backends: Vec<Arc<Backend>>,
    scratch: Vec<u8>,
    bodies: BodyScratch,
    /// The batch endpoint (`batch_paths`); none by default.
    pub batch: Batches,
    /// Injected receipt time for tests and tools; `None` reads the system clock.
    pub fixed_clock_ms: Option<i64>,
    /// The id of the next event, given by a tool (`beacon reprocess`: the bad row's id).
    pub fixed_id: Option<uuid::Uuid>,
    ids: IdGen,
    /// Test hook: a target that panics, to prove a panic answers 500 and nothing more.
    pub panic_target: Option<Box<[u8]>>,
    /// Keeps refused requests (`bad_rows.rs`); None: `bad_rows.enabled` is off.
    pub bad_rows: Option<BadRows>,
    /// `counts[flavor]`; requests with no flavor are counted in the last row.
    counts: Vec<CountRow>,
}

/// The flavor a request is for, once path and host have matched.
struct Matched<'a> {
    row: usize,
    query: &'a [u8],
    cors: bool,
    /// A batch path.
    batch: bool,
}

impl Ingest {
    /// Flavors with slots of their own, their Kafka topics unnamed (tests, fuzzing); the
    /// server builds an empty one and `reconfigure`s it.
    pub fn new(
        mut flavors: Vec<Flavor>,
        hosts: HostMap,
        paths: Vec<String>,
        limits: Limits,
        max_body_bytes: usize,
    ) -> Self {
        let rows = flavors.len() + 1;
        let mut slots = Vec::with_capacity(flavors.len());
        for (i, f) in flavors.iter_mut().enumerate() {
            f.slot = i as u16;
            slots.push(Slot {
                name: f.name.clone(),
                topic: String::new(),
            });
        }
        Ingest {
            flavors,
            slots,
            hosts,
            paths: paths
                .into_iter()
                .map(|p| p.into_bytes().into_boxed_slice())
                .collect(),
            limits,
            max_body_bytes,
            raw_limits: RawLimits {
                header_bytes: 0,
                target_bytes: 0,
                body_bytes: 0,
            },
            trusted_proxies: Vec::new(),
            backends: Vec::new(),
            scratch: Vec::with_capacity(1024),
            bodies: BodyScratch::default(),
            batch: Batches::default(),
            fixed_clock_ms: None,
            fixed_id: None,
            ids: IdGen::new(),
            panic_target: None,
            bad_rows: None,
            counts: vec![[0; OUTCOMES.len() + EXTRA_COUNTERS.len()]; rows],
        }
    }

    /// Handles one request and counts its outcome.
    pub fn handle(&mut self, req: &Request<'_>) -> Verdict {
        self.handle_unless_batch(req, false)
            .expect("batches are passed only when asked")
    }

    /// `handle`, or with `pass_batch` None for a request on a batch path (left uncounted).
    fn handle_unless_batch(&mut self, req: &Request<'_>, pass_batch: bool) -> Option<Verdict> {
        if self.panic_target.as_deref() == Some(req.target) {
            panic!("test panic on {:?}", String::from_utf8_lossy(req.target));
        }
        let head = req.method == Method::Head;
        let (row, v) = match self.route(req) {
            Ok(m) if m.batch && pass_batch => return None,
            Ok(m) => (m.row, self.answer(req, &m)),
            Err((row, v)) => (row, v),
        };
        self.keep_if_refused(req, row, v);
        Some(self.count(row, Verdict { head, ..v }))
    }

    /// The fast path: `data` is one whole request the HTTP parser has accepted; `None`
    /// when it is not plainly one (see `raw.rs`), or is for a batch path (its answer has a
    /// body the fast path's code cannot carry): then the HTTP layer parses it in full and
    /// calls `handle`. With the verdict comes where in `data` the `Origin` value is,
    /// when the answer echoes it.
    pub fn handle_raw(
        &mut self,
        data: &[u8],
        peer: Option<&[u8]>,
    ) -> Option<(Verdict, Option<Range<usize>>)> {
        let mut req = raw::scan(data, &self.raw_limits)?;
        req.peer = peer;
        let v = self.handle_unless_batch(&req, true)?;
        let origin = req.headers.origin.filter(|_| v.cors).map(|o| {
            let start = o.as_ptr() as usize - data.as_ptr() as usize;
            start..start + o.len()
        });
        Some((v, origin))
    }

    /// The refusal for a request announcing a body (`Expect: 100-continue`) whose headers
    /// already say it will be refused, counted; `None`: send `100 Continue`.
    pub fn check_expect(&mut self, req: &Request<'_>) -> Option<Verdict> {
        let m = match self.route(req) {
            Ok(m) => m,
            Err((row, v)) => return Some(self.count(row, v)),
        };
        if m.batch {
            return self.expect_batch(req, &m).map(|v| self.count(m.row, v));
        }
        if let Some(v) = self.refuse_method(req, &m) {
            return Some(self.count(m.row, v));
        }
        let h = &req.headers;
        let json_ok = self.flavors[m.row].opts.json_bodies;
        let err = params::check_headers(h.content_type, h.content_encoding, json_ok).err()?;
        let v = body_refusal(&err, m.cors);
        Some(self.count(m.row, v))
    }

    /// Whether an answer to this request carries CORS headers (for refusals the HTTP layer
    /// makes before the request is complete: 413, 431, ...).
    pub fn cors_allowed(&self, req: &Request<'_>) -> bool {
        match self.route(req) {
            Ok(m) => m.cors,
            Err((_, v)) => v.cors,
        }
    }

    /// Host (or the absolute-form target's authority) picks the flavor, then the path
    /// must be a tracked one or a batch path. A 404 is counted for the Host's flavor and carries its CORS
    /// headers, so a page's `fetch` of a wrong path sees the 404.
    fn route<'r>(&self, req: &Request<'r>) -> Result<Matched<'r>, (usize, Verdict)> {
        let t = target::split(req.target);
        let flavor = self.hosts.lookup(t.authority.or(req.headers.host));
        let cors = flavor.is_some_and(|fi| {
            let origins = &self.flavors[fi as usize].opts.origins;
            req.headers.origin.is_some_and(|o| origins.allows(o))
        });
        let row = flavor.map_or(self.flavors.len(), usize::from);
        // The pixel paths first: their requests pay nothing for the batch paths.
        let batch = !self.paths.iter().any(|p| **p == *t.path);
        if batch && !self.batch.is_batch_path(t.path) {
            return Err((row, verdict(Outcome::NotFound, 404, cors)));
        }
        if flavor.is_none() {
            return Err((row, verdict(Outcome::UnknownHost, 400, false)));
        }
        Ok(Matched {
            row,
            query: t.query,
            cors,
            batch,
        })
    }

    /// OPTIONS and unknown methods, answered without reading anything else.
    fn refuse_method(&self, req: &Request<'_>, m: &Matched<'_>) -> Option<Verdict> {
        match req.method {
            Method::Options if m.cors => Some(Verdict {
                preflight: true,
                ..verdict(Outcome::Preflight, 204, true)
            }),
            Method::Options => Some(verdict(Outcome::CorsDenied, 403, false)),
            Method::Other => Some(verdict(Outcome::Method, 405, m.cors)),
            _ => None,
        }
    }

    fn answer(&mut self, req: &Request<'_>, m: &Matched<'_>) -> Verdict {
        if m.batch {
            return self.answer_batch(req, m);
        }
        if let Some(v) = self.refuse_method(req, m) {
            return v;
        }
        let post = req.method == Method::Post;
        let ok = if post { 204 } else { 200 };
        if m.query.len() > self.limits.max_bytes {
            return verdict(Outcome::TooLarge, 414, m.cors);
        }
        let opts = &self.flavors[m.row].opts;
        if req.headers.do_not_track() && opts.honor_dnt {
            return verdict(Outcome::DoNotTrack, ok, m.cors);
        }
        let body = if post { req.body.or(Some(b"")) } else { None };
        let rules = BodyRules {
            json_ok: opts.json_bodies,
            max_bytes: self.max_body_bytes,
            max_params: self.limits.max_params,
        };
        let from_body = params::select(m.query, body, &req.headers, rules, &mut self.bodies);
        let from_body = match from_body {
            Ok(b) => b,
            Err(e) => return body_refusal(&e, m.cors),
        };
        self.counts[m.row][FILES_SKIPPED] += u64::from(from_body.files_skipped);
        // A body was bounded by `max_body_bytes` already; only the URL's query by this.
        let limits = Limits {
            max_bytes: usize::MAX,
            ..self.limits
        };
        let mut meta = meta_for(opts, &self.trusted_proxies, req);
        let ts = self.fixed_clock_ms.unwrap_or_else(now_ms);
        if opts.event_id {
            meta.id = Some(self.fixed_id.take().unwrap_or_else(|| self.ids.next(ts)));
        }
        let flavor = &mut self.flavors[m.row];
        let built = build_event(
            flavor.slot,
            flavor,
            ts,
            from_body.params,
            &meta,
            &limits,
            &mut self.scratch,
        );
        let outcome = match built {
            Ok(ev) => {
                let ev = Arc::new(ev);
                for b in &self.backends {
                    b.offer(ev.clone());
                }
                Outcome::Accepted
            }
            Err(Refusal::Malformed(QueryError::TooLong { .. })) => {
                return verdict(Outcome::TooLarge, if post { 413 } else { 414 }, m.cors)
            }
            Err(Refusal::Malformed(_)) => return verdict(Outcome::Malformed, 400, m.cors),
            Err(Refusal::MissingParam(_)) => return verdict(Outcome::MissingParam, 400, m.cors),
            Err(Refusal::Duplicate) => Outcome::Duplicate,
        };
        verdict(outcome, ok, m.cors)
    }

    fn count(&mut self, row: usize, v: Verdict) -> Verdict {
        self.counts[row][v.outcome as usize] += 1;
        v
    }

    /// Per-flavor counters (`OUTCOMES` then `EXTRA_COUNTERS`), then the row for requests
    /// that matched no flavor.
    pub fn counts(&self) -> &[CountRow] {
        &self.counts
    }
}

fn verdict(outcome: Outcome, status: u16, cors: bool) -> Verdict {
    Verdict {
        outcome,
        status,
        cors,
        preflight: false,
        head: false,
        batch: None,
    }
}

fn body_refusal(e: &BodyError, cors: bool) -> Verdict {
    match e {
        BodyError::Unsupported => verdict(Outcome::UnsupportedMediaType, 415, cors),
        BodyError::TooLarge { .. } => verdict(Outcome::TooLarge, 413, cors),
        BodyError::Malformed(_) => verdict(Outcome::Malformed, 400, cors),
    }
}

/// The optional fields the flavor's privacy switches let through.
fn meta_for<'a>(opts: &FlavorOptions, trusted: &[Cidr], req: &Request<'a>) -> Meta<'a> {
    let h = &req.headers;
    let ip = match opts.ip {
        IpMode::Off => None,
        mode => req
            .peer
            .and_then(|p| std::str::from_utf8(p).ok()?.parse::<IpAddr>().ok())
            .map(|peer| {
                let ip = client_ip(peer, h.forwarded_for, trusted);
                if mode == IpMode::Anonymized {
                    anonymize(ip)
                } else {
                    ip
                }
            }),
    };
    Meta {
        id: None,
        ip,
        user_agent: h.user_agent.filter(|_| opts.user_agent),
        referer: h.referer.filter(|_| opts.referer),
    }
}

#[cfg(test)]
mod tests;
