use super::*;
use crate::clock::{parse_tz, Stamper};
use crate::cors::Origins;
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::ingest::{Headers, RawLimits, CODE_BATCH, CODE_CORS, EXTRA_COUNTERS, OUTCOMES};
use crate::sinks::Backend;
use std::io::Write;
use std::path::PathBuf;

const TS: i64 = 1_795_508_102_123;

fn spool_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("beacon-batch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A flavor on `site.example` with `/track` and `/batch`, at most 3 events a batch, and a
/// backend whose queue the test reads.
fn ingest(name: &str, opts: FlavorOptions) -> Ingest {
    let f = Flavor::new("site", Stamper::new(parse_tz("UTC").unwrap()), opts);
    let mut hosts = HostMap::new(None);
    hosts.insert("site.example", 0);
    let mut i = Ingest::new(
        vec![f],
        hosts,
        vec!["/track".into()],
        Limits::default(),
        512,
    );
    i.batch = Batches::new(&["/batch"], 3);
    i.fixed_clock_ms = Some(TS);
    let names = vec!["site".to_owned()];
    let backend = Backend::new("file", 64, &spool_dir(name), names).unwrap();
    i.backends.push(Arc::new(backend));
    i
}

fn post<'a>(ctype: &'a [u8], body: &'a [u8]) -> Request<'a> {
    Request {
        method: Method::Post,
        target: b"/batch",
        body: Some(body),
        headers: Headers {
            host: Some(b"site.example"),
            content_type: Some(ctype),
            ..Headers::default()
        },
        ..Request::default()
    }
}

fn json(body: &[u8]) -> Request<'_> {
    post(b"application/json", body)
}

/// The events the backend was handed, as JSON.
fn stored(i: &Ingest) -> Vec<serde_json::Value> {
    let q = &i.backends[0].queue;
    std::iter::from_fn(|| q.pop())
        .map(|ev| serde_json::from_slice(&ev.line).unwrap())
        .collect()
}

fn accepted(n: u32) -> Option<BatchAnswer> {
    Some(BatchAnswer {
        reason: Reason::Accepted,
        n: Some(n),
    })
}

fn refused(reason: Reason, n: Option<u32>) -> Option<BatchAnswer> {
    Some(BatchAnswer { reason, n })
}

fn count(i: &Ingest, name: &str) -> u64 {
    let at = OUTCOMES
        .iter()
        .chain(&EXTRA_COUNTERS)
        .position(|n| *n == name);
    i.counts()[0][at.unwrap()]
}

fn with_id() -> FlavorOptions {
    FlavorOptions {
        event_id: true,
        ..FlavorOptions::default()
    }
}

#[test]
fn each_element_is_an_event_with_the_requests_ts_and_its_own_id() {
    let mut i = ingest("each", with_id());
    let v = i.handle(&json(
        br#"[{"ev":"a","n":1}, {"ev":"b","x":{"y":[1]}}, {"ev":"c"}]"#,
    ));
    assert_eq!(
        (v.status, v.outcome, v.batch),
        (200, Outcome::Accepted, accepted(3))
    );
    let events = stored(&i);
    let params: Vec<String> = events.iter().map(|e| e["params"].to_string()).collect();
    let want = [
        r#"{"ev":"a","n":1}"#,
        r#"{"ev":"b","x":{"y":[1]}}"#,
        r#"{"ev":"c"}"#,
    ];
    assert_eq!(params, want);
    assert!(events
        .iter()
        .all(|e| e["ts"] == "2026-11-24T08:15:02.123+00:00"));
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(
        (count(&i, "batch_requests"), count(&i, "batch_events")),
        (1, 3)
    );
    // NDJSON: the same events.
    let v = i.handle(&post(
        b"application/x-ndjson",
        b"{\"ev\":\"a\",\"n\":1}\n\n{\"ev\":\"b\",\"x\":{\"y\":[1]}}\r\n{\"ev\":\"c\"}\n",
    ));
    assert_eq!(v.batch, accepted(3));
    let again: Vec<String> = stored(&i).iter().map(|e| e["params"].to_string()).collect();
    assert_eq!(again, want);
    assert_eq!(count(&i, "accepted"), 2);
}

#[test]
fn one_bad_element_refuses_the_whole_batch_and_names_its_index() {
    let mut i = ingest(
        "bad",
        FlavorOptions {
            required: vec!["ev".into()],
            ..FlavorOptions::default()
        },
    );
    let cases: [(&[u8], Outcome, Option<BatchAnswer>); 6] = [
        (
            br#"[{"ev":"a"},{"ev":""}]"#,
            Outcome::MissingParam,
            refused(Reason::MissingRequired, Some(1)),
        ),
        (
            br#"[{"ev":"a"},{"ev":"b"},["ev"]]"#,
            Outcome::Malformed,
            refused(Reason::NotAnObject, Some(2)),
        ),
        (
            br#"[{"ev":"a"},{"ev": }]"#,
            Outcome::Malformed,
            refused(Reason::InvalidJson, Some(1)),
        ),
        (
            br#"{"ev":"a"}"#,
            Outcome::Malformed,
            refused(Reason::NotAnArray, None),
        ),
        (
            br#"[{"ev":"a"}] trailing"#,
            Outcome::Malformed,
            refused(Reason::InvalidJson, None),
        ),
        (
            br#"[{"ev":"a"},{"ev":"b"},{"ev":"c"},{"ev":"d"}]"#,
            Outcome::BatchTooLarge,
            refused(Reason::TooManyEvents, Some(3)),
        ),
    ];
    for (body, outcome, answer) in cases {
        let v = i.handle(&json(body));
        let status = if outcome == Outcome::BatchTooLarge {
            413
        } else {
            400
        };
        assert_eq!((v.status, v.outcome, v.batch), (status, outcome, answer));
        assert!(stored(&i).is_empty(), "{}", String::from_utf8_lossy(body));
    }
    let mut many = b"[{\"ev\":\"a\"".to_vec();
    for n in 0..=Limits::default().max_params {
        write!(many, ",\"p{n}\":1").unwrap();
    }
    many.extend_from_slice(b"}]");
    let v = i.handle(&json(&many));
    assert_eq!(v.batch, refused(Reason::TooManyParams, Some(0)));
    assert_eq!(count(&i, "batch_requests"), 7);
    assert_eq!(count(&i, "batch_events"), 0);
    assert_eq!(count(&i, "batch_too_large"), 1);
}

#[test]
fn dedup_remembers_only_the_elements_of_a_good_batch() {
    let mut i = ingest(
        "dedup",
        FlavorOptions {
            dedup_param: Some("eid".into()),
            dedup_ttl_ms: 60_000,
            required: vec!["ev".into()],
            ..FlavorOptions::default()
        },
    );
    let v = i.handle(&json(br#"[{"ev":"a","eid":"1"},{"eid":"2"}]"#));
    assert_eq!(v.status, 400);
    // Its good element was not remembered: the fixed retry stores both.
    let v = i.handle(&json(br#"[{"ev":"a","eid":"1"},{"ev":"b","eid":"2"}]"#));
    assert_eq!(v.batch, accepted(2));
    assert_eq!(stored(&i).len(), 2);
    // A repeat, within the batch or of an earlier one, is accepted and not stored.
    let v = i.handle(&json(
        br#"[{"ev":"a","eid":"1"},{"ev":"c","eid":"3"},{"ev":"c","eid":"3"}]"#,
    ));
    assert_eq!(v.batch, accepted(3));
    let left: Vec<String> = stored(&i).iter().map(|e| e["params"].to_string()).collect();
    assert_eq!(left, [r#"{"ev":"c","eid":"3"}"#]);
    assert_eq!(count(&i, "batch_events"), 3);
    assert_eq!(count(&i, "batch_duplicates"), 2);
}

#[test]
fn privacy_switches_apply_to_every_element() {
    let opts = FlavorOptions {
        ip: crate::privacy::IpMode::Anonymized,
        user_agent: true,
        honor_dnt: true,
        ..FlavorOptions::default()
    };
    let mut i = ingest("privacy", opts);
    let mut req = json(br#"[{"a":1},{"a":2}]"#);
    req.peer = Some(b"203.0.113.77");
    req.headers.user_agent = Some(b"sdk/1.0");
    assert_eq!(i.handle(&req).batch, accepted(2));
    for e in stored(&i) {
        assert_eq!(
            (&e["ip"], &e["ua"]),
            (&"203.0.113.0".into(), &"sdk/1.0".into())
        );
    }
    req.headers.dnt = Some(b"1");
    let v = i.handle(&req);
    assert_eq!((v.outcome, v.batch), (Outcome::DoNotTrack, accepted(2)));
    assert!(stored(&i).is_empty());
}

#[test]
fn methods_types_codings_and_the_decoded_size() {
    let opts = FlavorOptions {
        origins: Origins::new(&["https://app.example"]),
        ..FlavorOptions::default()
    };
    let mut i = ingest("http", opts);
    let get = Request {
        method: Method::Get,
        ..json(b"")
    };
    let v = i.handle(&get);
    assert_eq!(
        (v.status, v.batch),
        (405, refused(Reason::MethodNotAllowed, None))
    );
    let mut options = Request {
        method: Method::Options,
        ..json(b"")
    };
    options.headers.origin = Some(b"https://app.example");
    let v = i.handle(&options);
    assert_eq!((v.status, v.preflight, v.batch), (204, true, None));
    let v = i.handle(&post(b"application/x-www-form-urlencoded", b"a=1"));
    assert_eq!(v.batch, refused(Reason::UnsupportedMediaType, None));
    // sendBeacon's text/plain: an array, or lines.
    let v = i.handle(&post(b"text/plain;charset=UTF-8", b"[{\"a\":1}]"));
    assert_eq!(v.batch, accepted(1));
    let v = i.handle(&post(b"text/plain", b"{\"a\":1}\n{\"a\":2}"));
    assert_eq!(v.batch, accepted(2));
    // gzip is undone first; the decoded body is capped at max_body_bytes (512).
    let gzip = |body: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        gz.finish().unwrap()
    };
    let small = gzip(br#"[{"a":1},{"a":2}]"#);
    let mut req = json(&small);
    req.headers.content_encoding = Some(b"gzip");
    assert_eq!(i.handle(&req).batch, accepted(2));
    let big = gzip(format!(r#"[{{"a":"{}"}}]"#, "x".repeat(600)).as_bytes());
    req.body = Some(&big);
    let v = i.handle(&req);
    assert_eq!(
        (v.status, v.batch),
        (413, refused(Reason::TooLarge, Some(512)))
    );
    req.body = Some(b"not gzip at all");
    let v = i.handle(&req);
    assert_eq!(
        (v.status, v.batch),
        (400, refused(Reason::BadEncoding, None))
    );
    req.headers.content_encoding = Some(b"compress");
    assert_eq!(i.handle(&req).status, 415);
    // A refusal to an allowed origin carries CORS too.
    let mut bad = json(b"[1]");
    bad.headers.origin = Some(b"https://app.example");
    let v = i.handle(&bad);
    assert_eq!((v.status, v.cors), (400, true));
    assert_eq!(count(&i, "batch_requests"), 10);
}

#[test]
fn the_code_carries_the_answer() {
    let v = answer(Outcome::Accepted, 200, true, Reason::Accepted, Some(500));
    assert_eq!(v.code(), 200 | CODE_CORS | CODE_BATCH | 501 << 20);
    let v = answer(Outcome::Malformed, 400, false, Reason::NotAnArray, None);
    assert_eq!(
        v.code(),
        400 | CODE_BATCH | (Reason::NotAnArray as u64) << 52
    );
    assert_eq!(
        BATCH_ANSWERS[Reason::Backpressure as usize].0,
        "backpressure"
    );
    assert_eq!(BATCH_ANSWERS.len(), Reason::Backpressure as usize + 1);
}

#[test]
fn the_fast_path_leaves_batches_to_the_full_parser() {
    let mut i = ingest("fast", FlavorOptions::default());
    let batch = b"POST /batch HTTP/1.1\r\nHost: site.example\r\nContent-Type: application/json\r\n\
                  Content-Length: 9\r\n\r\n[{\"a\":1}]";
    i.raw_limits = RawLimits {
        header_bytes: 1024,
        target_bytes: 1024,
        body_bytes: 1024,
    };
    assert!(i.handle_raw(batch, None).is_none());
    assert_eq!(count(&i, "batch_requests"), 0);
    let pixel = b"GET /track?a=1 HTTP/1.1\r\nHost: site.example\r\n\r\n";
    assert_eq!(i.handle_raw(pixel, None).unwrap().0.status, 200);
}

#[test]
fn a_spool_over_its_mark_refuses_batches_never_pixels() {
    let mut i = ingest("pressure", FlavorOptions::default());
    // A one-event queue: what overflows goes to the spool.
    let dir = spool_dir("pressure-small");
    let mut b = Backend::new("file", 1, &dir, vec!["site".into()]).unwrap();
    b.spool_high_water = Some(200);
    i.backends = vec![Arc::new(b)];
    let pixel = Request {
        target: b"/track?ev=view&pad=0123456789",
        headers: json(b"").headers,
        ..Request::default()
    };
    let mut n = 0;
    while !i.backends[0].over_high_water() {
        assert_eq!(i.handle(&pixel).status, 200);
        n += 1;
    }
    assert!(n > 2, "the mark is passed by spooled events");
    let v = i.handle(&json(br#"[{"a":1}]"#));
    let retry = Some(RETRY_AFTER_S);
    assert_eq!(
        (v.status, v.outcome, v.batch),
        (
            503,
            Outcome::BatchBackpressure,
            refused(Reason::Backpressure, retry)
        )
    );
    // Refused from the headers alone, before the body is sent.
    assert_eq!(i.check_expect(&json(b"")).unwrap().status, 503);
    assert_eq!(i.handle(&pixel).status, 200);
    assert_eq!(count(&i, "batch_backpressure"), 2);
    // Without a mark, never.
    let dir = spool_dir("pressure-none");
    i.backends = vec![Arc::new(
        Backend::new("file", 1, &dir, vec!["site".into()]).unwrap(),
    )];
    assert_eq!(i.handle(&json(br#"[{"a":1}]"#)).status, 200);
}
