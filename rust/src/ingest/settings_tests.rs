//! `Ingest::reconfigure`: flavors matched by name keep their rows, counters and dedup
//! store; slots are stable; a removed flavor matches nothing; a failure changes nothing.

use super::*;
use crate::clock::{parse_tz, Stamper};
use crate::cors::Origins;
use crate::event::SharedEvent;
use crate::flavor::FlavorOptions;
use crate::ingest::{Headers, Outcome, Request};
use crate::sinks::Backend;
use std::sync::Arc;

/// Flavors as (name, host, topic, options).
fn settings(flavors: &[(&str, &str, &str, FlavorOptions)]) -> Settings {
    let mut hosts = HostMap::new(None);
    let flavors = flavors
        .iter()
        .enumerate()
        .map(|(i, (name, host, topic, opts))| {
            hosts.insert(host, i as u16);
            let zone = Stamper::new(parse_tz("UTC").unwrap());
            (Flavor::new(name, zone, opts.clone()), topic.to_string())
        })
        .collect();
    Settings {
        flavors,
        hosts,
        paths: vec!["/track".into()],
        batch: Batches::new(&["/batch"], 500),
        limits: Limits::default(),
        max_body_bytes: 1024,
        raw_limits: RawLimits {
            header_bytes: 4096,
            target_bytes: 4096,
            body_bytes: 1024,
        },
        trusted_proxies: Vec::new(),
        panic_target: None,
    }
}

fn plain() -> FlavorOptions {
    FlavorOptions::default()
}

fn dedup() -> FlavorOptions {
    FlavorOptions {
        dedup_param: Some("eid".into()),
        dedup_ttl_ms: 60_000,
        ..FlavorOptions::default()
    }
}

fn get<'a>(target: &'a [u8], host: &'a [u8], origin: Option<&'a [u8]>) -> Request<'a> {
    Request {
        target,
        headers: Headers {
            host: Some(host),
            origin,
            ..Headers::default()
        },
        ..Request::default()
    }
}

/// An Ingest with a backend whose queue the test reads.
fn rig(s: Settings) -> (Ingest, Arc<Backend>) {
    let dir = std::env::temp_dir().join(format!(
        "beacon-reconfigure-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut ingest = Ingest::configured(s).unwrap();
    let backend = Arc::new(Backend::new("test", 64, &dir, Vec::new()).unwrap());
    ingest.backends.push(backend.clone());
    (ingest, backend)
}

fn queued(b: &Backend) -> Vec<SharedEvent> {
    let mut out = Vec::new();
    b.queue.pop_batch(&mut out, 64);
    out
}

fn accepted(i: &Ingest, row: usize) -> u64 {
    i.counts()[row][Outcome::Accepted as usize]
}

#[test]
fn a_new_flavor_gets_a_new_row_and_slot_and_kept_ones_keep_theirs() {
    let (mut i, b) = rig(settings(&[("a", "a.test", "t.a", plain())]));
    assert_eq!(i.handle(&get(b"/track?x=1", b"a.test", None)).status, 200);
    assert_eq!(i.handle(&get(b"/track?x=1", b"b.test", None)).status, 400);
    i.reconfigure(settings(&[
        ("b", "b.test", "t.b", plain()),
        ("a", "a.test", "t.a", plain()),
    ]))
    .unwrap();
    assert_eq!(i.handle(&get(b"/track?x=2", b"a.test", None)).status, 200);
    assert_eq!(i.handle(&get(b"/track?x=3", b"b.test", None)).status, 200);
    let slots: Vec<_> = queued(&b).iter().map(|e| e.flavor).collect();
    assert_eq!(slots, [0, 0, 1]);
    assert_eq!(i.slots()[1].name, "b");
    assert_eq!(i.slots()[1].topic, "t.b");
    // Rows: a (2 accepted, counted across the reload), b (1), then no flavor (1 refusal).
    assert_eq!((accepted(&i, 0), accepted(&i, 1)), (2, 1));
    assert_eq!(
        i.flavors.iter().map(|f| &f.name[..]).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(i.counts().len(), 3);
    assert_eq!(i.counts()[2][Outcome::UnknownHost as usize], 1);
}

#[test]
fn a_changed_topic_is_a_new_slot_and_changing_it_back_reuses_the_old_one() {
    let (mut i, b) = rig(settings(&[("a", "a.test", "t1", plain())]));
    i.handle(&get(b"/track?x=1", b"a.test", None));
    i.reconfigure(settings(&[("a", "a.test", "t2", plain())]))
        .unwrap();
    i.handle(&get(b"/track?x=2", b"a.test", None));
    i.reconfigure(settings(&[("a", "a.test", "t1", plain())]))
        .unwrap();
    i.handle(&get(b"/track?x=3", b"a.test", None));
    let slots: Vec<_> = queued(&b).iter().map(|e| e.flavor).collect();
    assert_eq!(slots, [0, 1, 0]);
    assert_eq!(i.slots().len(), 2);
    assert_eq!(accepted(&i, 0), 3);
}

#[test]
fn a_removed_flavor_matches_nothing_but_keeps_its_counters() {
    let (mut i, _b) = rig(settings(&[
        ("a", "a.test", "t.a", plain()),
        ("b", "b.test", "t.b", plain()),
    ]));
    i.handle(&get(b"/track?x=1", b"b.test", None));
    i.reconfigure(settings(&[("a", "a.test", "t.a", plain())]))
        .unwrap();
    assert_eq!(i.handle(&get(b"/track?x=2", b"b.test", None)).status, 400);
    assert_eq!(i.flavors[1].name, "b");
    assert_eq!(accepted(&i, 1), 1);
    // Back again: its old row and counters.
    i.reconfigure(settings(&[
        ("a", "a.test", "t.a", plain()),
        ("b", "b.test", "t.b", plain()),
    ]))
    .unwrap();
    assert_eq!(i.handle(&get(b"/track?x=3", b"b.test", None)).status, 200);
    assert_eq!(accepted(&i, 1), 2);
    assert_eq!(i.slots().len(), 2);
}

#[test]
fn a_kept_flavor_keeps_its_dedup_store_unless_the_parameter_changes() {
    let (mut i, _b) = rig(settings(&[("a", "a.test", "t", dedup())]));
    let dup = |i: &mut Ingest| i.handle(&get(b"/track?eid=7", b"a.test", None)).outcome;
    assert_eq!(dup(&mut i), Outcome::Accepted);
    let origins = FlavorOptions {
        origins: Origins::new(&["https://shop.test"]),
        ..dedup()
    };
    i.reconfigure(settings(&[("a", "a.test", "t", origins)]))
        .unwrap();
    assert_eq!(dup(&mut i), Outcome::Duplicate);
    let other = FlavorOptions {
        dedup_param: Some("other".into()),
        ..dedup()
    };
    i.reconfigure(settings(&[("a", "a.test", "t", other)]))
        .unwrap();
    i.reconfigure(settings(&[("a", "a.test", "t", dedup())]))
        .unwrap();
    assert_eq!(dup(&mut i), Outcome::Accepted);
}

#[test]
fn origins_paths_and_limits_apply_to_the_next_request() {
    let (mut i, _b) = rig(settings(&[("a", "a.test", "t", plain())]));
    let from_shop = |i: &mut Ingest| {
        i.handle(&get(b"/track?x=1", b"a.test", Some(b"https://shop.test")))
            .cors
    };
    assert!(!from_shop(&mut i));
    let mut s = settings(&[(
        "a",
        "a.test",
        "t",
        FlavorOptions {
            origins: Origins::new(&["https://shop.test"]),
            ..plain()
        },
    )]);
    s.paths = vec!["/t".into()];
    s.limits.max_bytes = 4;
    i.reconfigure(s).unwrap();
    assert_eq!(i.handle(&get(b"/track?x=1", b"a.test", None)).status, 404);
    assert_eq!(i.handle(&get(b"/t?x=12345", b"a.test", None)).status, 414);
    assert!(
        i.handle(&get(b"/t?x=1", b"a.test", Some(b"https://shop.test")))
            .cors
    );
}

#[test]
fn a_failed_reconfigure_changes_nothing() {
    let (mut i, _b) = rig(settings(&[("a", "a.test", "t", plain())]));
    // Every new topic is a slot: more than there can be is refused whole.
    let names: Vec<String> = (0..MAX_INDEX + 1).map(|n| format!("t{n}")).collect();
    let many: Vec<_> = names
        .iter()
        .map(|t| ("a", "a.test", t.as_str(), plain()))
        .collect();
    // One flavor listed many times is not a config the checks let through; the
    // request path still refuses it without a change.
    let err = i.reconfigure(settings(&many)).unwrap_err();
    assert!(err.contains("restart"), "{err}");
    assert_eq!(i.slots().len(), 1);
    assert_eq!(i.handle(&get(b"/track?x=1", b"a.test", None)).status, 200);
}
