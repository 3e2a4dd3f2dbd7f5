//! The daily-file backend: a Rust thread, holding no GIL, that drains its queue into
//! `<data_dir>/<flavor>/<YYYY-MM-DD>.jsonl` (the day is the event's local receipt day).
//!
//! Lines are buffered per file together with the events they came from. A flush either
//! lands the whole buffer or, on any error (disk full, permissions, I/O), truncates the
//! file back to its last good length, so no torn line remains, and spools those events.
//! While the disk is failing every event goes to the spool; every `retry_interval` the
//! writer tries to replay the spool, and once a replay lands it is healthy again.

use crate::backend::{Backend, Counters};
use crate::clock::Day;
use crate::event::{Event, SharedEvent};
use crate::spool::Segment;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Flush a file's buffer early once it holds this much.
const BUFFER_BYTES: usize = 256 << 10;
/// Events taken from the queue per loop.
const BATCH: usize = 4096;
/// Close a file nobody wrote to for this long (yesterday's file after midnight).
const IDLE_CLOSE: Duration = Duration::from_secs(60);
/// Sleep when the queue is empty; bounds the added latency to disk, costs no CPU to speak of.
const IDLE_PARK: Duration = Duration::from_millis(5);

#[derive(Clone, Debug)]
pub struct FileSinkConfig {
    pub data_dir: PathBuf,
    pub flush_interval: Duration,
    pub fsync_interval: Option<Duration>,
    pub retry_interval: Duration,
    /// Inserted before `.jsonl` (`.w1` for worker 1 of `--workers`), so that processes
    /// never share a file: each one's truncate-on-error only ever touches its own lines.
    pub file_suffix: String,
}

/// Handle to the writer thread.
pub struct FileSink {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

struct Control {
    /// Release by `stop()`, Acquire by the writer: it then sees every event pushed before.
    stop: AtomicBool,
    /// Set by SIGHUP (logrotate): close every file, reopen on the next write.
    reopen: AtomicBool,
    /// Writer is failing over to the spool. Relaxed: a status flag for /healthz.
    failing: AtomicBool,
}

impl FileSink {
    pub fn start(backend: Arc<Backend>, cfg: FileSinkConfig) -> io::Result<FileSink> {
        fs::create_dir_all(&cfg.data_dir)?;
        let control = Arc::new(Control {
            stop: AtomicBool::new(false),
            reopen: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        });
        let mut writer = Writer::new(backend, cfg, control.clone());
        let thread = thread::Builder::new()
            .name("beacon-file".into())
            .spawn(move || writer.run())?;
        Ok(FileSink {
            control,
            thread: Some(thread),
        })
    }

    pub fn reopen(&self) {
        self.control.reopen.store(true, Ordering::Release);
        self.wake();
    }

    pub fn is_failing(&self) -> bool {
        self.control.failing.load(Ordering::Relaxed)
    }

    /// Drains the queue, flushes every file and the spool, and joins the thread.
    pub fn stop(&mut self) {
        self.control.stop.store(true, Ordering::Release);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        self.stop();
    }
}

struct OpenFile {
    file: File,
    /// File length after the last successful flush: where to truncate back to on error.
    good_len: u64,
    buf: Vec<u8>,
    /// Events in `buf`, and whether each came from the spool.
    pending: Vec<(SharedEvent, bool)>,
    last_write: Instant,
    unsynced: bool,
}

struct Writer {
    backend: Arc<Backend>,
    cfg: FileSinkConfig,
    control: Arc<Control>,
    /// Flavor names by index; replayed records of flavors no longer configured are added.
    names: Vec<String>,
    files: HashMap<(u16, Day), OpenFile>,
    healthy: bool,
    last_retry: Instant,
    last_flush: Instant,
    last_fsync: Instant,
}

impl Writer {
    fn new(backend: Arc<Backend>, cfg: FileSinkConfig, control: Arc<Control>) -> Writer {
        let now = Instant::now();
        Writer {
            names: backend.flavors.clone(),
            backend,
            cfg,
            control,
            files: HashMap::new(),
            healthy: true,
            last_retry: now,
            last_flush: now,
            last_fsync: now,
        }
    }

    fn run(&mut self) {
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
                self.control.failing.store(!self.healthy, Ordering::Relaxed);
            }
            batch.clear();
            let n = self.backend.queue.pop_batch(&mut batch, BATCH);
            if self.healthy {
                batch.drain(..).for_each(|ev| self.write(ev, false));
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
                    Counters::add(&self.backend.counters.errors, 1);
                    return;
                }
            };
            for rec in &seg.records {
                let flavor = self.flavor_index(&rec.flavor);
                let ev = Event {
                    flavor,
                    day: rec.day,
                    ts_ms: rec.ts_ms,
                    key: rec.key.clone().map(Vec::into_boxed_slice),
                    line: rec.line.clone().into_boxed_slice(),
                };
                self.write(Arc::new(ev), true);
            }
            // Whatever did not land was spooled again by the failed flush: the segment
            // is handled either way.
            self.flush_all();
            Counters::add(&self.backend.counters.dropped, seg.corrupt);
            if self.backend.spool().remove(seg).is_err() {
                Counters::add(&self.backend.counters.errors, 1);
                return;
            }
        }
    }

    fn flavor_index(&mut self, name: &str) -> u16 {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i as u16,
            None => {
                self.names.push(name.to_owned());
                (self.names.len() - 1) as u16
            }
        }
    }

    fn write(&mut self, ev: SharedEvent, replayed: bool) {
        let key = (ev.flavor, ev.day);
        if !self.files.contains_key(&key) {
            match self.open(key) {
                Ok(f) => {
                    self.files.insert(key, f);
                }
                Err(_) => {
                    self.fail(vec![(ev, replayed)]);
                    return;
                }
            }
        }
        let f = self.files.get_mut(&key).expect("opened above");
        f.buf.extend_from_slice(&ev.line);
        f.pending.push((ev, replayed));
        f.last_write = Instant::now();
        if f.buf.len() >= BUFFER_BYTES {
            self.flush_file(key);
        }
    }

    fn open(&self, (flavor, day): (u16, Day)) -> io::Result<OpenFile> {
        let name = self
            .names
            .get(flavor as usize)
            .map_or("unknown", String::as_str);
        let dir = self.cfg.data_dir.join(name);
        fs::create_dir_all(&dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}{}.jsonl", day.iso(), self.cfg.file_suffix)))?;
        let good_len = file.metadata()?.len();
        Ok(OpenFile {
            file,
            good_len,
            buf: Vec::with_capacity(BUFFER_BYTES),
            pending: Vec::new(),
            last_write: Instant::now(),
            unsynced: false,
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
        match f.file.write_all(&f.buf) {
            Ok(()) => {
                let c = &self.backend.counters;
                let replayed = f.pending.iter().filter(|(_, r)| *r).count() as u64;
                Counters::add(&c.written, f.pending.len() as u64);
                Counters::add(&c.bytes, f.buf.len() as u64);
                Counters::add(&c.replayed, replayed);
                f.good_len += f.buf.len() as u64;
                f.unsynced = true;
                f.buf.clear();
                f.pending.clear();
            }
            Err(_) => {
                // Cut any partial line; if even that fails the file is dropped from the
                // map and reopened (and re-measured) on the next write.
                let _ = f.file.set_len(f.good_len);
                let pending = std::mem::take(&mut f.pending);
                f.buf.clear();
                self.files.remove(&key);
                self.fail(pending);
            }
        }
    }

    /// The disk refused: spool these events and stop writing until the next retry.
    fn fail(&mut self, mut events: Vec<(SharedEvent, bool)>) {
        Counters::add(&self.backend.counters.errors, 1);
        if self.healthy {
            self.healthy = false;
            self.last_retry = Instant::now();
        }
        self.control.failing.store(true, Ordering::Relaxed);
        // Other files' buffers go too: the disk is failing, and the spool keeps the order.
        events.extend(self.files.drain().flat_map(|(_, f)| f.pending));
        let (replays, fresh): (Vec<_>, Vec<_>) = events.into_iter().partition(|(_, r)| *r);
        let strip = |v: Vec<(SharedEvent, bool)>| v.into_iter().map(|(e, _)| e).collect::<Vec<_>>();
        self.backend.spool_events(&strip(fresh));
        self.backend.respool_events(&strip(replays));
    }

    fn fsync_all(&mut self) {
        for f in self.files.values_mut().filter(|f| f.unsynced) {
            if f.file.sync_data().is_err() {
                Counters::add(&self.backend.counters.errors, 1);
            }
            f.unsynced = false;
        }
    }
}
