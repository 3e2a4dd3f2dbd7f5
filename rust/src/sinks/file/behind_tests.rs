//! Drop-behind (`behind.rs`) on real files: the kernel really drops what `release` names,
//! and the writer names everything but each file's last `KEEP` bytes, once written.

use super::behind::KEEP;
use super::fs::{DataFile, Fs, RealFs};
use super::tests::{start, Faults};
use crate::clock::Day;
use crate::event::Event;
use crate::sinks::backend::Backend;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A directory beside the test binary: on the build's disk, not a tmpfs `/tmp`, whose
/// pages are the file and cannot be dropped.
fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .unwrap()
        .join(format!("behind-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// How many of the file's pages are in the page cache (mincore(2) on a mapping of it).
fn resident_pages(f: &File, len: usize) -> usize {
    use std::os::fd::AsRawFd;
    let page = 4096;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: a read-only shared mapping of `len` bytes of an open file, unmapped below;
    // mincore writes one byte per page into `vec`, which has that many.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
        let r = libc::mincore(p, len, vec.as_mut_ptr());
        libc::munmap(p, len);
        assert_eq!(r, 0, "mincore: {}", io::Error::last_os_error());
    }
    vec.iter().filter(|&&b| b & 1 == 1).count()
}

#[test]
fn release_drops_written_back_pages_and_keeps_the_data() {
    let dir = scratch("release");
    let path = dir.join("day.jsonl");
    let mut f = RealFs.open_append(&path).unwrap();
    let chunk: Vec<u8> = (0..4 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    f.write_all(&chunk).unwrap();
    f.sync_data().unwrap(); // clean: droppable at once
    let len = chunk.len();
    assert!(resident_pages(&f, len) > 0, "just written, so cached");

    f.release(0, len as u64 / 2).unwrap();
    let half = resident_pages(&f, len);
    assert!(
        half <= len / 4096 / 2,
        "{half} pages still cached after the first half"
    );
    f.release(0, len as u64).unwrap();
    assert_eq!(resident_pages(&f, len), 0);
    assert_eq!(
        fs::read(&path).unwrap(),
        chunk,
        "dropping the cache loses nothing"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_writer_releases_all_but_each_files_tail() {
    let dir = scratch("writer");
    let backend =
        Arc::new(Backend::new("file", 16384, &dir.join("spool"), vec!["f".into()]).unwrap());
    let faults = Arc::new(Faults::default());
    faults.heal();
    let mut sink = start(&backend, &dir, &faults);
    // 4 KiB lines, 5 x KEEP of them.
    let events = 5 * KEEP / 4096;
    for n in 0..events {
        let line = format!("{{\"n\":{n:>8},\"pad\":\"{}\"}}\n", "x".repeat(4096 - 24));
        assert_eq!(line.len(), 4096);
        backend.offer(Arc::new(Event {
            flavor: 0,
            day: Day(20261124),
            ts_ms: n as i64,
            key: None,
            line: line.into_bytes().into(),
        }));
    }
    sink.stop();
    let len = fs::metadata(dir.join("data/f/2026-11-24.jsonl"))
        .unwrap()
        .len();
    assert_eq!(len, events * 4096, "every line written");

    let calls = faults.released.lock().unwrap().clone();
    assert!(calls.len() >= 2, "released in steps: {calls:?}");
    assert_eq!(calls[0].0, 0, "from the start");
    for w in calls.windows(2) {
        // Each release covers the previous one's last chunk again (dirty the first time).
        assert_eq!(w[1].0, w[0].1 - KEEP, "{calls:?}");
        assert!(w[1].1 > w[0].1, "{calls:?}");
    }
    let last = calls.last().unwrap().1;
    assert!(
        last <= len - KEEP,
        "the last {KEEP} bytes stay cached: {calls:?}"
    );
    assert!(
        last + 2 * KEEP > len,
        "nothing more than that stays: {calls:?}"
    );
    let _ = fs::remove_dir_all(&dir);
}
