//! Finds the bytes of a query the flat encoder must look at: everything but printable ASCII
//! other than `% + " \ & =` (the `CLASS` table below). On x86_64 sixteen bytes are classified
//! at once with SSE2 (part of the x86_64 baseline, so no run-time detection), and each
//! chunk's marks come out of a bitmask, lowest bit first; elsewhere a table lookup per byte.
//!
//! Why: the encoder used to walk the query byte by byte through `CLASS`, and that walk was
//! its largest cost. A beacon's query is mostly plain bytes between few marks (the load
//! benchmark's 311 bytes have ~60), so the walk now visits the marks only
//! (docs/performance.md, "The query encoder").

/// What a byte means to the encoder. `KEEP`: printable ASCII but `%` and `+` (decoding
/// would change them) and `"` and `\\` (JSON would escape them); a part made only of them is
/// verbatim. `&` ends a pair, the first `=` of a pair ends its name (a later one is kept),
/// and any other byte makes its part one to decode.
pub const KEEP: u8 = 0;
pub const AMP: u8 = 1;
pub const EQ: u8 = 2;
pub const DECODE: u8 = 3;
pub static CLASS: [u8; 256] = {
    let mut t = [DECODE; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = match b as u8 {
            b'%' | b'+' | b'"' | b'\\' => DECODE,
            b'&' => AMP,
            b'=' => EQ,
            _ => KEEP,
        };
        b += 1;
    }
    t
};

/// Replaces `marks` with the offsets of `query`'s bytes that are not `KEEP`, ascending.
pub fn mark(query: &[u8], marks: &mut Vec<u32>) {
    debug_assert!(
        u32::try_from(query.len()).is_ok(),
        "limits keep queries small"
    );
    marks.clear();
    let mut chunks = query.chunks_exact(16);
    let mut base = 0u32;
    for chunk in chunks.by_ref() {
        push_marks(mask16(chunk.try_into().expect("16 bytes")), base, marks);
        base += 16;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // Padded with a `KEEP` byte, which marks nothing.
        let mut last = [b'a'; 16];
        last[..tail.len()].copy_from_slice(tail);
        push_marks(mask16(&last), base, marks);
    }
}

#[inline]
fn push_marks(mut mask: u32, base: u32, marks: &mut Vec<u32>) {
    while mask != 0 {
        marks.push(base + mask.trailing_zeros());
        mask &= mask - 1;
    }
}

/// Bit `i` set when `chunk[i]` is not `KEEP`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn mask16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: the build enables SSE2 (every x86_64 target does: it is in the baseline), and
    // the unaligned load reads exactly the sixteen bytes of `chunk`.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let is = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        // A signed compare: bytes 0x80..=0xff are negative, so `0x20 > v` holds for them and
        // for the C0 controls alike.
        let outside = _mm_or_si128(_mm_cmpgt_epi8(_mm_set1_epi8(0x20), v), is(0x7f));
        let escapes = _mm_or_si128(_mm_or_si128(is(b'%'), is(b'+')), is(b'"'));
        let ends = _mm_or_si128(_mm_or_si128(is(b'\\'), is(b'&')), is(b'='));
        let any = _mm_or_si128(outside, _mm_or_si128(escapes, ends));
        _mm_movemask_epi8(any) as u32 & 0xffff
    }
}

/// Bit `i` set when `chunk[i]` is not `KEEP`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn mask16(chunk: &[u8; 16]) -> u32 {
    chunk.iter().enumerate().fold(0, |m, (i, &b)| {
        m | u32::from(CLASS[b as usize] != KEEP) << i
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn marks_of(q: &[u8]) -> Vec<u32> {
        let mut marks = vec![7]; // replaced, not appended to
        mark(q, &mut marks);
        marks
    }

    fn by_table(q: &[u8]) -> Vec<u32> {
        (0..q.len() as u32)
            .filter(|&i| CLASS[q[i as usize] as usize] != KEEP)
            .collect()
    }

    #[test]
    fn every_byte_value_is_classified_as_the_table_says() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(marks_of(&all), by_table(&all));
        assert_eq!(by_table(&all).len(), 256 - (0x7f - 0x20) + 6);
    }

    #[test]
    fn short_and_chunk_sized_queries() {
        assert_eq!(marks_of(b""), Vec::<u32>::new());
        assert_eq!(marks_of(b"a=1"), [1]);
        assert_eq!(marks_of(b"0123456789abcdef"), Vec::<u32>::new());
        assert_eq!(marks_of(b"0123456789abcde&x=%41"), [15, 17, 18]);
    }

    proptest! {
        #[test]
        fn marks_are_the_tables(q in prop::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(marks_of(&q), by_table(&q));
        }
    }
}
