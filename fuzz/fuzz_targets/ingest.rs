//! `Ingest::handle` on sequences of arbitrary requests against an arbitrary configuration
//! (flavors with hosts, modes, privacy switches, required parameters, dedup, allowed
//! origins; a default flavor or none; paths; limits; trusted proxies), with arbitrary
//! methods, targets (origin- and absolute-form), bodies, content types and codings. Each
//! verdict must have a status the HTTP layer knows and agree with routing (path, Host or
//! authority, method, DNT, CORS); an accepted request must reach the backend queue as
//! exactly one valid event line carrying only the meta fields its flavor enables; the
//! per-flavor counts must match what was returned.
#![no_main]

use beacon_fuzz::beacon;

use arbitrary::Arbitrary;
use beacon::clock::{parse_tz, Stamper};
use beacon::cors::Origins;
use beacon::flavor::{Flavor, FlavorOptions, HostMap};
use beacon::ingest::{
    split_target, Headers, Ingest, Method, Outcome, Request, EXTRA_COUNTERS, OUTCOMES,
};
use beacon::privacy::{Cidr, IpMode};
use beacon::query::{Limits, Mode};
use beacon::sinks::Backend;
use beacon_fuzz::{check_event_line, ZONES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

#[derive(Arbitrary, Debug)]
struct FlavorSpec {
    name: String,
    zone: u8,
    rack: bool,
    hosts: Vec<String>,
    ip: u8,
    user_agent: bool,
    referer: bool,
    honor_dnt: bool,
    json_bodies: bool,
    required: Vec<String>,
    key_param: Option<String>,
    dedup: Option<(String, u16)>,
    origins: Vec<String>,
    event_id: bool,
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// A configured path (by index) and a query.
    Path(u8, Option<Vec<u8>>),
    /// The same in absolute form, with a flavor's host (by index) as the authority.
    Absolute(u8, u8, u8, Option<Vec<u8>>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Host {
    /// Flavor index, host index, port, upper-cased.
    Known(u8, u8, Option<u16>, bool),
    Raw(Vec<u8>),
    Absent,
}

#[derive(Arbitrary, Debug)]
enum Addr {
    Ip(IpAddr),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Req {
    dt_ms: u16,
    method: u8,
    target: Target,
    host: Host,
    body: Option<Vec<u8>>,
    content_type: Choice,
    content_encoding: Choice,
    origin: Option<Choice>,
    peer: Option<Addr>,
    forwarded_for: Option<Vec<Addr>>,
    user_agent: Option<Vec<u8>>,
    referer: Option<Vec<u8>>,
    do_not_track: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    flavors: Vec<FlavorSpec>,
    default: Option<u8>,
    extra_paths: Vec<String>,
    limits: Option<(u16, u8, u8)>,
    trusted: Vec<String>,
    clock_ms: i64,
    requests: Vec<Req>,
}

/// A header value: one of a few meaningful ones, or arbitrary bytes.
#[derive(Arbitrary, Debug)]
enum Choice {
    Known(u8),
    Raw(Vec<u8>),
    Absent,
}

const CONTENT_TYPES: [&[u8]; 6] = [
    b"text/plain;charset=UTF-8",
    b"application/x-www-form-urlencoded",
    b"application/json",
    b"multipart/form-data; boundary=----WebKitFormBoundaryx",
    b"image/png",
    b"TEXT/PLAIN",
];
const CODINGS: [&[u8]; 4] = [b"identity", b"gzip", b"deflate", b"compress"];
const ORIGINS: [&[u8]; 2] = [b"https://shop.example", b"null"];

fn choose<'a>(c: &'a Choice, known: &[&'a [u8]]) -> Option<&'a [u8]> {
    match c {
        Choice::Known(i) => Some(known[*i as usize % known.len()]),
        Choice::Raw(b) => Some(b),
        Choice::Absent => None,
    }
}

fn backend() -> &'static Arc<Backend> {
    static BACKEND: OnceLock<Arc<Backend>> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("beacon-fuzz-ingest-{}", std::process::id()));
        Arc::new(Backend::new("fuzz", 1 << 16, &dir, Vec::new()).unwrap())
    })
}

fn addr_bytes(a: &Addr) -> Vec<u8> {
    match a {
        Addr::Ip(ip) => ip.to_string().into_bytes(),
        Addr::Raw(b) => b.clone(),
    }
}

fuzz_target!(|input: Input| run(input));

fn run(input: Input) {
    if input.flavors.is_empty() || input.flavors.len() > 8 {
        return;
    }
    let n = input.flavors.len();
    let default = input.default.map(|d| d as usize % n);
    let mut hosts = HostMap::new(default.map(|d| d as u16));
    // The oracle's own copy of the routing table.
    let mut lookup = HostMap::new(default.map(|d| d as u16));
    let mut flavors = Vec::new();
    for (i, f) in input.flavors.iter().enumerate() {
        for h in &f.hosts {
            hosts.insert(h, i as u16);
            lookup.insert(h, i as u16);
        }
        let opts = FlavorOptions {
            mode: if f.rack { Mode::Rack } else { Mode::Flat },
            required: f.required.iter().take(64).cloned().collect(), // add_flavor's limit
            key_param: f.key_param.clone(),
            ip: [IpMode::Off, IpMode::Full, IpMode::Anonymized][f.ip as usize % 3],
            user_agent: f.user_agent,
            referer: f.referer,
            honor_dnt: f.honor_dnt,
            json_bodies: f.json_bodies,
            dedup_param: f.dedup.as_ref().map(|d| d.0.clone()),
            dedup_ttl_ms: f.dedup.as_ref().map_or(0, |d| d.1 as i64),
            dedup_max_entries: 64,
            origins: Origins::new(&f.origins),
            event_id: f.event_id,
        };
        let zone = parse_tz(ZONES[f.zone as usize % ZONES.len()]).unwrap();
        flavors.push(Flavor::new(&f.name, Stamper::new(zone), opts));
    }
    let mut paths = vec!["/track".to_owned()];
    paths.extend(input.extra_paths.iter().cloned());
    let limits = match input.limits {
        None => Limits::default(),
        Some((b, p, d)) => Limits {
            max_bytes: b as usize,
            max_params: p as usize,
            max_depth: d as usize,
        },
    };
    let mut ingest = Ingest::new(flavors, hosts, paths.clone(), limits, 1 << 16);
    ingest.trusted_proxies = input
        .trusted
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .collect();
    let backend = backend();
    while backend.queue.pop().is_some() {}
    ingest.backends = vec![backend.clone()];

    let mut counts = vec![[0u64; OUTCOMES.len() + EXTRA_COUNTERS.len()]; n + 1];
    let mut clock = input.clock_ms;
    for (k, r) in input.requests.iter().enumerate() {
        clock = clock.saturating_add(r.dt_ms as i64);
        ingest.fixed_clock_ms = Some(clock);
        let with_query = |mut t: Vec<u8>, q: &Option<Vec<u8>>| {
            if let Some(q) = q {
                t.push(b'?');
                t.extend_from_slice(q);
            }
            t
        };
        let target = match &r.target {
            Target::Path(i, q) => with_query(paths[*i as usize % paths.len()].clone().into(), q),
            Target::Absolute(i, f, h, q) => {
                let hs = &input.flavors[*f as usize % n].hosts;
                let host = hs
                    .get(*h as usize % hs.len().max(1))
                    .map_or("", String::as_str);
                let path = &paths[*i as usize % paths.len()];
                with_query(format!("http://{host}{path}").into_bytes(), q)
            }
            Target::Raw(t) => t.clone(),
        };
        let host = match &r.host {
            Host::Known(f, h, port, upper) => {
                let hs = &input.flavors[*f as usize % n].hosts;
                hs.get(*h as usize % hs.len().max(1)).map(|h| {
                    let mut h = if *upper { h.to_uppercase() } else { h.clone() };
                    if let Some(p) = port {
                        h = format!("{h}:{p}");
                    }
                    h.into_bytes()
                })
            }
            Host::Raw(h) => Some(h.clone()),
            Host::Absent => None,
        };
        let peer = r.peer.as_ref().map(addr_bytes);
        let xff = r.forwarded_for.as_ref().map(|hops| {
            let hops: Vec<Vec<u8>> = hops.iter().map(addr_bytes).collect();
            hops.join(&b", "[..])
        });
        let method = Method::from_code(r.method % 5);
        let origin = r.origin.as_ref().and_then(|o| choose(o, &ORIGINS));
        let req = Request {
            method,
            target: &target,
            headers: Headers {
                host: host.as_deref(),
                user_agent: r.user_agent.as_deref(),
                referer: r.referer.as_deref(),
                forwarded_for: xff.as_deref(),
                dnt: r.do_not_track.then_some(&b"1"[..]),
                gpc: None,
                origin,
                content_type: choose(&r.content_type, &CONTENT_TYPES),
                content_encoding: choose(&r.content_encoding, &CODINGS),
            },
            body: r.body.as_deref(),
            peer: peer.as_deref(),
        };
        let v = ingest.handle(&req);
        let outcome = v.outcome;
        assert!(
            matches!(
                v.status,
                200 | 204 | 400 | 403 | 404 | 405 | 413 | 414 | 415
            ),
            "{v:?}"
        );
        assert_eq!(
            v.status == 204,
            method == Method::Post
                && matches!(
                    outcome,
                    Outcome::Accepted | Outcome::Duplicate | Outcome::DoNotTrack
                )
                || outcome == Outcome::Preflight,
            "{v:?}"
        );

        let t = split_target(&target);
        let routed = paths.iter().any(|p| p.as_bytes() == t.path);
        let flavor = lookup.lookup(t.authority.or(req.headers.host));
        let row = flavor.map_or(n, usize::from);
        counts[row][outcome as usize] += 1;
        let allowed = flavor.is_some_and(|f| {
            let spec = &input.flavors[f as usize];
            origin.is_some_and(|o| Origins::new(&spec.origins).allows(o))
        });
        if !routed {
            assert_eq!(outcome, Outcome::NotFound, "request {k}");
            assert_eq!(v.cors, allowed);
        } else if flavor.is_none() {
            assert_eq!(outcome, Outcome::UnknownHost, "request {k}");
            assert!(!v.cors);
        } else {
            let spec = &input.flavors[row];
            assert_eq!(v.cors, allowed, "request {k}: {v:?}");
            assert_eq!(v.preflight, outcome == Outcome::Preflight);
            match method {
                Method::Options if allowed => assert_eq!(outcome, Outcome::Preflight),
                Method::Options => assert_eq!(outcome, Outcome::CorsDenied),
                Method::Other => assert_eq!(outcome, Outcome::Method),
                _ if r.do_not_track && spec.honor_dnt && t.query.len() <= limits.max_bytes => {
                    assert_eq!(outcome, Outcome::DoNotTrack, "request {k}")
                }
                _ => {}
            }
        }
        let ev = backend.queue.pop();
        assert_eq!(
            ev.is_some(),
            outcome == Outcome::Accepted,
            "request {k}: {outcome:?} but event {ev:?}"
        );
        assert!(
            backend.queue.pop().is_none(),
            "request {k}: more than one event"
        );
        if let Some(ev) = ev {
            let spec = &input.flavors[row];
            assert_eq!((ev.flavor as usize, ev.ts_ms), (row, clock));
            let Some(obj) = check_event_line(&ev.line, &spec.name) else {
                continue; // rack output too deep for serde_json: checked structurally
            };
            assert_eq!(obj.contains_key("id"), spec.event_id, "id per the flavor");
            assert_eq!(
                obj.contains_key("ua"),
                spec.user_agent && r.user_agent.is_some()
            );
            assert_eq!(
                obj.contains_key("referer"),
                spec.referer && r.referer.is_some()
            );
            let ip = obj.get("ip").map(|v| v.as_str().expect("ip is a string"));
            match spec.ip % 3 {
                0 => assert_eq!(ip, None),
                mode => {
                    let peer_ok = peer
                        .as_deref()
                        .and_then(|p| std::str::from_utf8(p).ok()?.parse::<IpAddr>().ok());
                    assert_eq!(
                        ip.is_some(),
                        peer_ok.is_some(),
                        "ip {ip:?} for peer {peer:?}"
                    );
                    if let Some(ip) = ip {
                        let ip: IpAddr = ip.parse().expect("ip field is an address");
                        if mode == 2 {
                            match ip {
                                IpAddr::V4(v4) => assert_eq!(v4.octets()[3], 0, "{ip}"),
                                IpAddr::V6(v6) => {
                                    assert!(v6.octets()[6..].iter().all(|&b| b == 0), "{ip}")
                                }
                            }
                        }
                    }
                }
            }
            assert!(matches!(obj["params"], Value::Object(_)));
        }
    }
    // Multipart file parts are counted beside the outcomes: compare the outcomes only.
    let outcomes = |rows: &[[u64; OUTCOMES.len() + EXTRA_COUNTERS.len()]]| {
        rows.iter()
            .map(|r| r[..OUTCOMES.len()].to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        outcomes(ingest.counts()),
        outcomes(&counts),
        "per-flavor counts"
    );
}
