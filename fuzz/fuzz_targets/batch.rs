//! The batch endpoint (`Ingest::handle` on a batch path) on arbitrary bodies, against an
//! independent model of the body (serde_json on the whole array, or line by line): a batch
//! is answered 200 exactly when every element is an object within the limits that has the
//! required param, and then every element (less dedup repeats) reaches the queue as one
//! event, in order, with the element as its params, one ts and increasing ids; any other
//! answer leaves the queue empty (all or nothing); a refusal's index names an element that
//! exists; the counters move as the answers say.
//!
//! Input layout, so seeds can be written by hand (fuzz/corpus/batch/seed-*):
//! - byte 0: bits 0-1 the Content-Type (application/json, application/x-ndjson,
//!   text/plain, none); bit 2: gzip the body first; bit 3: `ev` is required; bit 4: dedup
//!   on `eid`; bit 5: event ids;
//! - byte 1: `max_events` (0 counts as 1); byte 2: `max_params` (0 counts as 1);
//! - the body.
#![no_main]

use beacon_fuzz::beacon;

use beacon::clock::{parse_tz, Stamper};
use beacon::cors::Origins;
use beacon::flavor::{Flavor, FlavorOptions, HostMap};
use beacon::ingest::{
    Batches, Headers, Ingest, Method, Outcome, Reason, Request, EXTRA_COUNTERS, OUTCOMES,
};
use beacon::privacy::IpMode;
use beacon::query::{Limits, Mode};
use beacon::sinks::Backend;
use beacon_fuzz::check_json_object;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, OnceLock};

const TYPES: [Option<&[u8]>; 4] = [
    Some(b"application/json"),
    Some(b"application/x-ndjson; charset=utf-8"),
    Some(b"text/plain;charset=UTF-8"),
    None,
];
const MAX_BODY: usize = 64 << 10;

fn backend() -> &'static Arc<Backend> {
    static BACKEND: OnceLock<Arc<Backend>> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("beacon-fuzz-batch-{}", std::process::id()));
        Arc::new(Backend::new("fuzz", 1 << 16, &dir, vec!["site".into()]).unwrap())
    })
}

/// The model's reading of a body: its elements, or None when it is not a well-framed
/// array (or lines) of JSON values.
fn elements(body: &[u8], array: bool) -> Option<Vec<Value>> {
    if array {
        match serde_json::from_slice(body).ok()? {
            Value::Array(a) => Some(a),
            _ => None,
        }
    } else {
        body.split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether the model takes this element: an object within the limits, `ev` non-empty if
/// required (as the flat encoder reports it: a string, number or bool).
fn good(v: &Value, limits: &Limits, require_ev: bool) -> bool {
    let Value::Object(o) = v else { return false };
    let ev_ok = match o.get("ev") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_) | Value::Bool(_)) => true,
        _ => false,
    };
    o.len() <= limits.max_params && depth(v) <= limits.max_depth + 1 && (ev_ok || !require_ev)
}

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let [sel, max_events, max_params, raw @ ..] = data else {
        return;
    };
    let (require_ev, dedup, ids) = (sel & 8 != 0, sel & 16 != 0, sel & 32 != 0);
    let opts = FlavorOptions {
        mode: Mode::Flat,
        required: if require_ev { vec!["ev".into()] } else { Vec::new() },
        key_param: None,
        ip: IpMode::Off,
        user_agent: false,
        referer: false,
        honor_dnt: false,
        json_bodies: false,
        dedup_param: dedup.then(|| "eid".into()),
        dedup_ttl_ms: 60_000,
        dedup_max_entries: 1024,
        origins: Origins::default(),
        event_id: ids,
    };
    let flavor = Flavor::new("site", Stamper::new(parse_tz("UTC").unwrap()), opts);
    let limits = Limits {
        max_params: usize::from(*max_params).max(1),
        ..Limits::default()
    };
    let max_events = usize::from(*max_events).max(1);
    let mut ingest = Ingest::new(vec![flavor], HostMap::new(Some(0)), Vec::new(), limits, MAX_BODY);
    ingest.batch = Batches::new(&["/batch"], max_events);
    ingest.fixed_clock_ms = Some(1_795_508_102_123);
    let backend = backend();
    while backend.queue.pop().is_some() {}
    ingest.backends = vec![backend.clone()];

    let gz;
    let body: &[u8] = if sel & 4 != 0 {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(raw).unwrap();
        gz = e.finish().unwrap();
        &gz
    } else {
        raw
    };
    let content_type = TYPES[usize::from(sel & 3)];
    let req = Request {
        method: Method::Post,
        target: b"/batch",
        headers: Headers {
            content_type,
            content_encoding: (sel & 4 != 0).then_some(&b"gzip"[..]),
            ..Headers::default()
        },
        body: Some(body),
        peer: None,
    };
    let v = ingest.handle(&req);
    let answer = v.batch.expect("a batch path's answer has a body");
    let stored: Vec<_> = std::iter::from_fn(|| backend.queue.pop()).collect();
    let count = |name: &str| {
        let at = OUTCOMES.iter().chain(&EXTRA_COUNTERS).position(|n| *n == name);
        ingest.counts()[0][at.unwrap()]
    };
    assert_eq!(count("batch_requests"), 1);
    assert_eq!(ingest.counts()[0][v.outcome as usize], 1);

    let array = match sel & 3 {
        0 => true,
        1 => false,
        _ => raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['),
    };
    let model = elements(raw, array);
    // Only a coded body is capped here (the HTTP layer caps the bytes on the wire).
    let capped = sel & 4 != 0 && raw.len() > MAX_BODY;
    if v.status != 200 {
        assert!(stored.is_empty(), "{v:?}: a refused batch stored {}", stored.len());
        assert_eq!(count("batch_events"), 0);
        assert!(matches!(v.status, 400 | 413), "{v:?}");
        if let (Some(els), Some(n)) = (&model, answer.n) {
            match answer.reason {
                Reason::TooManyEvents => assert!(els.len() > max_events && n as usize == max_events),
                Reason::TooLarge if capped => {}
                Reason::TooLarge | Reason::BadEncoding => panic!("{v:?} for a good body"),
                _ => assert!((n as usize) < els.len().min(max_events), "{v:?}: {} elements", els.len()),
            }
        }
        // What the model finds wholly good, beacon takes (within the limits).
        if let Some(els) = &model {
            let fits = els.len() <= max_events && els.iter().all(|e| good(e, &limits, require_ev));
            assert!(!fits || capped, "{v:?} for a good batch of {}", els.len());
        }
        return;
    }
    assert_eq!((v.outcome, answer.reason), (Outcome::Accepted, Reason::Accepted));
    let els = model.expect("an accepted body is well framed");
    let n = answer.n.unwrap() as usize;
    assert_eq!(n, els.len());
    assert!(n <= max_events);
    assert!(els.iter().all(|e| good(e, &limits, require_ev)), "accepted a bad element");
    assert_eq!(count("batch_events") + count("batch_duplicates"), n as u64);
    assert_eq!(stored.len() as u64, count("batch_events"));
    let mut last_id = None;
    let mut kept = els.iter();
    for ev in &stored {
        let text = ev.line.strip_suffix(b"\n").expect("an event line ends with \\n");
        let Some(line) = check_json_object(text, "batch event") else {
            continue;
        };
        assert_eq!(ev.ts_ms, 1_795_508_102_123);
        let params = &line["params"];
        // Stored events are the elements in order, less dedup repeats.
        assert!(kept.any(|e| e == params), "{params} is not a next element");
        let id = line.get("id").map(|i| i.as_str().unwrap().to_owned());
        assert_eq!(id.is_some(), ids);
        if id.is_some() {
            assert!(id > last_id, "ids increase");
            last_id = id;
        }
    }
    if !dedup {
        assert_eq!(stored.len(), n);
    }
}
