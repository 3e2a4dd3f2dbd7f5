//! The daily-file backend: a Rust thread, holding no GIL, that drains its queue into
//! `<data_dir>/<flavor>/<YYYY-MM-DD><suffix>.jsonl` (the day is the event's local receipt
//! day). `writer.rs` is the thread, `fs.rs` the filesystem seam its tests fail through,
//! `behind.rs` what of a file it lets the kernel drop from the page cache.
//!
//! Lines are buffered per file together with the events they came from. A flush either
//! lands the whole buffer or, on any error (disk full, permissions, I/O), truncates the
//! file back to its last good length, so no torn line remains, and spools those events.
//! A file whose truncate failed too is cut back when reopened, and opening a file cuts a
//! torn last line (a crash in the middle of a write).
//! While the disk is failing every event goes to the spool; every `retry_interval` the
//! writer tries to replay the spool, and once a replay lands it is up again.

mod behind;
#[cfg(test)]
mod behind_tests;
mod fs;
#[cfg(test)]
mod tests;
mod writer;

pub use fs::{DataFile, Fs, RealFs};

use super::backend::Backend;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

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
    /// Set by SIGHUP (logrotate): close every file, reopen on the next write. Release by
    /// `reopen()`, AcqRel swap by the writer.
    reopen: AtomicBool,
}

impl FileSink {
    pub fn start(backend: Arc<Backend>, cfg: FileSinkConfig) -> io::Result<FileSink> {
        FileSink::start_with(backend, cfg, RealFs)
    }

    /// Starts the writer on a given filesystem (tests pass one that fails on demand).
    pub fn start_with<F: Fs>(
        backend: Arc<Backend>,
        cfg: FileSinkConfig,
        fs: F,
    ) -> io::Result<FileSink> {
        fs.create_dir_all(&cfg.data_dir)?;
        let control = Arc::new(Control {
            stop: AtomicBool::new(false),
            reopen: AtomicBool::new(false),
        });
        let mut writer = writer::Writer::new(backend, cfg, control.clone(), fs);
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
