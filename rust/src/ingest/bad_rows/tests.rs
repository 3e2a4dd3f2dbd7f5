//! The request path's side of bad rows: which requests are kept, where they go, how they
//! are counted, and the limits.

use super::*;
use crate::clock::Day;
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::ingest::{Headers, Method, RawLimits};
use crate::query::Limits;
use crate::sinks::Backend;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};

const TS: i64 = 1_795_508_102_123; // 2026-11-24T08:15:02.123Z
const WIDE: RowLimits = RowLimits {
    target: 1024,
    headers: 1024,
    body: 1024,
};

fn tmpdir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("beacon-badrows-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// One flavor `shop` (Host shop.example, `uid` required), no default, a queue behind it,
/// bad rows kept within `max_per_s` and `budget`, at the fixed time `TS`.
fn ingest(max_per_s: u64, budget: u64) -> (Ingest, Arc<Backend>) {
    let opts = FlavorOptions {
        required: vec!["uid".into()],
        event_id: true,
        ..FlavorOptions::default()
    };
    let f = Flavor::new(
        "shop",
        Stamper::new(parse_tz("Europe/Athens").unwrap()),
        opts,
    );
    let mut hosts = HostMap::new(None);
    hosts.insert("shop.example", 0);
    let limits = Limits {
        max_bytes: 64,
        ..Limits::default()
    };
    let mut i = Ingest::new(vec![f], hosts, vec!["/track".into()], limits, 64);
    i.raw_limits = RawLimits {
        header_bytes: 1024,
        target_bytes: 1024,
        body_bytes: 64,
    };
    let names = vec!["shop".into(), BAD_ROWS_FLAVOR.into()];
    let backend = Arc::new(Backend::new("file", 1024, &tmpdir(), names).unwrap());
    i.backends.push(backend.clone());
    i.fixed_clock_ms = Some(TS);
    i.bad_rows = Some(BadRows::new(max_per_s, budget, WIDE).in_slot(1));
    (i, backend)
}

fn get<'a>(target: &'a [u8], host: &'a [u8]) -> Request<'a> {
    Request {
        target,
        headers: Headers {
            host: Some(host),
            user_agent: Some(b"UA/1"),
            ..Headers::default()
        },
        ..Request::default()
    }
}

fn queued(b: &Backend) -> Vec<Arc<Event>> {
    std::iter::from_fn(|| b.queue.pop()).collect()
}

fn counted(i: &Ingest, row: usize) -> (u64, u64) {
    let r = &i.counts()[row];
    (r[BAD_ROWS_KEPT], r[BAD_ROWS_DROPPED])
}

#[test]
fn refusals_of_tracked_paths_are_kept_and_nothing_else() {
    let (mut i, b) = ingest(1000, 1 << 20);
    assert_eq!(i.handle(&get(b"/track?uid=1", b"shop.example")).status, 200);
    assert_eq!(i.handle(&get(b"/nope?uid=1", b"shop.example")).status, 404);
    assert_eq!(i.handle(&get(b"/nope?uid=1", b"x.example")).status, 404);
    let events = queued(&b);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].flavor, 0);
    assert_eq!(counted(&i, 0), (0, 0));

    assert_eq!(
        i.handle(&get(b"/track?ev=view", b"shop.example")).status,
        400
    );
    let rows = queued(&b);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    // The pseudo-flavor after the configured ones, the UTC day, the receipt time, no key.
    assert_eq!(
        (row.flavor, row.day, row.ts_ms, &row.key),
        (1, Day(20261124), TS, &None)
    );
    let v: Value = serde_json::from_slice(&row.line).unwrap();
    assert_eq!(v["ts"], "2026-11-24T08:15:02.123+00:00");
    assert_eq!(v["reason"], "missing_param");
    assert_eq!(v["status"], 400);
    assert_eq!(v["flavor"], "shop");
    assert_eq!(v["request"]["target"], "/track?ev=view");
    assert_eq!(v["request"]["headers"]["User-Agent"], "UA/1");
    assert_eq!(counted(&i, 0), (1, 0));
}

#[test]
fn a_rows_day_is_utcs_whatever_the_flavors_zone() {
    let (mut i, b) = ingest(1000, 1 << 20);
    // 22:30 UTC on the 24th is 00:30 on the 25th in Athens, the flavor's zone.
    i.fixed_clock_ms = Some(Limiter::day_of(TS) * 86_400_000 + 81_000_000);
    i.handle(&get(b"/track?uid=1", b"shop.example"));
    i.handle(&get(b"/track", b"shop.example"));
    let days: Vec<_> = queued(&b).iter().map(|e| (e.flavor, e.day)).collect();
    assert_eq!(days, [(0, Day(20261125)), (1, Day(20261124))]);
}

#[test]
fn an_unknown_host_is_kept_without_a_flavor_and_counted_in_the_no_flavor_row() {
    let (mut i, b) = ingest(1000, 1 << 20);
    assert_eq!(i.handle(&get(b"/track?uid=1", b"new.example")).status, 400);
    let rows = queued(&b);
    let v: Value = serde_json::from_slice(&rows[0].line).unwrap();
    assert_eq!(v["reason"], "unknown_host");
    assert!(v.get("flavor").is_none());
    assert_eq!(v["request"]["host"], "new.example");
    assert_eq!(counted(&i, 1), (1, 0));
}

#[test]
fn every_kind_of_refusal_is_kept_with_its_status() {
    let (mut i, b) = ingest(1000, 1 << 20);
    let long = [b"/track?uid=".as_slice(), &[b'x'; 100]].concat();
    let cases: [(Request<'_>, &str, u16); 3] = [
        (get(&long, b"shop.example"), "too_large", 414),
        (
            Request {
                method: Method::Other,
                ..get(b"/track?uid=1", b"shop.example")
            },
            "method",
            405,
        ),
        (
            Request {
                method: Method::Post,
                body: Some(b"\x89PNG"),
                headers: Headers {
                    content_type: Some(b"image/png"),
                    ..get(b"", b"shop.example").headers
                },
                ..get(b"/track?uid=1", b"shop.example")
            },
            "unsupported_media_type",
            415,
        ),
    ];
    for (req, reason, status) in cases {
        assert_eq!(i.handle(&req).status, status);
        let rows = queued(&b);
        assert_eq!(rows.len(), 1, "{reason}");
        let v: Value = serde_json::from_slice(&rows[0].line).unwrap();
        assert_eq!(
            (v["reason"].as_str(), v["status"].as_u64()),
            (Some(reason), Some(status.into()))
        );
    }
    assert_eq!(counted(&i, 0), (3, 0));
    // A refused CORS preflight carries no event: not kept.
    let preflight = Request {
        method: Method::Options,
        ..get(b"/track", b"shop.example")
    };
    assert_eq!(i.handle(&preflight).status, 403);
    assert!(queued(&b).is_empty());
    assert_eq!(counted(&i, 0), (3, 0));
}

#[test]
fn the_fast_path_keeps_its_refusals_too() {
    let (mut i, b) = ingest(1000, 1 << 20);
    let data = b"POST /track?ev=1 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 3\r\n\r\nx=1";
    let (v, _) = i.handle_raw(data, Some(b"127.0.0.1")).unwrap();
    assert_eq!(v.status, 400);
    let rows = queued(&b);
    let v: Value = serde_json::from_slice(&rows[0].line).unwrap();
    assert_eq!(v["request"]["method"], "POST");
    assert_eq!(v["request"]["body_b64"], "eD0x");
}

#[test]
fn past_the_rate_rows_are_dropped_and_counted() {
    let (mut i, b) = ingest(3, 1 << 20);
    for _ in 0..10 {
        assert_eq!(i.handle(&get(b"/track", b"shop.example")).status, 400);
    }
    assert_eq!(queued(&b).len(), 3);
    assert_eq!(counted(&i, 0), (3, 7));
    // A second later, three more.
    i.fixed_clock_ms = Some(TS + 1000);
    for _ in 0..10 {
        i.handle(&get(b"/track", b"shop.example"));
    }
    assert_eq!(counted(&i, 0), (6, 14));
}

#[test]
fn past_the_day_budget_rows_are_dropped_until_the_next_utc_day() {
    let (mut i, b) = ingest(1000, 1000);
    for _ in 0..20 {
        i.handle(&get(b"/track", b"shop.example"));
    }
    let rows = queued(&b);
    let bytes: usize = rows.iter().map(|r| r.line.len()).sum();
    assert!(
        bytes <= 1000 && bytes + rows[0].line.len() > 1000,
        "{bytes}"
    );
    assert_eq!(counted(&i, 0), (rows.len() as u64, 20 - rows.len() as u64));
    assert_eq!(i.bad_rows.as_ref().unwrap().used(), bytes as u64);
    // UTC midnight: a new budget.
    i.fixed_clock_ms = Some((Limiter::day_of(TS) + 1) * 86_400_000);
    i.handle(&get(b"/track", b"shop.example"));
    let next = queued(&b);
    assert_eq!(next[0].day, Day(20261125));
}

#[test]
fn a_restart_counts_what_the_days_file_already_holds() {
    let dir = tmpdir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("2026-11-24.w1.jsonl"), vec![b'x'; 900]).unwrap();
    let (mut i, b) = ingest(1000, 1000);
    let files = DayFiles {
        dir,
        suffix: ".w1".into(),
    };
    i.bad_rows = Some(BadRows::new(1000, 1000, WIDE).with_files(files).in_slot(1));
    i.handle(&get(b"/track", b"shop.example"));
    assert!(queued(&b).is_empty());
    assert_eq!(counted(&i, 0), (0, 1));
}

#[test]
fn without_bad_rows_nothing_is_kept_or_counted() {
    let (mut i, b) = ingest(1000, 1 << 20);
    i.bad_rows = None;
    i.handle(&get(b"/track", b"shop.example"));
    assert!(queued(&b).is_empty());
    assert_eq!(counted(&i, 0), (0, 0));
}
