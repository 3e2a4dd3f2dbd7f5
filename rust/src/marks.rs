//! The offsets of the bytes of a set, found sixteen bytes at a time: the scans of the request
//! path (the flat query encoder's, `query/flat/scan.rs`; the raw header scan's,
//! `ingest/raw.rs`) look at the few bytes that matter, not at every byte.
//!
//! A `ByteSet` classifies a sixteen-byte chunk into a bitmask (bit `i` for `chunk[i]`): with
//! SSE2 on x86_64 (in its baseline, so there is no run-time detection), elsewhere through
//! `contains` byte by byte. The data is walked in blocks of two chunks, one 32-bit mask each
//! (half the loop's turns of one chunk at a time: callgrind, a browser's header block); the
//! last, shorter block is padded with a byte outside the set. Masks are read lowest bit
//! first, so offsets come out ascending.

/// A set of bytes to find.
pub trait ByteSet {
    /// A byte outside the set: pads the last chunk.
    const FILLER: u8;

    /// Whether `b` is in the set: the definition, which `mask16` must agree with.
    fn contains(b: u8) -> bool;

    /// Bit `i` set when `chunk[i]` is in the set.
    #[inline]
    fn mask16(chunk: &[u8; 16]) -> u32 {
        chunk
            .iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | u32::from(Self::contains(b)) << i)
    }
}

/// Bytes per block.
pub const BLOCK: usize = 32;

/// Bit `i` set when `block[i]` is in `S`.
#[inline]
fn mask32<S: ByteSet>(block: &[u8]) -> u32 {
    let (lo, hi) = block.split_at(16);
    S::mask16(lo.try_into().expect("16 bytes")) | S::mask16(hi.try_into().expect("16 bytes")) << 16
}

/// The mask of the (shorter) block `tail`, padded with `S::FILLER`.
#[inline]
fn mask_tail<S: ByteSet>(tail: &[u8]) -> u32 {
    let mut padded = [S::FILLER; BLOCK];
    padded[..tail.len()].copy_from_slice(tail);
    mask32::<S>(&padded)
}

/// `data` in blocks, each as (offset, mask of its bytes in `S`).
#[inline]
pub fn blocks<S: ByteSet>(data: &[u8]) -> impl Iterator<Item = (usize, u32)> + '_ {
    let whole = data.chunks_exact(BLOCK);
    let tail = whole.remainder();
    let last = (!tail.is_empty()).then(|| (data.len() - tail.len(), mask_tail::<S>(tail)));
    whole
        .enumerate()
        .map(|(i, block)| (i * BLOCK, mask32::<S>(block)))
        .chain(last)
}

/// Panics unless `S::mask16` agrees with `S::contains` on every byte value, at every lane.
#[cfg(test)]
pub fn assert_mask_is_contains<S: ByteSet>() {
    for b in 0..=255u8 {
        for lane in 0..16 {
            let mut chunk = [S::FILLER; 16];
            chunk[lane] = b;
            let want = u32::from(S::contains(b)) << lane;
            assert_eq!(S::mask16(&chunk), want, "byte {b:#04x} at lane {lane}");
        }
    }
}

/// SSE2 for `ByteSet::mask16`: load a chunk, compare its bytes, gather the result.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    // SAFETY (every `unsafe` below): the build enables SSE2, as every x86_64 target does,
    // and `load` reads exactly the sixteen bytes of its chunk.

    #[inline]
    pub fn load(chunk: &[u8; 16]) -> __m128i {
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
    }

    /// Lanes equal to `b`.
    #[inline]
    pub fn eq(v: __m128i, b: u8) -> __m128i {
        unsafe { _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)) }
    }

    /// Lanes below `b` (< 0x80) or at 0x80 and above: a signed compare, where those are
    /// negative.
    #[inline]
    pub fn below_or_high(v: __m128i, b: u8) -> __m128i {
        unsafe { _mm_cmpgt_epi8(_mm_set1_epi8(b as i8), v) }
    }

    #[inline]
    pub fn or(a: __m128i, b: __m128i) -> __m128i {
        unsafe { _mm_or_si128(a, b) }
    }

    /// Bit `i` for lane `i`; the upper sixteen bits are zero. (Not masked off: with a
    /// `& 0xffff` here, LLVM rebuilt `mask32`'s two masks bit by bit, and the raw scan of
    /// the load benchmark's POST took 637 ns, against 463 ns byte by byte and 186 ns
    /// without the mask.)
    #[inline]
    pub fn bits(v: __m128i) -> u32 {
        unsafe { _mm_movemask_epi8(v) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `\n` and `:`, with the portable `mask16`.
    struct Portable;
    impl ByteSet for Portable {
        const FILLER: u8 = b'a';
        fn contains(b: u8) -> bool {
            b == b'\n' || b == b':'
        }
    }

    fn offsets(data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        for (base, mut mask) in blocks::<Portable>(data) {
            while mask != 0 {
                out.push(base + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
        }
        out
    }

    #[test]
    fn the_portable_mask_is_contains() {
        assert_mask_is_contains::<Portable>();
    }

    #[test]
    fn blocks_cover_the_data_once() {
        let data = b"a:b\n0123456789abcdef0123456789abcdef:\n";
        let got: Vec<(usize, u32)> = blocks::<Portable>(data).collect();
        assert_eq!(got, [(0, 0b1010), (32, 0b11 << 4)]);
        assert_eq!(blocks::<Portable>(b"").count(), 0);
    }

    proptest! {
        #[test]
        fn offsets_are_the_sets(data in prop::collection::vec(
            prop_oneof![3 => Just(b'x'), 1 => Just(b':'), 1 => Just(b'\n')], 0..100)) {
            let want: Vec<usize> = (0..data.len()).filter(|&i| Portable::contains(data[i])).collect();
            prop_assert_eq!(offsets(&data), want);
        }
    }
}
