//! `Ingest::handle` on sequences of arbitrary requests against an arbitrary configuration
//! (flavors with hosts, modes, privacy switches, required parameters, dedup; a default
//! flavor or none; paths; limits; trusted proxies). Each outcome must have a status the
//! HTTP layer knows and agree with routing (path, Host, DNT, JSON switch); an accepted
//! request must reach the backend queue as exactly one valid event line carrying only the
//! meta fields its flavor enables; the per-flavor counts must match what was returned.
#![no_main]

use beacon_fuzz::beacon;

use arbitrary::Arbitrary;
use beacon::backend::Backend;
use beacon::clock::{parse_tz, Stamper};
use beacon::flavor::{Flavor, FlavorOptions, HostMap};
use beacon::ingest::{BodyKind, Ingest, Outcome, Request, OUTCOMES};
use beacon::privacy::{Cidr, IpMode};
use beacon::query::{Limits, Mode};
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
}

#[derive(Arbitrary, Debug)]
enum Target {
    /// A configured path (by index) and a query.
    Path(u8, Option<Vec<u8>>),
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
    target: Target,
    host: Host,
    body: Option<(Vec<u8>, u8)>,
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
    let mut flavors = Vec::new();
    for (i, f) in input.flavors.iter().enumerate() {
        for h in &f.hosts {
            hosts.insert(h, i as u16);
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
    let mut ingest = Ingest::new(flavors, hosts, paths.clone(), limits);
    ingest.trusted_proxies = input
        .trusted
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .collect();
    let backend = backend();
    while backend.queue.pop().is_some() {}
    ingest.backends = vec![backend.clone()];

    let mut counts = vec![[0u64; OUTCOMES.len()]; n + 1];
    let mut clock = input.clock_ms;
    for (k, r) in input.requests.iter().enumerate() {
        clock = clock.saturating_add(r.dt_ms as i64);
        ingest.fixed_clock_ms = Some(clock);
        let target = match &r.target {
            Target::Path(i, q) => {
                let mut t = paths[*i as usize % paths.len()].clone().into_bytes();
                if let Some(q) = q {
                    t.push(b'?');
                    t.extend_from_slice(q);
                }
                t
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
        let kinds = [BodyKind::Form, BodyKind::Json, BodyKind::Text];
        let body = r
            .body
            .as_ref()
            .map(|(b, k)| (&b[..], kinds[*k as usize % 3]));
        let peer = r.peer.as_ref().map(addr_bytes);
        let xff = r.forwarded_for.as_ref().map(|hops| {
            let hops: Vec<Vec<u8>> = hops.iter().map(addr_bytes).collect();
            hops.join(&b", "[..])
        });
        let req = Request {
            target: &target,
            host: host.as_deref(),
            body,
            peer: peer.as_deref(),
            forwarded_for: xff.as_deref(),
            user_agent: r.user_agent.as_deref(),
            referer: r.referer.as_deref(),
            do_not_track: r.do_not_track,
        };
        let outcome = ingest.handle(&req);
        assert!(
            matches!(outcome.status(), 200 | 400 | 404 | 414),
            "{outcome:?}"
        );

        let path = target.split(|&b| b == b'?').next().unwrap();
        let routed = paths.iter().any(|p| p.as_bytes() == path);
        let flavor = ingest.flavor_for(req.host);
        let row = if routed {
            flavor.map_or(n, usize::from)
        } else {
            n
        };
        counts[row][outcome as usize] += 1;
        if !routed {
            assert_eq!(outcome, Outcome::NotFound, "request {k}");
            assert_eq!(ingest.last_flavor, None);
        } else if flavor.is_none() {
            assert_eq!(outcome, Outcome::UnknownHost, "request {k}");
            assert_eq!(ingest.last_flavor, None);
        } else {
            assert_eq!(ingest.last_flavor, flavor);
            let spec = &input.flavors[row];
            if r.do_not_track && spec.honor_dnt {
                assert_eq!(outcome, Outcome::DoNotTrack, "request {k}");
            }
            if matches!(body, Some((b, BodyKind::Json)) if !b.is_empty()) && !spec.json_bodies {
                assert!(
                    matches!(outcome, Outcome::Malformed | Outcome::DoNotTrack),
                    "request {k}: JSON body without json_bodies gave {outcome:?}"
                );
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
    assert_eq!(ingest.counts(), &counts[..], "per-flavor counts");
}
