//! Criterion benchmarks of the Rust core: the query encoders, the event envelope, the ring,
//! POST body decoding and the whole request path (`Ingest::handle_raw` on the load
//! benchmark's request shapes), and refusals kept as bad rows. `cargo bench --manifest-path rust/Cargo.toml` (also run by `make bench`).
use _beacon::body::encoding::{decode_into, ContentEncoding};
use _beacon::body::multipart::to_query;
use _beacon::clock::{parse_tz, Day, Stamper};
use _beacon::cors::Origins;
use _beacon::envelope::{build_event, Meta, Params};
use _beacon::event::Event;
use _beacon::event_id::{write_id, IdGen};
use _beacon::flavor::{Flavor, FlavorOptions, HostMap};
use _beacon::ingest::{BadRows, Batches, Headers, Ingest, Method, RawLimits, Request, RowLimits};
use _beacon::privacy::IpMode;
use _beacon::query::{encode_query_into, Limits, Mode};
use _beacon::ring::BackendQueue;
use _beacon::sinks::Backend;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;

const REALISTIC: &[u8] = b"ev=pageview&uid=7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10&sid=9a8b7c6d\
&ts=1795508102123&url=https%3A%2F%2Fwww.example.gr%2Fsearch%3Fq%3Dlaptop%2B15%26page%3D2\
%26sort%3Dprice&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dfthina%2Blaptop&vw=1920\
&vh=1080&lang=el-GR&tz=Europe%2FAthens&cat=computers&price=749.90&pos=3";
const PAGEVIEW: &[u8] = b"ev=pageview&id=42&uid=u-1234";
const NESTED: &[u8] = b"user[id]=7&user[name]=x&items[][sku]=a1&items[][qty]=2&items[][sku]=b2\
&items[][qty]=1&tags[]=x&tags[]=y&ev=cart";

/// The limits the benchmarks run with (the config's defaults at the time of writing).
const LIMITS: Limits = Limits {
    max_bytes: 8192,
    max_params: 256,
    max_depth: 100,
};

fn encoders(c: &mut Criterion) {
    let limits = LIMITS;
    let mut out = Vec::with_capacity(1024);
    let mut g = c.benchmark_group("encode_query");
    for (name, q, mode) in [
        ("flat/pageview", PAGEVIEW, Mode::Flat),
        ("flat/realistic_300b", REALISTIC, Mode::Flat),
        ("rack/realistic_300b", REALISTIC, Mode::Rack),
        ("rack/nested", NESTED, Mode::Rack),
    ] {
        g.throughput(Throughput::Bytes(q.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode_query_into(black_box(q), mode, &limits, &mut out, |_, _| {}).unwrap();
            })
        });
    }
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let opts = FlavorOptions {
        mode: Mode::Flat,
        required: Vec::new(),
        key_param: Some("uid".into()),
        ip: IpMode::Off,
        user_agent: false,
        referer: false,
        honor_dnt: false,
        json_bodies: false,
        dedup_param: None,
        dedup_ttl_ms: 0,
        dedup_max_entries: 0,
        origins: Origins::default(),
        event_id: false,
    };
    let mut flavor = Flavor::new(
        "skroutz.gr",
        Stamper::new(parse_tz("Europe/Athens").unwrap()),
        opts,
    );
    let limits = LIMITS;
    let mut scratch = Vec::with_capacity(1024);
    let mut ts = 1_795_508_102_123;
    c.bench_function("build_event/realistic_300b", |b| {
        b.iter(|| {
            ts += 1;
            let ev = build_event(
                0,
                &mut flavor,
                ts,
                Params::Query(REALISTIC),
                &Meta::default(),
                &limits,
                &mut scratch,
            )
            .unwrap();
            black_box(ev)
        })
    });
    // The same with an event id (the flavor's `event_id`): the id's generation and text.
    let mut ids = IdGen::new();
    c.bench_function("build_event/realistic_300b_with_id", |b| {
        b.iter(|| {
            ts += 1;
            let meta = Meta {
                id: Some(ids.next(ts)),
                ..Meta::default()
            };
            let ev = build_event(
                0,
                &mut flavor,
                ts,
                Params::Query(REALISTIC),
                &meta,
                &limits,
                &mut scratch,
            )
            .unwrap();
            black_box(ev)
        })
    });
}

/// An event id alone: a UUIDv7 drawn and written as text (what `event_id` adds per event).
fn event_id(c: &mut Criterion) {
    let mut ids = IdGen::new();
    let mut out = Vec::with_capacity(64);
    let mut ts = 1_795_508_102_123;
    c.bench_function("event_id/next_and_write", |b| {
        b.iter(|| {
            ts += 1;
            out.clear();
            write_id(&ids.next(black_box(ts)), &mut out);
            black_box(&out);
        })
    });
}

fn ring(c: &mut Criterion) {
    let q = BackendQueue::new(65536);
    let ev = Arc::new(Event {
        flavor: 0,
        day: Day(20261124),
        ts_ms: 0,
        key: None,
        line: REALISTIC.into(),
    });
    c.bench_function("ring/push_pop", |b| {
        b.iter(|| {
            q.push(ev.clone()).unwrap();
            black_box(q.pop().unwrap())
        })
    });
}

/// The request path in Rust: a whole GET read by the fast path (`Ingest::handle_raw`), its
/// event built and handed to two backends (`Backend::offer`); the bench pops them again so
/// that the queues never fill. `ingest/offer` is the hand-over alone.
fn ingest_offer(c: &mut Criterion) {
    let spool = std::env::temp_dir().join(format!("beacon-bench-{}", std::process::id()));
    let backend = |name| {
        let flavors = vec!["site".to_owned()];
        Arc::new(Backend::new(name, 65536, &spool.join(name), flavors).unwrap())
    };
    let backends = vec![backend("file"), backend("kafka")];
    let flavor = Flavor::new(
        "site",
        Stamper::new(parse_tz("Europe/Athens").unwrap()),
        FlavorOptions {
            mode: Mode::Flat,
            required: Vec::new(),
            key_param: Some("uid".into()),
            ip: IpMode::Off,
            user_agent: true,
            referer: false,
            honor_dnt: false,
            json_bodies: false,
            dedup_param: None,
            dedup_ttl_ms: 0,
            dedup_max_entries: 0,
            origins: Origins::default(),
            event_id: true, // the config's default
        },
    );
    let mut hosts = HostMap::new(None);
    hosts.insert("www.example.gr", 0);
    let mut i = Ingest::new(vec![flavor], hosts, vec!["/track".into()], LIMITS, 65536);
    i.raw_limits = RawLimits {
        header_bytes: 16384,
        target_bytes: 16384,
        body_bytes: 65536,
    };
    i.backends = backends.clone();
    let mut req = b"GET /track?".to_vec();
    req.extend_from_slice(REALISTIC);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: www.example.gr\r\nUser-Agent: bench\r\n\r\n");
    c.bench_function("ingest/handle_raw_realistic", |b| {
        b.iter(|| {
            let v = i.handle_raw(&req, None).expect("plainly one request");
            for q in &backends {
                black_box(q.queue.pop().expect("handed over"));
            }
            black_box(v.0.code())
        })
    });
    let ev = Arc::new(Event {
        flavor: 0,
        day: Day(20261124),
        ts_ms: 0,
        key: None,
        line: REALISTIC.into(),
    });
    let b0 = &backends[0];
    c.bench_function("ingest/offer", |b| {
        b.iter(|| {
            b0.offer(ev.clone());
            black_box(b0.queue.pop().unwrap())
        })
    });
    let _ = std::fs::remove_dir_all(&spool);
}

/// What Chromium sends for a `FormData` with three fields (`navigator.sendBeacon`).
const FORM: &[u8] = b"------WebKitFormBoundaryAbC123xYz789Qq\r\n\
Content-Disposition: form-data; name=\"ev\"\r\n\r\npageview\r\n\
------WebKitFormBoundaryAbC123xYz789Qq\r\n\
Content-Disposition: form-data; name=\"uid\"\r\n\r\n7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10\r\n\
------WebKitFormBoundaryAbC123xYz789Qq\r\n\
Content-Disposition: form-data; name=\"url\"\r\n\r\nhttps://www.example.gr/search?q=laptop 15\r\n\
------WebKitFormBoundaryAbC123xYz789Qq--\r\n";

fn body(c: &mut Criterion) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(REALISTIC).unwrap();
    let gz = gz.finish().unwrap();
    let mut out = Vec::with_capacity(64 << 10);
    let mut g = c.benchmark_group("body");
    g.throughput(Throughput::Bytes(REALISTIC.len() as u64));
    g.bench_function("gzip/realistic_300b", |b| {
        b.iter(|| decode_into(black_box(&gz), ContentEncoding::Gzip, 64 << 10, &mut out).unwrap())
    });
    g.throughput(Throughput::Bytes(FORM.len() as u64));
    g.bench_function("multipart/chromium_3_fields", |b| {
        b.iter(|| {
            out.clear();
            to_query(
                black_box(FORM),
                b"----WebKitFormBoundaryAbC123xYz789Qq",
                256,
                &mut out,
            )
            .unwrap()
        })
    });
    g.finish();
}

/// A request shape of the load benchmark (bench/load/requests/), rendered as
/// bench/load/shapes.py renders it: CRLF line ends, the Host and Content-Length filled in.
fn shape(text: &str) -> Vec<u8> {
    let (head, body) = text
        .split_once("\n\n")
        .expect("a blank line after the headers");
    let body = body.strip_suffix('\n').unwrap_or(body);
    let head = head
        .replace("@HOST@", "127.0.0.1")
        .replace("@LENGTH@", &body.len().to_string());
    format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n")).into_bytes()
}

/// One request from its bytes to the event, as the server's fast path takes it (no
/// backend: the event is built and dropped), with the config's defaults.
fn request_path(c: &mut Criterion) {
    let opts = FlavorOptions {
        mode: Mode::Flat,
        required: Vec::new(),
        key_param: None,
        ip: IpMode::Off,
        user_agent: false,
        referer: false,
        honor_dnt: false,
        json_bodies: false,
        dedup_param: None,
        dedup_ttl_ms: 0,
        dedup_max_entries: 0,
        origins: Origins::new(&["https://www.example.gr"]),
        event_id: true,
    };
    let flavor = Flavor::new("default", Stamper::new(parse_tz("UTC").unwrap()), opts);
    let mut ingest = Ingest::new(
        vec![flavor],
        HostMap::new(Some(0)),
        vec!["/track".into()],
        LIMITS,
        1 << 20, // room for the batch below; the pixels' bodies are bounded by `raw_limits`
    );
    ingest.raw_limits = RawLimits {
        header_bytes: 16 << 10,
        target_bytes: LIMITS.max_bytes + 1024,
        body_bytes: 64 << 10,
    };
    let mut g = c.benchmark_group("request");
    for (name, text) in [
        (
            "bare_get",
            include_str!("../../bench/load/requests/bare.http"),
        ),
        (
            "browser_get",
            include_str!("../../bench/load/requests/browser.http"),
        ),
        (
            "beacon_post",
            include_str!("../../bench/load/requests/post.http"),
        ),
    ] {
        let req = shape(text);
        g.bench_function(name, |b| {
            b.iter(|| black_box(ingest.handle_raw(black_box(&req), None)).unwrap())
        });
    }
    // A batch of 500 events (the full parser's call), each the realistic query's params as
    // a JSON object: per event, compare with build_event/realistic_300b_with_id.
    ingest.batch = Batches::new(&["/batch"], 500);
    let element = realistic_object();
    let body = format!("[{}]", vec![element; 500].join(",")).into_bytes();
    let batch = Request {
        method: Method::Post,
        target: b"/batch",
        headers: Headers {
            host: Some(b"127.0.0.1"),
            content_type: Some(b"application/json"),
            ..Headers::default()
        },
        body: Some(&body),
        peer: None,
    };
    g.throughput(Throughput::Elements(500));
    g.bench_function("batch_500_json", |b| {
        b.iter(|| assert_eq!(ingest.handle(black_box(&batch)).status, 200))
    });
    g.finish();
}

/// The params of `REALISTIC` as a JSON object.
fn realistic_object() -> String {
    let mut out = Vec::new();
    encode_query_into(REALISTIC, Mode::Flat, &LIMITS, &mut out, |_, _| {}).unwrap();
    String::from_utf8(out).unwrap()
}

/// The whole request path of one GET (`Ingest::handle`), accepted or refused: route, parse,
/// build the event and hand it to a backend queue (popped again at once, as its worker would).
fn ingest(c: &mut Criterion) {
    let opts = FlavorOptions {
        mode: Mode::Flat,
        required: vec!["uid".into()],
        key_param: None,
        ip: IpMode::Off,
        user_agent: false,
        referer: false,
        honor_dnt: false,
        json_bodies: false,
        dedup_param: None,
        dedup_ttl_ms: 0,
        dedup_max_entries: 1,
        origins: Origins::default(),
        event_id: true,
    };
    let flavor = Flavor::new("shop", Stamper::new(parse_tz("UTC").unwrap()), opts);
    let mut hosts = HostMap::new(None);
    hosts.insert("www.example.gr", 0);
    let mut ingest = Ingest::new(vec![flavor], hosts, vec!["/track".into()], LIMITS, 65536);
    let spool = std::env::temp_dir().join(format!("beacon-bench-{}", std::process::id()));
    let names = vec!["shop".to_owned(), "_bad".to_owned()];
    let backend = Arc::new(Backend::new("file", 65536, &spool, names).unwrap());
    ingest.backends.push(backend.clone());
    let ua = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
Chrome/131.0.0.0 Safari/537.36";
    let accepted = [b"/track?".as_slice(), REALISTIC].concat();
    let missing = b"/track?ev=pageview&id=42&url=https%3A%2F%2Fwww.example.gr%2F".to_vec();
    let req = |target, host| Request {
        target,
        headers: Headers {
            host: Some(host),
            user_agent: Some(ua),
            ..Headers::default()
        },
        ..Request::default()
    };
    // Refusals are kept as bad rows (README "Bad rows"), without limits here; the last
    // case is a refusal past `max_per_s`: counted, no row built.
    let limits = RowLimits {
        target: 9216,
        headers: 16384,
        body: 65536,
    };
    ingest.bad_rows = Some(BadRows::new(u64::MAX, u64::MAX, limits));
    let mut g = c.benchmark_group("ingest");
    for (name, target, host, status) in [
        (
            "accept_realistic_300b",
            &accepted,
            &b"www.example.gr"[..],
            200,
        ),
        ("refuse_missing_param", &missing, b"www.example.gr", 400),
        ("refuse_unknown_host", &accepted, b"other.example", 400),
        (
            "refuse_missing_param_over_rate",
            &missing,
            b"www.example.gr",
            400,
        ),
    ] {
        if name.ends_with("over_rate") {
            ingest.bad_rows = Some(BadRows::new(1, u64::MAX, limits));
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let v = ingest.handle(black_box(&req(target, host)));
                assert_eq!(v.status, status);
                black_box(backend.queue.pop())
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&spool);
}

criterion_group!(
    benches,
    encoders,
    envelope,
    event_id,
    ring,
    body,
    request_path,
    ingest,
    ingest_offer
);
criterion_main!(benches);
