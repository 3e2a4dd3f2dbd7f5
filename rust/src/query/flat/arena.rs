//! Where the flat encoder decodes the names and values that are not verbatim: one buffer,
//! reused across calls on a thread, the parts back to back.
//!
//! Decoding visits the part's marks only (scan.rs) and copies the plain runs between them,
//! up to sixteen bytes in one fixed-size move: the buffer is kept zero-filled past what is in
//! use, so that move may spill into room nothing reads yet. Each decoded part is UTF-8
//! (checked only when a byte above ASCII came out, and repaired as `push_lossy` does) and
//! says whether JSON needs to escape anything in it.

use std::ops::Range;

use super::super::percent::{escape_at, push_lossy};
use crate::json::needs_escape;

/// A decoded part: its range in the arena, and whether JSON must escape any of its bytes.
pub struct Decoded {
    pub range: Range<usize>,
    pub escape: bool,
}

#[derive(Default)]
pub struct Arena {
    /// Zero-filled up to its length; `used` bytes hold this call's parts.
    buf: Vec<u8>,
    used: usize,
    /// The rare repair of a part that decoded to invalid UTF-8.
    repair: String,
}

impl Arena {
    pub fn clear(&mut self) {
        self.used = 0;
    }

    /// The text of a range `decode` returned.
    #[inline]
    pub fn text(&self, range: Range<usize>) -> &str {
        // SAFETY: `decode` hands out only ranges it checked (or repaired) to be UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.buf[range]) }
    }

    /// Decodes `query[range]` (`+` a space, `%XX` a byte, a broken `%` kept), given the
    /// offsets of the marked bytes inside `range`, ascending.
    pub fn decode(&mut self, query: &[u8], range: Range<usize>, marks: &[u32]) -> Decoded {
        let start = self.used;
        // Decoding never lengthens; sixteen more for the last wide move.
        self.room(start + range.len() + 16);
        let src = &query[..range.end]; // an escape cut off by the part's end is broken
        let buf = &mut self.buf[..];
        let (mut w, mut last) = (start, range.start);
        let (mut high, mut escape) = (0u8, false);
        for &m in marks {
            let m = m as usize;
            w = copy_run(buf, w, query, last..m);
            let (b, next) = match src[m] {
                b'+' => (b' ', m + 1),
                b'%' => match escape_at(src, m) {
                    Some(b) => (b, m + 3), // hex digits are never marked: no mark skipped
                    None => (b'%', m + 1),
                },
                b => (b, m + 1),
            };
            high |= b;
            escape |= needs_escape(b);
            buf[w] = b;
            w += 1;
            last = next;
        }
        w = copy_run(buf, w, query, last..range.end);
        if high >= 0x80 && std::str::from_utf8(&self.buf[start..w]).is_err() {
            w = self.repair(start..w);
        }
        self.used = w;
        Decoded {
            range: start..w,
            escape,
        }
    }

    /// Replaces the invalid UTF-8 in `range` (the last part) as `push_lossy` does; returns
    /// the part's new end.
    fn repair(&mut self, range: Range<usize>) -> usize {
        self.repair.clear();
        push_lossy(&mut self.repair, &self.buf[range.clone()]);
        let end = range.start + self.repair.len();
        self.room(end + 16);
        self.buf[range.start..end].copy_from_slice(self.repair.as_bytes());
        end
    }

    fn room(&mut self, len: usize) {
        if self.buf.len() < len {
            self.buf.resize(len.next_power_of_two(), 0);
        }
    }
}

/// Copies `query[run]` (plain bytes) to `buf[w..]`; returns the new end. A run of up to
/// sixteen bytes moves as sixteen when the query has them (the caller made the room in
/// `buf`), which skips memcpy's call for the short runs between escapes.
#[inline]
fn copy_run(buf: &mut [u8], w: usize, query: &[u8], run: Range<usize>) -> usize {
    let n = run.len();
    if n <= 16 && run.start + 16 <= query.len() {
        buf[w..w + 16].copy_from_slice(&query[run.start..run.start + 16]);
    } else {
        buf[w..w + n].copy_from_slice(&query[run]);
    }
    w + n
}
