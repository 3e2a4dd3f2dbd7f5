//! The file writer's failure paths, through a filesystem that fails on demand (`fs.rs`):
//! a disk full on write (a torn line), on open, a truncate that fails too, and a spool
//! that cannot be written. Real files in a temporary directory; every test ends with each
//! event in the day's file exactly once (or counted as dropped) and the accounting
//! identity of `stats.rs` holding.

use super::fs::{DataFile, Fs, RealFs};
use super::{FileSink, FileSinkConfig};
use crate::clock::Day;
use crate::event::{Event, SharedEvent};
use crate::sinks::backend::{Backend, Counters};
use crate::sinks::stats::Snapshot;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// ENOSPC on Linux.
fn disk_full() -> io::Error {
    io::Error::from_raw_os_error(28)
}

#[derive(Default)]
struct Faults {
    fail_open: AtomicBool,
    /// Bytes writes may still add before the disk is full (u64::MAX: no limit).
    write_budget: AtomicU64,
    fail_truncate: AtomicBool,
}

impl Faults {
    fn heal(&self) {
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
}

struct Rig {
    dir: PathBuf,
    faults: Arc<Faults>,
    backend: Arc<Backend>,
    sink: FileSink,
}

const DAY: Day = Day(20261124);

fn rig(name: &str, prepare: impl FnOnce(&Faults, &Path)) -> Rig {
    let dir = std::env::temp_dir().join(format!("beacon-file-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let faults = Arc::new(Faults::default());
    faults.heal();
    let backend =
        Arc::new(Backend::new("file", 1024, &dir.join("spool"), vec!["f".into()]).unwrap());
    prepare(&faults, &dir);
    let cfg = FileSinkConfig {
        data_dir: dir.join("data"),
        flush_interval: Duration::from_millis(10),
        fsync_interval: None,
        retry_interval: Duration::from_millis(20),
        file_suffix: String::new(),
    };
    let sink = FileSink::start_with(backend.clone(), cfg, FaultyFs(faults.clone())).unwrap();
    Rig {
        dir,
        faults,
        backend,
        sink,
    }
}

/// Event `n`: a 32-byte line.
fn event(n: u64) -> SharedEvent {
    Arc::new(Event {
        flavor: 0,
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
        (numbers, self.stats())
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
    // A reload: flavor `f` gets a second slot (a new Kafka topic), flavor `g` a first.
    r.backend.set_flavors(&["f".into(), "f".into(), "g".into()]);
    r.backend.offer(at(1, 2));
    r.backend.offer(at(2, 3));
    r.backend.offer(at(0, 4));
    wait_for("every event lands", || r.stats().delivered == 5);
    let g = fs::read_to_string(r.dir.join("data/g/2026-11-24.jsonl")).unwrap();
    assert_eq!(g, String::from_utf8(event(3).line.to_vec()).unwrap());
    let (numbers, s) = r.stop_and_read();
    assert_eq!(
        numbers,
        vec![0, 1, 2, 4],
        "both slots of `f` share its file"
    );
    assert_eq!(s.unaccounted(), 0, "{s:?}");
}
