//! The request path: one call per request turns the raw request (target, Host, body and
//! the few headers that matter) into an event and hands it to every enabled backend.
//! Counts every outcome per flavor.

use crate::backend::Backend;
use crate::clock::now_ms;
use crate::envelope::{build_event, Meta, Params, Refusal};
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::privacy::{anonymize, client_ip, Cidr, IpMode};
use crate::query::{Limits, QueryError};
use std::net::IpAddr;
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
    Duplicate = 6,
    /// Dropped because the client asked not to be tracked (DNT / Sec-GPC).
    DoNotTrack = 7,
}

pub const OUTCOMES: [&str; 8] = [
    "accepted",
    "malformed",
    "too_large",
    "not_found",
    "unknown_host",
    "missing_param",
    "duplicate",
    "do_not_track",
];

impl Outcome {
    pub fn status(self) -> u16 {
        match self {
            Outcome::Accepted | Outcome::Duplicate | Outcome::DoNotTrack => 200,
            Outcome::TooLong => 414,
            Outcome::NotFound => 404,
            Outcome::Malformed | Outcome::UnknownHost | Outcome::MissingParam => 400,
        }
    }
}

/// How a POST body is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// urlencoded or text/plain query string: joined to the URL's query with `&`.
    Form,
    /// A JSON object (only where the flavor enables JSON bodies).
    Json,
    /// text/plain: JSON if it looks like an object and the flavor allows, else a form.
    Text,
}

/// One request as the HTTP layer saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub target: &'a [u8],
    pub host: Option<&'a [u8]>,
    pub body: Option<(&'a [u8], BodyKind)>,
    /// The TCP peer address, as text.
    pub peer: Option<&'a [u8]>,
    pub forwarded_for: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    /// `DNT: 1` or `Sec-GPC: 1` was sent.
    pub do_not_track: bool,
}

pub struct Ingest {
    pub flavors: Vec<Flavor>,
    hosts: HostMap,
    paths: Vec<Box<[u8]>>,
    limits: Limits,
    pub trusted_proxies: Vec<Cidr>,
    pub backends: Vec<Arc<Backend>>,
    scratch: Vec<u8>,
    body_scratch: Vec<u8>,
    /// Injected receipt time for tests; `None` reads the system clock.
    pub fixed_clock_ms: Option<i64>,
    /// Test hook: a target that panics, to prove a panic answers 500 and nothing more.
    pub panic_target: Option<Box<[u8]>>,
    /// Flavor of the last request (None: no flavor matched), for CORS headers.
    pub last_flavor: Option<u16>,
    /// `counts[flavor][outcome]`; requests with no flavor are counted in the last row.
    counts: Vec<[u64; OUTCOMES.len()]>,
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
            trusted_proxies: Vec::new(),
            backends: Vec::new(),
            scratch: Vec::with_capacity(1024),
            body_scratch: Vec::new(),
            fixed_clock_ms: None,
            panic_target: None,
            last_flavor: None,
            counts: vec![[0; OUTCOMES.len()]; rows],
        }
    }

    /// The flavor a Host header selects.
    pub fn flavor_for(&self, host: Option<&[u8]>) -> Option<u16> {
        self.hosts.lookup(host)
    }

    /// Handles one request.
    pub fn handle(&mut self, req: &Request<'_>) -> Outcome {
        if self.panic_target.as_deref() == Some(req.target) {
            panic!("test panic on {:?}", String::from_utf8_lossy(req.target));
        }
        let (path, query) = split_target(req.target);
        let no_flavor = self.flavors.len();
        self.last_flavor = None;
        if !self.paths.iter().any(|p| **p == *path) {
            return self.count(no_flavor, Outcome::NotFound);
        }
        let Some(fi) = self.hosts.lookup(req.host) else {
            return self.count(no_flavor, Outcome::UnknownHost);
        };
        self.last_flavor = Some(fi);
        let row = fi as usize;
        if req.do_not_track && self.flavors[row].opts.honor_dnt {
            return self.count(row, Outcome::DoNotTrack);
        }
        let json_ok = self.flavors[row].opts.json_bodies;
        let params = match select_params(json_ok, query, req.body, &mut self.body_scratch) {
            Ok(p) => p,
            Err(outcome) => return self.count(row, outcome),
        };
        let meta = meta_for(&self.flavors[row].opts, &self.trusted_proxies, req);
        let ts = self.fixed_clock_ms.unwrap_or_else(now_ms);
        let flavor = &mut self.flavors[row];
        let built = build_event(
            fi,
            flavor,
            ts,
            params,
            &meta,
            &self.limits,
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
            Err(Refusal::Malformed(QueryError::TooLong { .. })) => Outcome::TooLong,
            Err(Refusal::Malformed(_)) => Outcome::Malformed,
            Err(Refusal::MissingParam(_)) => Outcome::MissingParam,
            Err(Refusal::Duplicate) => Outcome::Duplicate,
        };
        self.count(row, outcome)
    }

    fn count(&mut self, row: usize, outcome: Outcome) -> Outcome {
        self.counts[row][outcome as usize] += 1;
        outcome
    }

    /// Per-flavor outcome counts, then the row for requests that matched no flavor.
    pub fn counts(&self) -> &[[u64; OUTCOMES.len()]] {
        &self.counts
    }
}

/// The parameters' source: the URL's query, or a POST body (a form body is joined to
/// the URL's query; a JSON body replaces it).
fn select_params<'a>(
    json_ok: bool,
    query: &'a [u8],
    body: Option<(&'a [u8], BodyKind)>,
    joined: &'a mut Vec<u8>,
) -> Result<Params<'a>, Outcome> {
    let Some((body, kind)) = body.filter(|(b, _)| !b.is_empty()) else {
        return Ok(Params::Query(query));
    };
    let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match kind {
        BodyKind::Json if !json_ok => Err(Outcome::Malformed),
        BodyKind::Json => Ok(Params::Json(body)),
        BodyKind::Text if json_ok && looks_json => Ok(Params::Json(body)),
        BodyKind::Form | BodyKind::Text if query.is_empty() => Ok(Params::Query(body)),
        BodyKind::Form | BodyKind::Text => {
            joined.clear();
            joined.extend_from_slice(query);
            joined.push(b'&');
            joined.extend_from_slice(body);
            Ok(Params::Query(joined))
        }
    }
}

/// The optional fields the flavor's privacy switches let through.
fn meta_for<'a>(opts: &FlavorOptions, trusted: &[Cidr], req: &Request<'a>) -> Meta<'a> {
    let ip = match opts.ip {
        IpMode::Off => None,
        mode => req
            .peer
            .and_then(|p| std::str::from_utf8(p).ok()?.parse::<IpAddr>().ok())
            .map(|peer| {
                let ip = client_ip(peer, req.forwarded_for, trusted);
                if mode == IpMode::Anonymized {
                    anonymize(ip)
                } else {
                    ip
                }
            }),
    };
    Meta {
        ip,
        user_agent: req.user_agent.filter(|_| opts.user_agent),
        referer: req.referer.filter(|_| opts.referer),
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

    fn ingest(opts: FlavorOptions) -> Ingest {
        let f = Flavor::new("site", Stamper::new(parse_tz("UTC").unwrap()), opts);
        let mut hosts = HostMap::new(None);
        hosts.insert("site.example", 0);
        let limits = Limits {
            max_bytes: 16,
            ..Limits::default()
        };
        let mut i = Ingest::new(vec![f], hosts, vec!["/track".into()], limits);
        i.trusted_proxies = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        i
    }

    fn get<'a>(target: &'a [u8]) -> Request<'a> {
        Request {
            target,
            host: Some(b"site.example"),
            ..Default::default()
        }
    }

    #[test]
    fn outcomes_are_counted_per_flavor() {
        let mut i = ingest(FlavorOptions::default());
        assert_eq!(i.handle(&get(b"/track?a=1")), Outcome::Accepted);
        assert_eq!(i.handle(&get(b"/track")), Outcome::Accepted);
        assert_eq!(i.handle(&get(b"/other?a=1")), Outcome::NotFound);
        let evil = Request {
            host: Some(b"evil.example"),
            ..get(b"/track?a=1")
        };
        assert_eq!(i.handle(&evil), Outcome::UnknownHost);
        assert_eq!(
            i.handle(&get(b"/track?a=01234567890123456789")),
            Outcome::TooLong
        );
        assert_eq!(i.counts()[0], [2, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(i.counts()[1], [0, 0, 0, 1, 1, 0, 0, 0]);
        assert_eq!(Outcome::TooLong.status(), 414);
    }

    #[test]
    fn do_not_track_is_honoured_only_where_configured() {
        let dnt = Request {
            do_not_track: true,
            ..get(b"/track?a=1")
        };
        assert_eq!(
            ingest(FlavorOptions::default()).handle(&dnt),
            Outcome::Accepted
        );
        let mut i = ingest(FlavorOptions {
            honor_dnt: true,
            ..Default::default()
        });
        assert_eq!(i.handle(&dnt), Outcome::DoNotTrack);
        assert_eq!(Outcome::DoNotTrack.status(), 200);
    }

    #[test]
    fn json_bodies_need_the_flavor_switch() {
        let post = Request {
            body: Some((b"{\"a\":1}", BodyKind::Json)),
            ..get(b"/track")
        };
        assert_eq!(
            ingest(FlavorOptions::default()).handle(&post),
            Outcome::Malformed
        );
        let mut i = ingest(FlavorOptions {
            json_bodies: true,
            ..Default::default()
        });
        assert_eq!(i.handle(&post), Outcome::Accepted);
    }
}
