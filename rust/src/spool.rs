//! Per-backend append-only disk spool: where events go when their backend is down or
//! cannot keep up, replayed oldest first when it recovers, and kept across restarts.
//!
//! Layout: `<dir>/<seq:020>.spool` segments, each a run of text records
//! `flavor \t ts_ms \t day \t key-hex-or-"-" \t <JSON line>\n`. JSON lines never contain a
//! raw newline, so a record is one line. Writes go to the newest segment; a reader takes
//! whole segments (rotating the current one first) and removes each once every record in
//! it is handled. A crash between handling and removal replays that segment again:
//! at-least-once across a crash during replay, exactly-once otherwise.

use crate::clock::Day;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Rotate the segment being written past this size, so a replay reads a bounded amount.
const SEGMENT_BYTES: u64 = 8 << 20;

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
    /// Lines that did not parse (a torn last line after a crash).
    pub corrupt: u64,
}

pub struct Spool {
    dir: PathBuf,
    closed: BTreeSet<u64>,
    current: Option<(u64, BufWriter<File>, u64)>,
    next_seq: u64,
    /// Records appended and not yet removed, across all segments (from open + appends).
    pending: u64,
}

impl Spool {
    /// Opens (creating) the spool directory; segments left by an earlier run are pending.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut closed = BTreeSet::new();
        let mut pending = 0;
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(".spool")
                .and_then(|s| s.parse::<u64>().ok())
            {
                let path = dir.join(&*name);
                pending += count_lines(&path)?;
                closed.insert(seq);
            }
        }
        let next_seq = closed.iter().next_back().map_or(1, |s| s + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            closed,
            current: None,
            next_seq,
            pending,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records waiting for replay.
    pub fn pending(&self) -> u64 {
        self.pending
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
        let (_, w, size) = self.writer()?;
        w.write_all(&rec)?;
        *size += rec.len() as u64;
        let full = *size >= SEGMENT_BYTES;
        self.pending += 1;
        if full {
            self.rotate()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, w, _)) => w.flush(),
            None => Ok(()),
        }
    }

    /// Takes the oldest segment for replay, rotating the current one if it is the only
    /// one with data. `None` when nothing is pending.
    pub fn take_oldest(&mut self) -> io::Result<Option<Segment>> {
        if self.closed.is_empty() {
            match &self.current {
                Some((_, _, size)) if *size > 0 => self.rotate()?,
                _ => return Ok(None),
            }
        }
        let Some(&seq) = self.closed.iter().next() else {
            return Ok(None);
        };
        let mut text = Vec::new();
        File::open(self.path(seq))?.read_to_end(&mut text)?;
        let mut seg = Segment {
            seq,
            records: Vec::new(),
            corrupt: 0,
        };
        for line in text.split_inclusive(|&b| b == b'\n') {
            match parse_record(line) {
                Some(rec) => seg.records.push(rec),
                None => seg.corrupt += 1,
            }
        }
        Ok(Some(seg))
    }

    /// Deletes a replayed segment.
    pub fn remove(&mut self, seg: Segment) -> io::Result<()> {
        fs::remove_file(self.path(seg.seq))?;
        self.closed.remove(&seg.seq);
        self.pending = self
            .pending
            .saturating_sub(seg.records.len() as u64 + seg.corrupt);
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut (u64, BufWriter<File>, u64)> {
        if self.current.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(seq))?;
            self.current = Some((seq, BufWriter::with_capacity(64 << 10, f), 0));
        }
        Ok(self.current.as_mut().expect("just set"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some((seq, mut w, _)) = self.current.take() {
            let flushed = w.flush().and_then(|_| w.get_ref().sync_data());
            self.closed.insert(seq);
            flushed?;
        }
        Ok(())
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

fn count_lines(path: &Path) -> io::Result<u64> {
    let mut text = Vec::new();
    File::open(path)?.read_to_end(&mut text)?;
    Ok(text.split_inclusive(|&b| b == b'\n').count() as u64)
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
        add(&mut s, 3);
        let seg = s.take_oldest().unwrap().unwrap();
        assert_eq!((seg.records.len(), seg.corrupt), (3, 1));
        s.remove(seg).unwrap();
        let seg = s.take_oldest().unwrap().unwrap();
        assert_eq!(seg.records[0].ts_ms, 3);
        s.remove(seg).unwrap();
        assert_eq!(s.pending(), 0);
    }
}
