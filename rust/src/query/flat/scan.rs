//! Finds the bytes of a query the flat encoder must look at: everything but printable ASCII
//! other than `% + " \ & =` (the `CLASS` table below), sixteen bytes at a time with SSE2
//! (crate::marks).
//!
//! Why: the encoder used to walk the query byte by byte through `CLASS`, and that walk was
//! its largest cost. A beacon's query is mostly plain bytes between few marks (the load
//! benchmark's 311 bytes have ~60), so the walk now visits the marks only
//! (docs/performance.md, "The flat query encoder").

use crate::marks::{blocks, ByteSet};

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

/// The bytes that are not `KEEP`.
pub struct Marked;

impl ByteSet for Marked {
    const FILLER: u8 = b'a';

    #[inline]
    fn contains(b: u8) -> bool {
        CLASS[b as usize] != KEEP
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline]
    fn mask16(chunk: &[u8; 16]) -> u32 {
        use crate::marks::sse2::{below_or_high, bits, eq, load, or};
        let v = load(chunk);
        let outside = or(below_or_high(v, 0x20), eq(v, 0x7f));
        let escapes = or(or(eq(v, b'%'), eq(v, b'+')), eq(v, b'"'));
        let ends = or(or(eq(v, b'\\'), eq(v, b'&')), eq(v, b'='));
        bits(or(outside, or(escapes, ends)))
    }
}

/// Replaces `marks` with the offsets of `query`'s bytes that are not `KEEP`, ascending.
/// `query` is shorter than 4 GiB (`encode_into` refuses longer ones).
pub fn mark(query: &[u8], marks: &mut Vec<u32>) {
    debug_assert!(u32::try_from(query.len()).is_ok());
    marks.clear();
    for (base, mut mask) in blocks::<Marked>(query) {
        while mask != 0 {
            marks.push((base + mask.trailing_zeros() as usize) as u32);
            mask &= mask - 1;
        }
    }
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
    fn the_mask_is_the_table() {
        crate::marks::assert_mask_is_contains::<Marked>();
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
