//! The file writer thread (see `mod.rs` for what it promises): buffers lines per daily
//! file, flushes them whole or cuts the file back and spools them, replays the spool.

use super::behind::Behind;
use super::fs::{complete_len, DataFile, Fs};
use super::{Control, FileSinkConfig};
use crate::clock::Day;
use crate::event::{Event, SharedEvent};
use crate::sinks::backend::{Backend, Counters};
use crate::sinks::spool::Segment;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Flush a file's buffer early once it holds this much.
const BUFFER_BYTES: usize = 256 << 10;
/// Events taken from the queue per loop.
const BATCH: usize = 4096;
/// Close a file nobody wrote to for this long (yesterday's file after midnight).
const IDLE_CLOSE: Duration = Duration::from_secs(60);
/// Sleep when the queue is empty; bounds the added latency to disk. Under load the writer
/// drains the queue and sleeps this long again: each wake-up preempts the event loop on a
/// shared core, so 20 ms (~50 wake-ups a second, not 200 at 5 ms; docs/performance.md,
/// "Fewer wake-ups").
const IDLE_PARK: Duration = Duration::from_millis(20);

struct OpenFile<D> {
    file: D,
    /// File length after the last successful flush: where to truncate back to on error.
    good_len: u64,
    buf: Vec<u8>,
    /// Events in `buf`, and whether each came from the spool.
    pending: Vec<(SharedEvent, bool)>,
    last_write: Instant,
    unsynced: bool,
    behind: Behind,
}

pub(super) struct Writer<F: Fs> {
    backend: Arc<Backend>,
    cfg: FileSinkConfig,
    control: Arc<Control>,
    fs: F,
    /// Directories (flavor names) by id: files are keyed by directory, not by slot, as
    /// two slots of one flavor (a reload changed its topic) share its files. Replayed
    /// records of flavors no longer configured add theirs.
    dirs: Vec<String>,
    /// Directory id by slot (`Event::flavor`), extended when a reload adds slots.
    slot_dirs: Vec<u16>,
    files: HashMap<(u16, Day), OpenFile<F::File>>,
    /// Files whose truncate failed after a failed write, with the length to cut them back
    /// to when reopened: the whole lines of that write were spooled too.
    cut_back: HashMap<(u16, Day), u64>,
    /// Writes succeed; published as the backend's `up` once a retry has settled.
    healthy: bool,
    last_retry: Instant,
    last_flush: Instant,
    last_fsync: Instant,
}

impl<F: Fs> Writer<F> {
    pub(super) fn new(
        backend: Arc<Backend>,
        cfg: FileSinkConfig,
        control: Arc<Control>,
        fs: F,
    ) -> Writer<F> {
        let now = Instant::now();
        Writer {
            dirs: Vec::new(),
            slot_dirs: Vec::new(),
            backend,
            cfg,
            control,
            fs,
            files: HashMap::new(),
            cut_back: HashMap::new(),
            healthy: true,
            last_retry: now,
            last_flush: now,
            last_fsync: now,
        }
    }

    fn counters(&self) -> &Counters {
        &self.backend.counters
    }

    pub(super) fn run(&mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        // Events spooled by an earlier run are replayed first.
        self.replay_spool();
        loop {
            let stopping = self.control.stop.load(Ordering::Acquire);
            if self.control.reopen.swap(false, Ordering::AcqRel) {
                self.flush_all();
                self.files.clear();
            }
            if !self.healthy && self.last_retry.elapsed() >= self.cfg.retry_interval {
                self.last_retry = Instant::now();
                self.healthy = true;
                self.replay_spool();
                self.counters().set_up(self.healthy);
            }
            batch.clear();
            let n = self.backend.queue.pop_batch(&mut batch, BATCH);
            if self.healthy {
                // One clock read per batch: a file's idle time is minutes (IDLE_CLOSE).
                let now = Instant::now();
                for ev in batch.drain(..) {
                    let dir = self.dir_of_slot(ev.flavor);
                    self.write(ev, dir, false, now);
                }
            } else {
                self.backend.spool_events(&batch);
            }
            if stopping || self.last_flush.elapsed() >= self.cfg.flush_interval {
                self.tick();
            }
            if stopping && self.backend.queue.is_empty() {
                self.tick();
                return;
            }
            if n == 0 {
                thread::park_timeout(IDLE_PARK);
            }
        }
    }

    /// Periodic work: flush buffers and the spool, fsync when due, close idle files,
    /// and replay spooled events while healthy.
    fn tick(&mut self) {
        self.flush_all();
        let _ = self.backend.spool().flush();
        if let Some(every) = self.cfg.fsync_interval {
            if self.last_fsync.elapsed() >= every {
                self.fsync_all();
                self.last_fsync = Instant::now();
            }
        }
        self.files
            .retain(|_, f| !f.pending.is_empty() || f.last_write.elapsed() < IDLE_CLOSE);
        if self.healthy {
            self.replay_spool();
        }
        self.last_flush = Instant::now();
    }

    /// Writes spooled segments, oldest first, while the disk takes them.
    fn replay_spool(&mut self) {
        while self.healthy {
            let taken = self.backend.spool().take_oldest();
            let seg: Segment = match taken {
                Ok(Some(seg)) => seg,
                Ok(None) => return,
                Err(_) => {
                    Counters::add(&self.counters().errors, 1);
                    return;
                }
            };
            // Its lines leave `spool_pending` now: into the buffers, or torn (dropped).
            Counters::set(&self.counters().replay_taken, seg.lines());
            self.backend.drop_torn(&seg);
            for rec in &seg.records {
                let b = &self.backend;
                b.taken_from_spool(b.slot_of_name(&rec.flavor), 1);
                let dir = self.dir_id(&rec.flavor);
                let ev = Event {
                    flavor: self.backend.flavor_index(&rec.flavor),
                    day: rec.day,
                    ts_ms: rec.ts_ms,
                    key: rec.key.clone().map(Vec::into_boxed_slice),
                    line: rec.line.clone().into_boxed_slice(),
                };
                self.write(Arc::new(ev), dir, true, Instant::now());
            }
            // Whatever did not land was spooled again by the failed flush: the segment
            // is handled either way.
            self.flush_all();
            let removed = self.backend.spool().remove(seg);
            Counters::set(&self.counters().replay_taken, 0);
            if removed.is_err() {
                Counters::add(&self.counters().errors, 1);
                return;
            }
        }
    }

    fn dir_id(&mut self, name: &str) -> u16 {
        match self.dirs.iter().position(|n| n == name) {
            Some(i) => i as u16,
            None => {
                self.dirs.push(name.to_owned());
                (self.dirs.len() - 1) as u16
            }
        }
    }

    fn dir_of_slot(&mut self, slot: u16) -> u16 {
        if let Some(&dir) = self.slot_dirs.get(slot as usize) {
            return dir;
        }
        // A slot this writer has not seen: the backend named it before its first event.
        let names = self.backend.flavor_names();
        for name in &names[self.slot_dirs.len().min(names.len())..] {
            let dir = self.dir_id(name);
            self.slot_dirs.push(dir);
        }
        match self.slot_dirs.get(slot as usize) {
            Some(&dir) => dir,
            None => self.dir_id("unknown"),
        }
    }

    fn write(&mut self, ev: SharedEvent, dir: u16, replayed: bool, now: Instant) {
        let key = (dir, ev.day);
        // One hash lookup per event; a second only when the day's file is opened.
        let f = match self.files.get_mut(&key) {
            Some(f) => f,
            None => match self.open(key) {
                Ok(f) => self.files.entry(key).or_insert(f),
                Err(_) => {
                    self.fail(vec![(ev, replayed)]);
                    return;
                }
            },
        };
        Counters::add(&self.backend.counters.in_flight, 1);
        f.buf.extend_from_slice(&ev.line);
        f.pending.push((ev, replayed));
        f.last_write = now;
        if f.buf.len() >= BUFFER_BYTES {
            self.flush_file(key);
        }
    }

    /// Opens a day's file for appending. What a failed write left because its truncate
    /// failed too is cut off first (those events were spooled), and so is a torn last
    /// line (a crash in the middle of a write: those events were lost with the process).
    fn open(&mut self, key: (u16, Day)) -> io::Result<OpenFile<F::File>> {
        let (dir, day) = key;
        let dir = self.cfg.data_dir.join(&self.dirs[dir as usize]);
        self.fs.create_dir_all(&dir)?;
        let path = dir.join(format!("{}{}.jsonl", day.iso(), self.cfg.file_suffix));
        let mut file = self.fs.open_append(&path)?;
        let len = file.len()?;
        let good_len = match self.cut_back.get(&key) {
            Some(&good) if good <= len => good,
            _ => complete_len(&file)?,
        };
        if good_len < len {
            file.set_len(good_len)?;
        }
        self.cut_back.remove(&key);
        Ok(OpenFile {
            file,
            good_len,
            buf: Vec::with_capacity(BUFFER_BYTES),
            pending: Vec::new(),
            last_write: Instant::now(),
            unsynced: false,
            behind: Behind::at(good_len),
        })
    }

    fn flush_all(&mut self) {
        let keys: Vec<_> = self.files.keys().copied().collect();
        for key in keys {
            self.flush_file(key);
        }
    }

    fn flush_file(&mut self, key: (u16, Day)) {
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        if f.buf.is_empty() {
            return;
        }
        let c = &self.backend.counters;
        Counters::sub(&c.in_flight, f.pending.len() as u64);
        match f.file.write_all(&f.buf) {
            Ok(()) => {
                let replayed = f.pending.iter().filter(|(_, r)| *r).count() as u64;
                Counters::add(&c.delivered, f.pending.len() as u64);
                // A file holds one flavor's events (of one or more slots: its name's row).
                let slot = self.backend.slot_of_name(&self.dirs[usize::from(key.0)]);
                self.backend
                    .per_flavor
                    .delivered
                    .add(slot, f.pending.len() as u64);
                Counters::add(&c.bytes, f.buf.len() as u64);
                Counters::add(&c.replayed, replayed);
                f.good_len += f.buf.len() as u64;
                f.unsynced = true;
                if let Some((from, to)) = f.behind.next(f.good_len) {
                    // A hint (behind.rs): if the kernel refuses, the pages stay cached.
                    let _ = f.file.release(from, to);
                }
                f.buf.clear();
                f.pending.clear();
            }
            Err(_) => {
                // Cut what was written; if even that fails, reopening the file does.
                if f.file.set_len(f.good_len).is_err() {
                    self.cut_back.insert(key, f.good_len);
                }
                let pending = std::mem::take(&mut f.pending);
                f.buf.clear();
                self.files.remove(&key);
                self.fail(pending);
            }
        }
    }

    /// The disk refused: spool these events (taken off `in_flight` already) and the other
    /// files' buffers, and write nothing until the next retry.
    fn fail(&mut self, mut events: Vec<(SharedEvent, bool)>) {
        let c = &self.backend.counters;
        Counters::add(&c.errors, 1);
        c.set_up(false);
        if self.healthy {
            self.healthy = false;
            self.last_retry = Instant::now();
        }
        // Other files' buffers go too: the disk is failing, and the spool keeps the order.
        let others: Vec<_> = self.files.drain().flat_map(|(_, f)| f.pending).collect();
        Counters::sub(&c.in_flight, others.len() as u64);
        events.extend(others);
        let (replays, fresh): (Vec<_>, Vec<_>) = events.into_iter().partition(|(_, r)| *r);
        let strip = |v: Vec<(SharedEvent, bool)>| v.into_iter().map(|(e, _)| e).collect::<Vec<_>>();
        self.backend.spool_events(&strip(fresh));
        self.backend.respool_events(&strip(replays));
    }

    fn fsync_all(&mut self) {
        let c = &self.backend.counters;
        for f in self.files.values_mut().filter(|f| f.unsynced) {
            if f.file.sync_data().is_err() {
                Counters::add(&c.errors, 1);
            }
            f.unsynced = false;
        }
    }
}
