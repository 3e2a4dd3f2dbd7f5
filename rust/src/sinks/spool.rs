//! Per-backend append-only disk spool: where events go when their backend is down or
//! cannot keep up, replayed oldest first when it recovers, and kept across restarts.
//!
//! Layout: `<dir>/<seq:020>.spool` segments, each a run of text records
//! `flavor \t ts_ms \t day \t key-hex-or-"-" \t <JSON line>\n`. JSON lines never contain a
//! raw newline, so a record is one line. Writes go to the newest segment; a reader takes
//! whole segments (rotating the current one first) and removes each once every record in
//! it is handled. A crash between handling and removal replays that segment again:
//! at-least-once across a crash during replay, exactly-once otherwise.
//!
//! A line's flavor is its first field ([`line_flavor`]), torn or not: what start-up counts
//! per flavor as recovered and what a replay takes per flavor agree (sinks/per_flavor.rs).
//!
//! The spool is used under its backend's lock; what `/stats` reads of it (records pending,
//! their bytes, the oldest pending event's time) is mirrored into [`SpoolGauges`], read
//! without the lock, so that a scrape never waits for a segment being read and the batch
//! endpoint's backpressure check costs one atomic load (docs/architecture.md).

use crate::clock::Day;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Rotate the segment being written past this size, so a replay reads a bounded amount: a
/// replay reads a segment whole and holds its parsed records. 2 MiB against 8: the peak RSS of
/// a file + Kafka server through a 3 s broker stall under load 73-87 MB against 86-104, and
/// each rotation's `sync_data` blocks ~1.2 ms against ~4 (docs/performance.md, "Memory").
const SEGMENT_BYTES: u64 = 2 << 20;
/// The spool's write buffer (README "Reliability": what a SIGKILL can lose of it).
const WRITE_BUFFER_BYTES: usize = 64 << 10;
/// `min_ts` of a segment with no readable record.
const NO_TS: i64 = i64::MAX;

/// A record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolRecord {
    pub flavor: String,
    pub ts_ms: i64,
    pub day: Day,
    pub key: Option<Vec<u8>>,
    /// JSON object plus `\n`.
    pub line: Vec<u8>,
}

/// A segment taken for replay; hand it back to [`Spool::remove`] when done.
pub struct Segment {
    seq: u64,
    pub records: Vec<SpoolRecord>,
    /// The flavor ([`line_flavor`]) of each line that did not parse (a torn last line
    /// after a crash).
    pub corrupt: Vec<String>,
    /// The segment file's size, as read.
    bytes: u64,
}

impl Segment {
    /// Records and torn lines: what [`Spool::remove`] takes off `pending`.
    pub fn lines(&self) -> u64 {
        (self.records.len() + self.corrupt.len()) as u64
    }
}

/// What the spool publishes for readers that do not hold its lock. Written only by the
/// spool (under its owner's lock); Relaxed: statistics, no ordering with other data.
#[derive(Debug)]
pub struct SpoolGauges {
    pending: AtomicU64,
    bytes: AtomicU64,
    oldest_ts_ms: AtomicI64,
}

impl SpoolGauges {
    /// Lines in the spool (records and torn lines) not yet removed.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Bytes of the segments not yet removed, the write buffer's included: what the
    /// batch endpoint's backpressure compares with `spool_high_water_bytes`.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `ts_ms` of the oldest pending event, None when the spool is empty.
    pub fn oldest_ts_ms(&self) -> Option<i64> {
        let ts = self.oldest_ts_ms.load(Ordering::Relaxed);
        (ts != NO_TS).then_some(ts)
    }
}

/// The segment being written.
struct Current {
    seq: u64,
    w: BufWriter<File>,
    size: u64,
    min_ts: i64,
}

pub struct Spool {
    dir: PathBuf,
    /// Closed segments by sequence number, with the oldest `ts_ms` each holds.
    closed: BTreeMap<u64, i64>,
    /// The oldest `ts_ms` of all closed segments (kept, not recomputed per append).
    closed_oldest: i64,
    current: Option<Current>,
    next_seq: u64,
    /// Lines appended and not yet removed, across all segments (from open + appends).
    pending: u64,
    /// Their bytes, as `pending` counts lines.
    bytes: u64,
    /// Lines found on disk by `open`: events an earlier run left.
    recovered: u64,
    /// The same by flavor name.
    recovered_by_flavor: HashMap<String, u64>,
    gauges: Arc<SpoolGauges>,
}

impl Spool {
    /// Opens (creating) the spool directory; segments left by an earlier run are pending.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut closed = BTreeMap::new();
        let mut pending = 0;
        let mut bytes = 0;
        let mut by_flavor = HashMap::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(".spool")
                .and_then(|s| s.parse::<u64>().ok())
            {
                let (lines, size, min_ts) = scan(&dir.join(&*name), &mut by_flavor)?;
                pending += lines;
                bytes += size;
                closed.insert(seq, min_ts);
            }
        }
        let next_seq = closed.keys().next_back().map_or(1, |s| s + 1);
        let spool = Spool {
            dir: dir.to_owned(),
            closed_oldest: closed.values().copied().min().unwrap_or(NO_TS),
            closed,
            current: None,
            next_seq,
            pending,
            bytes,
            recovered: pending,
            recovered_by_flavor: by_flavor,
            gauges: Arc::new(SpoolGauges {
                pending: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                oldest_ts_ms: AtomicI64::new(NO_TS),
            }),
        };
        spool.publish();
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lines waiting for replay.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Lines an earlier run left on disk, found by `open`.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// `recovered` by flavor name.
    pub fn recovered_by_flavor(&self) -> &HashMap<String, u64> {
        &self.recovered_by_flavor
    }

    /// The gauges readers see without the lock.
    pub fn gauges(&self) -> Arc<SpoolGauges> {
        self.gauges.clone()
    }

    pub fn append(
        &mut self,
        flavor: &str,
        ts_ms: i64,
        day: Day,
        key: Option<&[u8]>,
        line: &[u8],
    ) -> io::Result<()> {
        let mut rec = Vec::with_capacity(line.len() + flavor.len() + 40);
        rec.extend_from_slice(flavor.as_bytes());
        rec.push(b'\t');
        rec.extend_from_slice(ts_ms.to_string().as_bytes());
        rec.push(b'\t');
        rec.extend_from_slice(day.0.to_string().as_bytes());
        rec.push(b'\t');
        match key {
            Some(k) => rec.extend(k.iter().flat_map(|b| hex_byte(*b))),
            None => rec.push(b'-'),
        }
        rec.push(b'\t');
        rec.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            rec.push(b'\n');
        }
        let cur = self.writer()?;
        cur.w.write_all(&rec)?;
        cur.size += rec.len() as u64;
        cur.min_ts = cur.min_ts.min(ts_ms);
        let full = cur.size >= SEGMENT_BYTES;
        self.pending += 1;
        self.bytes += rec.len() as u64;
        let rotated = if full { self.rotate() } else { Ok(()) };
        self.publish();
        rotated
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(cur) => cur.w.flush(),
            None => Ok(()),
        }
    }

    /// Takes the oldest segment for replay, rotating the current one if it is the only
    /// one with data. `None` when nothing is pending.
    pub fn take_oldest(&mut self) -> io::Result<Option<Segment>> {
        if self.closed.is_empty() {
            match &self.current {
                Some(cur) if cur.size > 0 => self.rotate()?,
                _ => return Ok(None),
            }
        }
        let Some(&seq) = self.closed.keys().next() else {
            return Ok(None);
        };
        let mut text = Vec::new();
        File::open(self.path(seq))?.read_to_end(&mut text)?;
        let mut seg = Segment {
            seq,
            records: Vec::new(),
            corrupt: Vec::new(),
            bytes: text.len() as u64,
        };
        for line in text.split_inclusive(|&b| b == b'\n') {
            match parse_record(line) {
                Some(rec) => seg.records.push(rec),
                None => seg.corrupt.push(flavor_text(line)),
            }
        }
        Ok(Some(seg))
    }

    /// Deletes a replayed segment.
    pub fn remove(&mut self, seg: Segment) -> io::Result<()> {
        fs::remove_file(self.path(seg.seq))?;
        self.closed.remove(&seg.seq);
        self.closed_oldest = self.closed.values().copied().min().unwrap_or(NO_TS);
        self.pending = self.pending.saturating_sub(seg.lines());
        self.bytes = self.bytes.saturating_sub(seg.bytes);
        self.publish();
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut Current> {
        if self.current.is_none() {
            let seq = self.next_seq;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(seq))?;
            self.next_seq += 1;
            self.current = Some(Current {
                seq,
                w: BufWriter::with_capacity(WRITE_BUFFER_BYTES, f),
                size: 0,
                min_ts: NO_TS,
            });
        }
        Ok(self.current.as_mut().expect("just set"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut cur) = self.current.take() {
            let flushed = cur.w.flush().and_then(|_| cur.w.get_ref().sync_data());
            self.closed.insert(cur.seq, cur.min_ts);
            self.closed_oldest = self.closed_oldest.min(cur.min_ts);
            flushed?;
        }
        Ok(())
    }

    /// Mirrors `pending`, `bytes` and the oldest pending `ts_ms` into the gauges.
    fn publish(&self) {
        let current = self.current.as_ref().map_or(NO_TS, |c| c.min_ts);
        let g = &self.gauges;
        g.pending.store(self.pending, Ordering::Relaxed);
        g.bytes.store(self.bytes, Ordering::Relaxed);
        let oldest = self.closed_oldest.min(current);
        g.oldest_ts_ms.store(oldest, Ordering::Relaxed);
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.spool"))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.rotate();
    }
}

fn hex_byte(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// A spool line's flavor: its first field; a line without a tab (torn) is all flavor.
pub fn line_flavor(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.split(|&b| b == b'\t').next().unwrap_or(line)
}

fn flavor_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line_flavor(line)).into_owned()
}

fn parse_record(line: &[u8]) -> Option<SpoolRecord> {
    if !line.ends_with(b"\n") {
        return None; // torn write
    }
    let mut parts = line.splitn(5, |&b| b == b'\t');
    let flavor = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let num = |p: &[u8]| std::str::from_utf8(p).ok()?.parse::<i64>().ok();
    let ts_ms = num(parts.next()?)?;
    let day = Day(u32::try_from(num(parts.next()?)?).ok()?);
    let key = match parts.next()? {
        b"-" => None,
        hex => Some(unhex(hex)?),
    };
    let line = parts.next()?.to_vec();
    Some(SpoolRecord {
        flavor,
        ts_ms,
        day,
        key,
        line,
    })
}

/// A segment file's lines, its size and the oldest `ts_ms` among them, its lines counted
/// by flavor into `by_flavor` (read without parsing the rest of each record: a large spool
/// is scanned at every start).
fn scan(path: &Path, by_flavor: &mut HashMap<String, u64>) -> io::Result<(u64, u64, i64)> {
    let mut text = Vec::new();
    File::open(path)?.read_to_end(&mut text)?;
    let mut lines = 0;
    let mut min_ts = NO_TS;
    let mut last: (&[u8], u64) = (b"", 0); // runs of one flavor: one map update each
    for line in text.split_inclusive(|&b| b == b'\n') {
        lines += 1;
        let flavor = line_flavor(line);
        if flavor != last.0 {
            count_run(by_flavor, last);
            last = (flavor, 0);
        }
        last.1 += 1;
        let ts = line.split(|&b| b == b'\t').nth(1);
        if let Some(ts) = ts.and_then(|t| std::str::from_utf8(t).ok()?.parse::<i64>().ok()) {
            min_ts = min_ts.min(ts);
        }
    }
    count_run(by_flavor, last);
    Ok((lines, text.len() as u64, min_ts))
}

fn count_run(by_flavor: &mut HashMap<String, u64>, (flavor, n): (&[u8], u64)) {
    if n > 0 {
        *by_flavor.entry(flavor_text(flavor)).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("beacon-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn add(s: &mut Spool, i: i64) {
        let line = format!("{{\"n\":{i}}}\n");
        let key = (i % 2 == 0).then(|| vec![0u8, 0xff, b'\t']);
        s.append("site.a", i, Day(20261124), key.as_deref(), line.as_bytes())
            .unwrap();
    }

    #[test]
    fn records_round_trip_in_order() {
        let dir = tmpdir("rt");
        let mut s = Spool::open(&dir).unwrap();
        for i in 0..10 {
            add(&mut s, i);
        }
        assert_eq!(s.pending(), 10);
        let seg = s.take_oldest().unwrap().unwrap();
        assert_eq!(seg.records.len(), 10);
        assert_eq!(seg.records[4].ts_ms, 4);
        assert_eq!(seg.records[4].key.as_deref(), Some(&[0u8, 0xff, b'\t'][..]));
        assert_eq!(seg.records[5].key, None);
        assert_eq!(seg.records[5].line, b"{\"n\":5}\n");
        s.remove(seg).unwrap();
        assert_eq!(s.pending(), 0);
        assert!(s.take_oldest().unwrap().is_none());
    }

    #[test]
    fn survives_reopen_and_skips_a_torn_last_line() {
        let dir = tmpdir("reopen");
        {
            let mut s = Spool::open(&dir).unwrap();
            for i in 0..3 {
                add(&mut s, i);
            }
        }
        // A crash mid-write leaves a line without its newline.
        let seg_path = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        OpenOptions::new()
            .append(true)
            .open(&seg_path)
            .unwrap()
            .write_all(b"site.a\t9")
            .unwrap();
        let mut s = Spool::open(&dir).unwrap();
        assert_eq!(s.pending(), 4);
        assert_eq!(
            s.recovered_by_flavor().get("site.a"),
            Some(&4),
            "the torn line too"
        );
        add(&mut s, 3);
        let seg = s.take_oldest().unwrap().unwrap();
        assert_eq!(
            (seg.records.len(), seg.corrupt.clone()),
            (3, vec!["site.a".into()])
        );
        s.remove(seg).unwrap();
        let seg = s.take_oldest().unwrap().unwrap();
        assert_eq!(seg.records[0].ts_ms, 3);
        s.remove(seg).unwrap();
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn the_bytes_gauge_is_the_size_on_disk() {
        let dir = tmpdir("bytes");
        let mut s = Spool::open(&dir).unwrap();
        let g = s.gauges();
        for i in 0..3 {
            add(&mut s, i);
        }
        s.flush().unwrap();
        let on_disk = || -> u64 {
            let files = fs::read_dir(&dir).unwrap();
            files.map(|f| f.unwrap().metadata().unwrap().len()).sum()
        };
        assert!(g.bytes() > 0);
        assert_eq!(g.bytes(), on_disk());
        let seg = s.take_oldest().unwrap().unwrap();
        add(&mut s, 3);
        s.flush().unwrap();
        assert_eq!(g.bytes(), on_disk());
        s.remove(seg).unwrap();
        assert_eq!(g.bytes(), on_disk());
        drop(s);
        let s = Spool::open(&dir).unwrap();
        assert_eq!(s.gauges().bytes(), on_disk());
        assert!(on_disk() > 0);
    }

    #[test]
    fn a_replay_takes_one_bounded_segment() {
        let dir = tmpdir("bounded");
        let mut s = Spool::open(&dir).unwrap();
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1000));
        let n = (5 * SEGMENT_BYTES / line.len() as u64) / 2; // ~2.5 segments' worth
        for i in 0..n as i64 {
            s.append("site.a", i, Day(20261124), None, line.as_bytes())
                .unwrap();
        }
        let files = fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 3, "rotated past SEGMENT_BYTES");
        let mut taken = 0;
        while let Some(seg) = s.take_oldest().unwrap() {
            assert!(seg.bytes <= SEGMENT_BYTES + line.len() as u64 + 64);
            assert_eq!(seg.records[0].ts_ms, taken as i64, "oldest first");
            taken += seg.records.len();
            s.remove(seg).unwrap();
        }
        assert_eq!(taken as u64, n);
    }

    #[test]
    fn gauges_follow_pending_and_the_oldest_event() {
        let dir = tmpdir("gauges");
        let mut s = Spool::open(&dir).unwrap();
        let g = s.gauges();
        assert_eq!((g.pending(), g.oldest_ts_ms()), (0, None));
        for i in [5, 3, 9] {
            add(&mut s, i);
        }
        assert_eq!((g.pending(), g.oldest_ts_ms()), (3, Some(3)));
        let seg = s.take_oldest().unwrap().unwrap();
        add(&mut s, 7);
        assert_eq!((g.pending(), g.oldest_ts_ms()), (4, Some(3)));
        s.remove(seg).unwrap();
        assert_eq!((g.pending(), g.oldest_ts_ms()), (1, Some(7)));
        drop(s);
        let s = Spool::open(&dir).unwrap();
        assert_eq!((s.recovered(), s.gauges().oldest_ts_ms()), (1, Some(7)));
    }
}
