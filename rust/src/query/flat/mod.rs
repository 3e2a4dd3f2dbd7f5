//! `flat` mode: the WHATWG `application/x-www-form-urlencoded` parser, with a repeated name
//! collected into an array of its values.
//!
//! This is the server's hot path, so the steady state allocates nothing and looks at each
//! byte once: one scan (scan.rs) marks the bytes that matter, and the rest of the work
//! visits the marks only. A name or value that is *verbatim* (printable ASCII without `%`,
//! `+`, `"` or `\`: what most of a beacon's query is) decodes to itself and needs no JSON
//! escaping, so it stays a range of the query and is copied once, into the output. Any other
//! one is decoded into a thread-local arena (arena.rs), and escaped as it is written only
//! when one of its bytes needs it. Repeated names are
//! chained through `Pair::next` so the object can be written in one pass in
//! first-appearance order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use super::{Limits, QueryError};
use crate::json::write_str;
use arena::Arena;
use scan::{AMP, CLASS, EQ, KEEP};

mod arena;
mod scan;

/// `Pair::next` when no later pair has the same name.
const NONE: usize = usize::MAX;

/// Above this many pairs, duplicate names are found with a hash map instead of a linear scan.
const LINEAR_SCAN_MAX: usize = 16;

/// A decoded name or value: a range of the query (verbatim) or of the arena.
#[derive(Clone)]
struct Part {
    range: Range<usize>,
    verbatim: bool,
    /// JSON must escape some of its bytes (never for a verbatim part).
    escape: bool,
}

/// One decoded `name=value`.
struct Pair {
    name: Part,
    value: Part,
    /// The next pair with the same name, or `NONE`.
    next: usize,
    /// First pair with its name: the one that writes the key.
    first: bool,
}

/// Buffers reused across calls on one thread.
#[derive(Default)]
struct Scratch {
    /// Every name and value that is not verbatim, decoded.
    arena: Arena,
    /// Offsets of the query's marked bytes (scan.rs).
    marks: Vec<u32>,
    pairs: Vec<Pair>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The decoded text of a part.
#[inline]
fn text_of<'a>(query: &'a [u8], arena: &'a Arena, p: &Part) -> &'a str {
    if p.verbatim {
        // SAFETY: a verbatim part is ASCII (only `KEEP` bytes), hence UTF-8; `from_utf8` would
        // scan it a second time.
        unsafe { std::str::from_utf8_unchecked(&query[p.range.clone()]) }
    } else {
        arena.text(p.range.clone())
    }
}

/// Appends the flat JSON object for `query` to `out`; see the module docs.
pub fn encode_into<F: FnMut(&str, Option<&str>)>(
    query: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    mut on_pair: F,
) -> Result<(), QueryError> {
    // The marks are u32 offsets (half the memory of usize); no limit lets a query near this.
    if u32::try_from(query.len()).is_err() {
        return Err(QueryError::TooLong {
            len: query.len(),
            max: u32::MAX as usize,
        });
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => encode_with(&mut scratch, query, limits, out, &mut on_pair),
        // Only reached if `on_pair` itself encodes a query: use private buffers.
        Err(_) => encode_with(&mut Scratch::default(), query, limits, out, &mut on_pair),
    })
}

fn encode_with<F: FnMut(&str, Option<&str>)>(
    s: &mut Scratch,
    query: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    on_pair: &mut F,
) -> Result<(), QueryError> {
    s.arena.clear();
    s.pairs.clear();
    scan::mark(query, &mut s.marks);
    decode_pairs(s, query, limits.max_params)?;
    link_duplicates(query, &s.arena, &mut s.pairs);
    for p in &s.pairs {
        let name = text_of(query, &s.arena, &p.name);
        on_pair(name, Some(text_of(query, &s.arena, &p.value)));
    }
    write_object(query, &s.arena, &s.pairs, out);
    Ok(())
}

/// Splits on `&`, skips empty pieces, splits each on its first `=` and decodes both halves,
/// walking the query's marks (scan.rs) rather than its bytes; past the last mark comes the
/// query's end, which ends the last piece as an `&` would.
fn decode_pairs(s: &mut Scratch, query: &[u8], max_params: usize) -> Result<(), QueryError> {
    let Scratch {
        arena,
        marks,
        pairs,
    } = s;
    // The piece so far: its start, its first mark, its first `=` (as an index into `marks`),
    // and whether its name and its value are verbatim.
    let (mut start, mut first, mut eq) = (0, 0, None);
    let (mut name_keep, mut keep) = (true, true);
    for k in 0..=marks.len() {
        let (at, class) = match marks.get(k) {
            Some(&m) => (m as usize, CLASS[query[m as usize] as usize]),
            None => (query.len(), AMP),
        };
        match class {
            AMP => {
                if at > start {
                    if pairs.len() == max_params {
                        return Err(QueryError::TooManyParams { max: max_params });
                    }
                    let mut part = |range: Range<usize>, keep: bool, marks: &[u32]| {
                        if keep {
                            verbatim(range)
                        } else {
                            let d = arena.decode(query, range, marks);
                            Part {
                                range: d.range,
                                verbatim: false,
                                escape: d.escape,
                            }
                        }
                    };
                    let (name, value) = match eq {
                        Some(e) => {
                            let e_at = marks[e] as usize;
                            let name = part(start..e_at, name_keep, &marks[first..e]);
                            (name, part(e_at + 1..at, keep, &marks[e + 1..k]))
                        }
                        None => (part(start..at, keep, &marks[first..k]), verbatim(at..at)),
                    };
                    pairs.push(Pair {
                        name,
                        value,
                        next: NONE,
                        first: true,
                    });
                }
                (start, first, eq) = (at + 1, k + 1, None);
                (name_keep, keep) = (true, true);
            }
            EQ if eq.is_none() => {
                eq = Some(k);
                name_keep = keep;
                keep = true;
            }
            EQ => {}
            KEEP => unreachable!("scan.rs marks no KEEP byte"),
            _ => keep = false,
        }
    }
    Ok(())
}

fn verbatim(range: Range<usize>) -> Part {
    Part {
        range,
        verbatim: true,
        escape: false,
    }
}

/// Chains each pair to the previous pair with the same name and clears its `first` flag.
fn link_duplicates(query: &[u8], arena: &Arena, pairs: &mut [Pair]) {
    if pairs.len() <= LINEAR_SCAN_MAX {
        // Few pairs: comparing against earlier names beats hashing them, and a 64-bit
        // filter of (length, first and last byte) skips the comparisons for a name no
        // earlier one can equal (most of them: repeated names are rare).
        let mut seen = 0u64;
        for i in 0..pairs.len() {
            let name = text_of(query, arena, &pairs[i].name).as_bytes();
            let bit = 1u64 << name_bits(name);
            if seen & bit == 0 {
                seen |= bit;
                continue;
            }
            let same = |j: &usize| {
                let other = &pairs[*j].name;
                other.range.len() == name.len() && text_of(query, arena, other).as_bytes() == name
            };
            if let Some(j) = (0..i).rev().find(same) {
                link(pairs, j, i);
            }
        }
        return;
    }
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
    for i in 0..pairs.len() {
        if let Some(j) = last.insert(text_of(query, arena, &pairs[i].name), i) {
            link(pairs, j, i);
        }
    }
}

/// A name's bit in `link_duplicates`' filter: equal names get equal bits.
#[inline]
fn name_bits(name: &[u8]) -> u32 {
    let (first, last) = (name.first(), name.last());
    let h = name.len() as u32
        ^ u32::from(*first.unwrap_or(&0)) << 1
        ^ u32::from(*last.unwrap_or(&0)) << 3;
    h & 63
}

/// Makes pair `later` follow pair `prev`, its latest namesake.
fn link(pairs: &mut [Pair], prev: usize, later: usize) {
    pairs[prev].next = later;
    pairs[later].first = false;
}

/// Writes `{"name":"value",...}`, a repeated name once with an array of its values.
fn write_object(query: &[u8], arena: &Arena, pairs: &[Pair], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut need_comma = false;
    for (i, p) in pairs.iter().enumerate().filter(|(_, p)| p.first) {
        if need_comma {
            out.push(b',');
        }
        need_comma = true;
        write_part(query, arena, &p.name, out);
        out.push(b':');
        if p.next == NONE {
            write_part(query, arena, &p.value, out);
        } else {
            write_values(query, arena, pairs, i, out);
        }
    }
    out.push(b'}');
}

/// Writes the array of values of the chain of pairs starting at `first`.
fn write_values(query: &[u8], arena: &Arena, pairs: &[Pair], first: usize, out: &mut Vec<u8>) {
    out.push(b'[');
    let mut i = first;
    loop {
        write_part(query, arena, &pairs[i].value, out);
        i = pairs[i].next;
        if i == NONE {
            break;
        }
        out.push(b',');
    }
    out.push(b']');
}

/// A part as a JSON string: one that needs no escaping is copied as it is.
#[inline]
fn write_part(query: &[u8], arena: &Arena, p: &Part, out: &mut Vec<u8>) {
    let text = text_of(query, arena, p);
    if p.escape {
        write_str(out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests;
