//! The Kafka sink without Kafka: a fake producer that takes or refuses each message as a
//! test says, delivery reports handed in as the callbacks would, a real spool and rejected
//! log in a temporary directory. After each scenario every event is accounted for
//! (`Snapshot::unaccounted`), per flavor too whenever nothing is buffered or in flight.
//! tests/test_kafka_*.py run the same paths against a broker.

use super::reports::{event_flavor, event_ts_ms};
use super::*;
use crate::clock::Day;
use crate::event::Event;
use crate::sinks::per_flavor::FlavorSnapshot;
use crate::sinks::stats::{flavor_snapshots, Snapshot};
use std::fs;

const BASE_MS: i64 = 1_795_508_102_000;

struct Rig {
    dir: PathBuf,
    sink: KafkaSink,
}

fn rig(name: &str) -> Rig {
    rig_topics(name, ["topic-a", "topic-b"])
}

/// Flavors `a` and `b`, to these topics.
fn rig_topics(name: &str, topics: [&str; 2]) -> Rig {
    let dir = std::env::temp_dir().join(format!("beacon-kafka-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let flavors = vec!["a".to_owned(), "b".to_owned()];
    let backend = Arc::new(Backend::new("kafka", 1024, &dir.join("spool"), flavors).unwrap());
    let cfg = KafkaConfig {
        topics: topics.map(String::from).to_vec(),
        rejected_dir: dir.join("kafka-rejected"),
        ..KafkaConfig::default()
    };
    Rig {
        dir,
        sink: KafkaSink::new(backend, cfg),
    }
}

/// Event `n` of flavor `n % 2` (`a`, `b`), keyed for flavor 0, its `ts` at `BASE_MS + n`.
fn event(n: u64) -> SharedEvent {
    let ts_ms = BASE_MS + n as i64;
    let ts = chrono::DateTime::from_timestamp_millis(ts_ms).unwrap();
    let ts = ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let flavor = (n % 2) as u16;
    Arc::new(Event {
        flavor,
        day: Day(20261124),
        ts_ms,
        key: (flavor == 0).then(|| format!("k{n}").into_bytes().into()),
        line: format!(
            "{{\"ts\":\"{ts}\",\"flavor\":\"{}\",\"params\":{{\"n\":\"{n}\"}}}}\n",
            ["a", "b"][flavor as usize]
        )
        .into_bytes()
        .into(),
    })
}

/// A message as a producer saw it.
#[derive(Clone, Debug, PartialEq)]
struct Taken {
    route: Route,
    topic: u16,
    n: u64,
    key: Option<Vec<u8>>,
    ts_ms: i64,
    value: Vec<u8>,
}

/// Takes every message, except that call `i` (0-based) gets `refuse(i)` when it says so.
struct Fake<F: FnMut(usize) -> Option<Refusal>> {
    calls: usize,
    taken: Vec<Taken>,
    refuse: F,
}

fn fake<F: FnMut(usize) -> Option<Refusal>>(refuse: F) -> Fake<F> {
    Fake {
        calls: 0,
        taken: Vec::new(),
        refuse,
    }
}

fn takes_all() -> Fake<impl FnMut(usize) -> Option<Refusal>> {
    fake(|_| None)
}

impl<F: FnMut(usize) -> Option<Refusal>> Producer for Fake<F> {
    fn produce(&mut self, route: Route, m: &Message<'_>) -> Result<(), Refusal> {
        let call = self.calls;
        self.calls += 1;
        if let Some(r) = (self.refuse)(call) {
            return Err(r);
        }
        let v: serde_json::Value = serde_json::from_slice(m.value).expect("JSON, no newline");
        self.taken.push(Taken {
            route,
            topic: m.topic,
            n: v["params"]["n"].as_str().unwrap().parse().unwrap(),
            key: m.key.map(<[u8]>::to_vec),
            ts_ms: m.ts_ms,
            value: m.value.to_vec(),
        });
        Ok(())
    }
}

impl Rig {
    fn send(&self, range: std::ops::Range<u64>) {
        range.for_each(|n| self.sink.backend.offer(event(n)));
    }

    /// One live hand-over of what is queued.
    fn live(&self, p: &mut impl Producer) -> Handed {
        let batch = self.sink.take_live(true);
        let handed = self.sink.hand_live(batch, self.sink.route(), p);
        self.sink.spill();
        handed
    }

    /// One replay step at `now`, as the binding does it.
    fn replay(&self, now: Instant, p: &mut impl Producer) -> usize {
        let budget = self.sink.replay_budget(now);
        if budget == 0 || !self.sink.load_segment() {
            return 0;
        }
        self.sink.replay_chunk(budget, p).0
    }

    fn stats(&self) -> Snapshot {
        Snapshot::of(&self.sink.backend)
    }

    /// Flavors `a` and `b`'s figures.
    fn flavors(&self) -> [FlavorSnapshot; 2] {
        let snap = flavor_snapshots(&self.sink.backend);
        assert_eq!(snap.len(), 2, "no (other) row: {snap:?}");
        [snap[0].1.clone(), snap[1].1.clone()]
    }

    /// A delivery report for a message the producer took.
    fn report(&self, t: &Taken, error: Option<&str>) {
        let topics = self.sink.config().topics;
        let topic = topics[t.topic as usize].as_str();
        let msg = Returned {
            topic,
            value: &t.value,
            key: t.key.as_deref(),
            ts_ms: -1, // failed reports carry no timestamp
        };
        match error {
            None => self.sink.delivered(t.route),
            Some(e) if e.starts_with("Broker: Message size") => self.sink.rejected(t.route, msg, e),
            Some(e) => self.sink.failed(t.route, msg, e, false),
        }
    }

    fn notes(&self) -> String {
        let notes = self.sink.take_notes();
        notes.into_iter().map(|(_, t)| t + "\n").collect()
    }
}

impl Rig {
    /// Every event accounted for; at a quiet moment each flavor too, and the flavors add
    /// up to the backend.
    fn assert_accounted(&self, s: &Snapshot) {
        assert_eq!(s.unaccounted(), 0, "{s:?}");
        if s.buffered > 0 || s.in_flight > 0 {
            return;
        }
        let [a, b] = self.flavors();
        assert_eq!((a.unaccounted(), b.unaccounted()), (0, 0), "{a:?} {b:?}");
        let sum = |f: fn(&FlavorSnapshot) -> u64| f(&a) + f(&b);
        let total = (s.accepted, s.delivered, s.rejected, s.dropped, s.spooled);
        let flavors = (
            sum(|f| f.accepted),
            sum(|f| f.delivered),
            sum(|f| f.rejected),
            sum(|f| f.dropped),
            sum(|f| f.spooled),
        );
        assert_eq!(total, flavors, "{a:?} {b:?}");
        assert_eq!(s.spool_pending, sum(|f| f.spool_pending));
    }
}

#[test]
fn live_messages_carry_topic_key_and_timestamp_and_count_once_settled() {
    let r = rig("live");
    r.send(0..10);
    let mut p = takes_all();
    assert_eq!(r.live(&mut p), Handed::All);
    assert_eq!(
        p.taken.iter().map(|t| t.n).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    for t in &p.taken {
        assert_eq!(t.route, Route::Fast);
        assert_eq!(t.topic, (t.n % 2) as u16);
        assert_eq!(t.ts_ms, BASE_MS + t.n as i64);
        assert_eq!(
            t.key,
            (t.n % 2 == 0).then(|| format!("k{}", t.n).into_bytes())
        );
    }
    assert_eq!((r.stats().in_flight, r.stats().delivered), (10, 0));
    r.sink.settle(4); // librdkafka still holds 4
    assert_eq!((r.stats().in_flight, r.stats().delivered), (4, 6));
    r.sink.settle(0);
    let s = r.stats();
    assert_eq!((s.in_flight, s.delivered, s.buffered), (0, 10, 0));
    r.assert_accounted(&s);
}

#[test]
fn events_queued_within_the_gather_window_come_out_as_one_batch() {
    let r = rig("gather");
    // The idle wait ends by the event below, not by time; the gather window is the
    // default.
    r.sink.configure(KafkaConfig {
        idle_wait: Duration::from_secs(60),
        ..r.sink.config()
    });
    // Idle: the first event is waited for, and taken alone.
    let first = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(5));
            r.send(0..1);
        });
        r.sink.take_live(false)
    });
    assert_eq!(first.len(), 1);
    // Right after a batch: what is queued waits for the window's end, then goes as one.
    r.send(1..6);
    let batch = r.sink.take_live(false);
    let ns: Vec<i64> = batch.iter().map(|e| e.ts_ms - BASE_MS).collect();
    assert_eq!(ns, (1..6).collect::<Vec<_>>());
    assert!(r.sink.take_live(true).is_empty());
}

#[test]
fn a_full_librdkafka_holds_the_rest_once_then_spools_it() {
    let r = rig("full");
    r.send(0..10);
    let mut p = fake(|i| (i >= 3).then_some(Refusal::Full));
    assert_eq!(r.live(&mut p), Handed::Full);
    let s = r.stats();
    assert_eq!((s.in_flight, s.buffered, s.spooled, s.up), (3, 7, 0, true));
    r.assert_accounted(&s);
    // The next hand-over starts with the 7; still no room: they go to the spool.
    assert_eq!(r.live(&mut p), Handed::Full);
    let s = r.stats();
    assert_eq!((s.in_flight, s.buffered, s.spooled, s.up), (3, 0, 7, false));
    assert_eq!(s.spool_pending, 7);
    r.assert_accounted(&s);
    assert!(r.notes().contains("producer buffer full"));
}

#[test]
fn messages_refused_for_good_go_to_the_rejected_log() {
    let r = rig("reject");
    r.send(0..4);
    let mut p =
        fake(|i| (i == 2).then(|| Refusal::Reject("Broker: Message size too large".into())));
    assert_eq!(r.live(&mut p), Handed::All);
    let s = r.stats();
    assert_eq!((s.rejected, s.in_flight, s.up), (1, 3, true));
    let files: Vec<_> = fs::read_dir(r.dir.join("kafka-rejected"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1);
    let text = fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(
        (v["topic"].as_str(), v["key"].as_str()),
        (Some("topic-a"), Some("k2"))
    );
    assert_eq!(v["ts_ms"], BASE_MS + 2);
    assert!(v["event"].as_str().unwrap().contains("\"n\":\"2\""));
    r.sink.settle(0);
    r.assert_accounted(&r.stats());
    assert!(r
        .notes()
        .contains("Kafka refused a message (Broker: Message size too large)"));
}

#[test]
fn a_failed_delivery_is_spooled_and_replayed_once() {
    let r = rig("replay");
    r.send(0..5);
    let mut p = takes_all();
    r.live(&mut p);
    for t in &p.taken[1..3] {
        r.report(t, Some("Local: Message timed out"));
    }
    r.sink.settle(0);
    let s = r.stats();
    assert_eq!(
        (s.delivered, s.failed, s.spooled, s.spool_pending, s.up),
        (3, 2, 2, 2, false)
    );
    r.assert_accounted(&s);
    // Down: the replay hands over a probe chunk, through the reporting producer.
    let mut p2 = takes_all();
    assert_eq!(r.replay(Instant::now(), &mut p2), 2);
    assert_eq!(
        p2.taken.iter().map(|t| (t.route, t.n)).collect::<Vec<_>>(),
        vec![(Route::Replay, 1), (Route::Replay, 2)]
    );
    // The spooled copy kept key and timestamp (the failed report had none).
    assert_eq!(
        (p2.taken[1].key.as_deref(), p2.taken[1].ts_ms),
        (Some(&b"k2"[..]), BASE_MS + 2)
    );
    let s = r.stats();
    assert_eq!((s.in_flight, s.spool_pending), (2, 0));
    r.assert_accounted(&s);
    for t in &p2.taken {
        r.report(t, None);
    }
    r.sink.settle(0);
    let s = r.stats();
    assert_eq!((s.delivered, s.replayed, s.spooled, s.up), (5, 2, 2, true));
    assert_eq!(
        r.sink.backend.spool_gauges.pending(),
        0,
        "the segment left the disk"
    );
    r.assert_accounted(&s);
    assert!(r.notes().contains("deliveries succeed again"));
}

#[test]
fn a_replay_that_fails_goes_back_to_the_spool_counted_once() {
    let r = rig("respool");
    r.send(0..2);
    let mut p = takes_all();
    r.live(&mut p);
    p.taken
        .iter()
        .for_each(|t| r.report(t, Some("Local: Message timed out")));
    let mut p2 = takes_all();
    assert_eq!(r.replay(Instant::now(), &mut p2), 2);
    r.report(&p2.taken[0], Some("Local: Message timed out"));
    r.report(&p2.taken[1], None);
    r.sink.settle(0);
    let s = r.stats();
    assert_eq!((s.spooled, s.failed, s.delivered, s.replayed), (2, 3, 1, 1));
    assert_eq!(s.spool_pending, 1);
    r.assert_accounted(&s);
}

#[test]
fn the_replay_keeps_to_its_rate_and_its_share_of_librdkafka() {
    let r = rig("rate");
    r.send(0..5000);
    let mut p = fake(|_| Some(Refusal::Down("all brokers down".into())));
    r.live(&mut p); // everything goes to the spool
    r.sink.brokers_reachable();
    let t0 = Instant::now() + Duration::from_secs(10);
    let mut p = takes_all();
    // A full bucket: one burst (100 ms at 20,000/s).
    assert_eq!(r.replay(t0, &mut p), 2000);
    assert_eq!(r.replay(t0, &mut p), 0);
    assert_eq!(r.replay(t0 + Duration::from_millis(50), &mut p), 1000);
    // librdkafka (4 MiB of 512-byte messages, half for the replay) holds the rest back.
    r.sink.configure(KafkaConfig {
        buffer_kbytes: 2048,
        ..r.sink.config()
    });
    assert_eq!(
        r.replay(t0 + Duration::from_secs(1), &mut p),
        0,
        "3,000 of 2,048 in flight"
    );
    r.assert_accounted(&r.stats());
}

#[test]
fn while_down_and_idle_a_metadata_probe_is_due_once_per_interval() {
    let r = rig("probe");
    let now = Instant::now();
    assert!(!r.sink.probe_due(now), "up");
    r.sink.brokers_down("all brokers down");
    assert!(r.sink.probe_due(now));
    assert!(!r.sink.probe_due(now + Duration::from_secs(1)));
    assert!(r.sink.probe_due(now + Duration::from_secs(6)));
    r.sink.brokers_reachable();
    assert!(r.stats().up);
}

#[test]
fn a_spool_that_cannot_be_written_counts_dropped() {
    let r = rig("spoolfail");
    let spool = r.dir.join("spool");
    fs::remove_dir_all(&spool).unwrap();
    fs::write(&spool, b"").unwrap();
    r.send(0..3);
    let mut p = takes_all();
    r.live(&mut p);
    r.report(&p.taken[0], Some("Local: Message timed out"));
    r.sink.settle(0);
    let s = r.stats();
    assert_eq!((s.dropped, s.spooled, s.delivered), (1, 0, 2));
    r.assert_accounted(&s);
    assert!(r.notes().contains("spool write failed, 1 messages dropped"));
}

#[test]
fn a_rejected_log_that_cannot_be_written_counts_dropped() {
    let r = rig("rejectfail");
    fs::create_dir_all(&r.dir).unwrap();
    fs::write(r.dir.join("kafka-rejected"), b"").unwrap(); // a file where the dir goes
    r.send(0..1);
    let mut p = fake(|_| Some(Refusal::Reject("too large".into())));
    r.live(&mut p);
    let s = r.stats();
    assert_eq!((s.dropped, s.rejected, s.up), (1, 0, true));
    r.assert_accounted(&s);
    assert!(r.notes().contains("cannot write a rejected message"));
}

#[test]
fn at_shutdown_the_unhanded_replay_goes_back_and_the_segment_waits_for_reports() {
    let r = rig("shutdown");
    r.send(0..10);
    r.live(&mut fake(|_| {
        Some(Refusal::Down("all brokers down".into()))
    }));
    r.sink.brokers_reachable();
    let mut p = takes_all();
    let t0 = Instant::now() + Duration::from_secs(10);
    r.sink.configure(KafkaConfig {
        replay_burst: 4.0,
        ..r.sink.config()
    });
    assert_eq!(r.replay(t0, &mut p), 4);
    r.sink.end_replay();
    assert_eq!(
        r.stats().spool_pending,
        6,
        "the 6 not handed over are spooled again"
    );
    r.sink.settle(0);
    r.sink.close();
    assert!(r.notes().contains("4 replayed messages unreported"));
    p.taken.iter().for_each(|t| r.report(t, None));
    r.sink.settle(0);
    let s = r.stats();
    assert_eq!(
        (s.delivered, s.replayed, s.spooled, s.spool_pending),
        (4, 4, 10, 6)
    );
    assert_eq!(
        r.sink.backend.spool_gauges.pending(),
        6,
        "the replayed segment is gone"
    );
    r.assert_accounted(&s);
}

#[test]
fn an_events_timestamp_is_read_from_its_json() {
    let v = br#"{"ts":"2026-11-24T10:15:02.123+02:00","flavor":"a","params":{}}"#;
    assert_eq!(event_ts_ms(v), Some(1_795_508_102_123));
    let other = br#"{"id":"x","ts":"2026-11-24T08:15:02.123+00:00"}"#;
    assert_eq!(event_ts_ms(other), event_ts_ms(v));
    assert_eq!(event_ts_ms(b"{}"), None);
}

#[test]
fn per_flavor_deliveries_are_a_bound_until_librdkafka_holds_nothing() {
    let r = rig("flavorbound");
    r.send(0..10);
    let mut p = takes_all();
    r.live(&mut p);
    r.report(&p.taken[3], Some("Broker: Message size too large")); // flavor b
    r.sink.settle(4); // librdkafka still holds 4, of either flavor
    let [a, b] = r.flavors();
    assert_eq!((r.stats().delivered, a.delivered, b.delivered), (5, 1, 0));
    assert_eq!(b.rejected, 1);
    r.sink.settle(0);
    let [a, b] = r.flavors();
    assert_eq!((a.delivered, b.delivered, b.rejected), (5, 4, 1));
    r.assert_accounted(&r.stats());
}

#[test]
fn a_flavor_refused_for_good_is_counted_apart_from_one_that_fails() {
    let r = rig("flavorfates");
    r.send(0..20);
    let mut p = takes_all();
    r.live(&mut p);
    for t in &p.taken {
        match t.n % 4 {
            1 | 3 => r.report(t, Some("Broker: Message size too large")), // every b
            0 => r.report(t, Some("Local: Message timed out")),           // half of a
            _ => {}
        }
    }
    r.sink.settle(0);
    let [a, b] = r.flavors();
    assert_eq!(
        (a.accepted, a.delivered, a.spooled, a.spool_pending),
        (10, 5, 5, 5)
    );
    assert_eq!(
        (b.accepted, b.delivered, b.rejected, b.spooled),
        (10, 0, 10, 0)
    );
    r.assert_accounted(&r.stats());
    let mut p2 = takes_all();
    assert_eq!(r.replay(Instant::now(), &mut p2), 5);
    assert_eq!(r.flavors()[0].spool_pending, 0, "taken by the replay");
    p2.taken.iter().for_each(|t| r.report(t, None));
    r.sink.settle(0);
    let [a, _] = r.flavors();
    assert_eq!((a.delivered, a.spool_pending), (10, 0));
    r.assert_accounted(&r.stats());
}

#[test]
fn a_failed_delivery_on_a_shared_topic_is_spooled_under_its_own_flavor() {
    let r = rig_topics("shared", ["beacon.all", "beacon.all"]);
    r.send(0..4);
    let mut p = takes_all();
    r.live(&mut p);
    r.report(&p.taken[1], Some("Local: Message timed out")); // flavor b
    r.sink.settle(0);
    let [a, b] = r.flavors();
    assert_eq!((a.spool_pending, b.spool_pending), (0, 1));
    assert_eq!((a.delivered, b.delivered), (2, 1));
    r.assert_accounted(&r.stats());
    let seg = r.sink.backend.spool().take_oldest().unwrap().unwrap();
    assert_eq!(
        seg.records[0].flavor, "b",
        "the JSON's flavor, not the topic's first"
    );
}

#[test]
fn an_events_flavor_is_read_from_its_json() {
    let v = br#"{"ts":"2026-11-24T10:15:02.123+02:00","flavor":"shop.gr","params":{"flavor":"x"}}"#;
    assert_eq!(event_flavor(v), Some("shop.gr"));
    assert_eq!(event_flavor(br#"{"ts":"x","params":{}}"#), None);
}
