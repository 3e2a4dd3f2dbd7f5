//! The file writer's failure paths, through a filesystem that fails on demand (`fs.rs`):
//! a disk full on write (a torn line), on open, a truncate that fails too, and a spool
//! that cannot be written. Real files in a temporary directory; every test ends with each
//! event in the day's file exactly once (or counted as dropped) and the accounting
//! identity of `stats.rs` holding, per flavor too (`per_flavor.rs`). The same filesystem
//! records each `release` for `behind_tests.rs`.

use super::fs::{DataFile, Fs, RealFs};
use super::{FileSink, FileSinkConfig};
use crate::clock::Day;
use crate::event::{Event, SharedEvent};
use crate::sinks::backend::{Backend, Counters};
use crate::sinks::per_flavor::{FlavorSnapshot, OTHER_KEY};
use crate::sinks::spool::Spool;
use crate::sinks::stats::{flavor_snapshots, Snapshot};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// ENOSPC on Linux.
fn disk_full() -> io::Error {
    io::Error::from_raw_os_error(28)
}

#[derive(Default)]
pub(super) struct Faults {
    fail_open: AtomicBool,
    /// Bytes writes may still add before the disk is full (u64::MAX: no limit).
    write_budget: AtomicU64,
    fail_truncate: AtomicBool,
    /// Each `release` asked for, in order.
    pub(super) released: Mutex<Vec<(u64, u64)>>,
}

impl Faults {
    pub(super) fn heal(&self) {
        self.fail_open.store(false, Ordering::SeqCst);
        self.write_budget.store(u64::MAX, Ordering::SeqCst);
        self.fail_truncate.store(false, Ordering::SeqCst);
    }
}

struct FaultyFs(Arc<Faults>);

struct FaultyFile(fs::File, Arc<Faults>);

impl Fs for FaultyFs {
    type File = FaultyFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }

    fn open_append(&self, path: &Path) -> io::Result<FaultyFile> {
        if self.0.fail_open.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        Ok(FaultyFile(RealFs.open_append(path)?, self.0.clone()))
    }
}

impl DataFile for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    /// Writes what the budget allows, like a disk filling up in the middle of a write.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let budget = self.1.write_budget.load(Ordering::SeqCst);
        let n = buf.len().min(usize::try_from(budget).unwrap_or(usize::MAX));
        self.0.write_all(&buf[..n])?;
        if budget != u64::MAX {
            self.1.write_budget.fetch_sub(n as u64, Ordering::SeqCst);
        }
        if n < buf.len() {
            return Err(disk_full());
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.1.fail_truncate.load(Ordering::SeqCst) {
            return Err(io::Error::other("truncate refused"));
        }
        self.0.set_len(len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn release(&mut self, from: u64, to: u64) -> io::Result<()> {
        self.1.released.lock().unwrap().push((from, to));
        self.0.release(from, to)
    }
}

struct Rig {
    dir: PathBuf,
    faults: Arc<Faults>,
    backend: Arc<Backend>,
    sink: FileSink,
}

const DAY: Day = Day(20261124);

fn rig(name: &str, prepare: impl FnOnce(&Faults, &Path)) -> Rig {
    rig_seeded(name, |_| {}, prepare)
}

/// A rig whose directory `seed` fills before the backend opens its spool there; flavors
/// `f` (index 0) and `g`.
fn rig_seeded(name: &str, seed: impl FnOnce(&Path), prepare: impl FnOnce(&Faults, &Path)) -> Rig {
    let dir = std::env::temp_dir().join(format!("beacon-file-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    seed(&dir);
    let faults = Arc::new(Faults::default());
    faults.heal();
    let flavors = vec!["f".into(), "g".into()];
    let backend = Arc::new(Backend::new("file", 1024, &dir.join("spool"), flavors).unwrap());
    prepare(&faults, &dir);
    let sink = start(&backend, &dir, &faults);
    Rig {
        dir,
        faults,
        backend,
        sink,
    }
}

/// A sink writing under `dir/data` through `faults`' filesystem, flushing every 10 ms and
/// retrying a failed disk every 20 ms.
pub(super) fn start(backend: &Arc<Backend>, dir: &Path, faults: &Arc<Faults>) -> FileSink {
    let cfg = FileSinkConfig {
        data_dir: dir.join("data"),
        flush_interval: Duration::from_millis(10),
        fsync_interval: None,
        retry_interval: Duration::from_millis(20),
        file_suffix: String::new(),
    };
    FileSink::start_with(backend.clone(), cfg, FaultyFs(faults.clone())).unwrap()
}

/// Event `n`: a 32-byte line.
fn event(n: u64) -> SharedEvent {
    event_of(0, n)
}

/// Event `n` of flavor index `flavor`.
fn event_of(flavor: u16, n: u64) -> SharedEvent {
    Arc::new(Event {
        flavor,
        day: DAY,
        ts_ms: n as i64,
        key: None,
        line: format!("{{\"n\":{n:>8},\"pad\":\"xxxxxxxx\"}}\n")
            .into_bytes()
            .into(),
    })
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Rig {
    fn send(&self, range: std::ops::Range<u64>) {
        range.for_each(|n| self.backend.offer(event(n)));
    }

    fn stats(&self) -> Snapshot {
        Snapshot::of(&self.backend)
    }

    /// Each flavor's figures, by name.
    fn flavors(&self) -> HashMap<String, FlavorSnapshot> {
        let snap = flavor_snapshots(&self.backend);
        snap.into_iter().map(|(n, f)| (n.to_owned(), f)).collect()
    }

    fn path(&self) -> PathBuf {
        self.dir.join("data/f/2026-11-24.jsonl")
    }

    fn raw(&self) -> Vec<u8> {
        fs::read(self.path()).unwrap_or_default()
    }

    /// Stops the writer; every line of the day's file parses: the numbers in it.
    fn stop_and_read(mut self) -> (Vec<u64>, Snapshot) {
        self.sink.stop();
        let raw = self.raw();
        assert!(raw.is_empty() || raw.ends_with(b"\n"), "torn last line");
        let mut numbers: Vec<u64> = (raw.split(|&b| b == b'\n'))
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice::<serde_json::Value>(l).expect("a whole line")["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        numbers.sort_unstable();
        let s = self.stats();
        assert_flavors_accounted(&s, &self.flavors());
        (numbers, s)
    }
}

#[test]
fn disk_full_on_write_cuts_the_torn_line_spools_then_replays() {
    let r = rig("write", |f, _| f.write_budget.store(1000, Ordering::SeqCst));
    r.send(0..200);
    wait_for("the write fails", || !r.stats().up);
    let raw = r.raw();
    assert!(
        raw.len() < 1000 && raw.len() % 32 == 0,
        "cut back to whole lines"
    );
    r.faults.heal();
    wait_for("the spool is replayed", || {
        let s = r.stats();
        s.up && s.spool_pending == 0 && s.delivered == 200
    });
    let (numbers, s) = r.stop_and_read();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>());
    assert!(
        s.errors > 0 && s.spooled > 0 && s.replayed == s.spooled,
        "{s:?}"
    );
    assert_eq!(
        (s.dropped, s.in_flight, s.unaccounted()),
        (0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn disk_full_on_open_spools_until_the_file_opens() {
    let r = rig("open", |f, _| f.fail_open.store(true, Ordering::SeqCst));
    r.send(0..100);
    wait_for("every event is spooled", || r.stats().spooled == 100);
    let s = r.stats();
    assert!(!s.up && s.delivered == 0 && !r.path().exists(), "{s:?}");
    assert_eq!(s.unaccounted(), 0, "{s:?}");
    r.faults.heal();
    wait_for("the spool is replayed", || r.stats().delivered == 100);
    let (numbers, s) = r.stop_and_read();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());
    assert!(s.up && s.replayed == 100 && s.spool_pending == 0, "{s:?}");
    assert_eq!((s.dropped, s.unaccounted()), (0, 0), "{s:?}");
}

#[test]
fn a_write_whose_truncate_failed_is_cut_back_when_the_file_reopens() {
    let r = rig("truncate", |f, _| {
        f.write_budget.store(1000, Ordering::SeqCst);
        f.fail_truncate.store(true, Ordering::SeqCst);
    });
    r.send(0..200);
    wait_for("the write fails", || !r.stats().up);
    let raw = r.raw();
    assert!(
        !raw.ends_with(b"\n"),
        "the torn line stays while truncating fails"
    );
    r.faults.heal();
    wait_for("the spool is replayed", || r.stats().delivered == 200);
    let (numbers, s) = r.stop_and_read();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>());
    assert_eq!((s.dropped, s.unaccounted()), (0, 0), "{s:?}");
}

#[test]
fn a_spool_that_cannot_be_written_drops_and_reports_down() {
    let r = rig("spool", |f, dir| {
        f.fail_open.store(true, Ordering::SeqCst);
        // The spool's directory becomes a file: a new segment cannot be created.
        let spool = dir.join("spool");
        fs::remove_dir_all(&spool).unwrap();
        fs::write(&spool, b"").unwrap();
    });
    r.send(0..50);
    wait_for("every event is dropped", || r.stats().dropped == 50);
    let s = r.stats();
    assert!(!s.up && s.spooled == 0 && s.spool_pending == 0, "{s:?}");
    assert_eq!(s.unaccounted(), 0, "{s:?}");
    assert!(Counters::get(&r.backend.counters.errors) > 0);
}

#[test]
fn opening_a_file_with_a_torn_tail_cuts_it() {
    let r = rig("tail", |_, dir| {
        let day = dir.join("data/f");
        fs::create_dir_all(&day).unwrap();
        let whole = String::from_utf8(event(7).line.to_vec()).unwrap();
        fs::write(
            day.join("2026-11-24.jsonl"),
            format!("{whole}{{\"n\":8,\"pa"),
        )
        .unwrap();
    });
    r.send(9..12);
    wait_for("the events land", || r.stats().delivered == 3);
    let (numbers, _) = r.stop_and_read();
    assert_eq!(numbers, vec![7, 9, 10, 11]);
}

#[test]
fn slots_a_reload_adds_write_to_their_flavors_directory() {
    let r = rig("slots", |_, _| {});
    let at = |slot: u16, n: u64| {
        let ev = event(n);
        Arc::new(Event {
            flavor: slot,
            day: ev.day,
            ts_ms: ev.ts_ms,
            key: None,
            line: ev.line.clone(),
        })
    };
    r.send(0..2);
    wait_for("the first events land", || r.stats().delivered == 2);
    // A reload: flavor `f` gets a second slot (a new Kafka topic), flavor `h` a first.
    r.backend
        .set_flavors(&["f".into(), "g".into(), "f".into(), "h".into()]);
    r.backend.offer(at(2, 2));
    r.backend.offer(at(3, 3));
    r.backend.offer(at(0, 4));
    wait_for("every event lands", || r.stats().delivered == 5);
    let h = fs::read_to_string(r.dir.join("data/h/2026-11-24.jsonl")).unwrap();
    assert_eq!(h, String::from_utf8(event(3).line.to_vec()).unwrap());
    let (numbers, s) = r.stop_and_read();
    assert_eq!(
        numbers,
        vec![0, 1, 2, 4],
        "both slots of `f` share its file"
    );
    assert_eq!(s.unaccounted(), 0, "{s:?}");
}

/// At a quiet moment: each flavor is accounted for, and the flavors add up to the backend.
fn assert_flavors_accounted(s: &Snapshot, flavors: &HashMap<String, FlavorSnapshot>) {
    assert_eq!(
        (s.buffered, s.in_flight, s.unaccounted()),
        (0, 0, 0),
        "{s:?}"
    );
    let mut sum = FlavorSnapshot::default();
    for (name, f) in flavors {
        assert_eq!(f.unaccounted(), 0, "{name}: {f:?}");
        sum.accepted += f.accepted;
        sum.delivered += f.delivered;
        sum.dropped += f.dropped;
        sum.spooled += f.spooled;
        sum.spool_pending += f.spool_pending;
        sum.recovered += f.recovered;
    }
    let total = (
        s.accepted,
        s.delivered,
        s.dropped,
        s.spooled,
        s.spool_pending,
    );
    let summed = (
        sum.accepted,
        sum.delivered,
        sum.dropped,
        sum.spooled,
        sum.spool_pending,
    );
    assert_eq!((total, s.recovered), (summed, sum.recovered), "{flavors:?}");
}

#[test]
fn per_flavor_figures_follow_a_disk_full_spool_and_replay() {
    let r = rig("flavors", |f, _| {
        f.write_budget.store(1000, Ordering::SeqCst)
    });
    (0..200).for_each(|n| r.backend.offer(event_of((n % 2) as u16, n)));
    wait_for("the write fails", || !r.stats().up);
    r.faults.heal();
    wait_for("the spool is replayed", || r.stats().delivered == 200);
    let flavors = r.flavors();
    let (_, s) = r.stop_and_read();
    assert!(s.spooled > 0, "{s:?}");
    for name in ["f", "g"] {
        let f = &flavors[name];
        assert_eq!(
            (f.accepted, f.delivered, f.spool_pending),
            (100, 100, 0),
            "{name}"
        );
    }
    assert!(
        !flavors.contains_key(OTHER_KEY),
        "no other row while it is empty"
    );
    assert_flavors_accounted(&s, &flavors);
}

#[test]
fn per_flavor_drops_when_the_spool_cannot_be_written() {
    let r = rig("flavordrop", |f, dir| {
        f.fail_open.store(true, Ordering::SeqCst);
        let spool = dir.join("spool");
        fs::remove_dir_all(&spool).unwrap();
        fs::write(&spool, b"").unwrap();
    });
    (0..30).for_each(|n| r.backend.offer(event_of(u16::from(n % 3 == 0), n)));
    wait_for("every event is dropped", || r.stats().dropped == 30);
    let flavors = r.flavors();
    assert_eq!((flavors["f"].dropped, flavors["g"].dropped), (20, 10));
    assert_flavors_accounted(&r.stats(), &flavors);
}

#[test]
fn an_earlier_runs_spool_is_recovered_and_replayed_per_flavor() {
    let seed = |dir: &Path| {
        let mut spool = Spool::open(&dir.join("spool")).unwrap();
        let line = |n: u64| event(n).line.to_vec();
        for (flavor, n) in [
            ("f", 1),
            ("g", 2),
            ("f", 3),
            ("gone", 4),
            ("g", 5),
            ("f", 6),
        ] {
            spool.append(flavor, n as i64, DAY, None, &line(n)).unwrap();
        }
        drop(spool); // flushed: the earlier run ended
        let seg = fs::read_dir(dir.join("spool")).unwrap().next().unwrap();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(seg.unwrap().path());
        std::io::Write::write_all(f.as_mut().unwrap(), b"g\t17").unwrap(); // torn by a crash
    };
    let r = rig_seeded("recovered", seed, |_, _| {});
    let flavors = r.flavors();
    let recovered = |name: &str| flavors[name].recovered;
    assert_eq!(
        (recovered("f"), recovered("g"), recovered(OTHER_KEY)),
        (3, 3, 1)
    );
    wait_for("the spool is replayed", || r.stats().delivered == 6);
    let flavors = r.flavors();
    let (numbers, s) = r.stop_and_read();
    assert_eq!(numbers, vec![1, 3, 6], "flavor f's file");
    assert_eq!(
        (flavors["g"].delivered, flavors["g"].dropped),
        (2, 1),
        "the torn line"
    );
    let other = &flavors[OTHER_KEY];
    assert_eq!(
        (other.delivered, other.spool_pending),
        (1, 0),
        "written to data/gone/"
    );
    assert_flavors_accounted(&s, &flavors);
}
