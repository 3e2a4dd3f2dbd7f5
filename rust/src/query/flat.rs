//! `flat` mode: the WHATWG `application/x-www-form-urlencoded` parser, with a repeated name
//! collected into an array of its values.
//!
//! This is the server's hot path, so the steady state allocates nothing and touches most
//! bytes once: a name or value that is *verbatim* (printable ASCII without `%`, `+`, `"` or
//! `\`: what most of a beacon's query is) decodes to itself and needs no JSON escaping, so
//! it stays a range of the query and is copied once, into the output. Any other one is
//! decoded into one thread-local string and escaped as it is written. Repeated names are
//! chained through `Pair::next` so the object can be written in one pass in
//! first-appearance order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use super::percent::decode_lossy_into;
use super::{Limits, QueryError};
use crate::json::write_str;

/// `Pair::next` when no later pair has the same name.
const NONE: usize = usize::MAX;

/// Above this many pairs, duplicate names are found with a hash map instead of a linear scan.
const LINEAR_SCAN_MAX: usize = 16;

/// A decoded name or value: a range of the query (verbatim) or of `Scratch::text`.
#[derive(Clone)]
struct Part {
    range: Range<usize>,
    verbatim: bool,
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
    /// Every name and value that is not verbatim, decoded, back to back.
    text: String,
    /// Percent-decoded bytes of one component being repaired (invalid UTF-8).
    bytes: Vec<u8>,
    pairs: Vec<Pair>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// What a byte means to `decode_pairs`' one scan of the query. Most are `KEEP`: printable
/// ASCII but `%` and `+` (decoding would change them) and `"` and `\\` (JSON would escape
/// them); a part made only of them is verbatim. `&` ends a pair, the first `=` of a pair
/// ends its name (a later one is kept), and any other byte makes its part one to decode.
const KEEP: u8 = 0;
const AMP: u8 = 1;
const EQ: u8 = 2;
const DECODE: u8 = 3;
static CLASS: [u8; 256] = {
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

/// The decoded text of a part.
#[inline]
fn text_of<'a>(query: &'a [u8], text: &'a str, p: &Part) -> &'a str {
    if p.verbatim {
        // SAFETY: a verbatim part is ASCII (only `KEEP` bytes), hence UTF-8; `from_utf8` would
        // scan it a second time.
        unsafe { std::str::from_utf8_unchecked(&query[p.range.clone()]) }
    } else {
        &text[p.range.clone()]
    }
}

/// Appends the flat JSON object for `query` to `out`; see the module docs.
pub fn encode_into<F: FnMut(&str, Option<&str>)>(
    query: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    mut on_pair: F,
) -> Result<(), QueryError> {
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
    s.text.clear();
    s.pairs.clear();
    decode_pairs(s, query, limits.max_params)?;
    link_duplicates(query, &s.text, &mut s.pairs);
    for p in &s.pairs {
        let name = text_of(query, &s.text, &p.name);
        on_pair(name, Some(text_of(query, &s.text, &p.value)));
    }
    write_object(query, &s.text, &s.pairs, out);
    Ok(())
}

/// Splits on `&`, skips empty pieces, splits each on its first `=` and decodes both halves.
/// One pass over the query finds the pieces, their `=` and whether each half is verbatim,
/// instead of a memchr per `&` and per `=` and a second scan per part (with
/// `decode_lossy_into`: 24,800 -> 24,380 instructions per bare GET, docs/performance.md).
fn decode_pairs(s: &mut Scratch, query: &[u8], max_params: usize) -> Result<(), QueryError> {
    let mut start = 0;
    while start < query.len() {
        let (mut i, mut eq, mut name_keep, mut keep) = (start, None, true, true);
        while i < query.len() {
            match CLASS[query[i] as usize] {
                KEEP => {}
                AMP => break,
                EQ if eq.is_none() => {
                    eq = Some(i);
                    name_keep = keep;
                    keep = true;
                }
                EQ => {}
                _ => keep = false,
            }
            i += 1;
        }
        let (at, end) = (start, i);
        start = end + 1;
        if at == end {
            continue;
        }
        if s.pairs.len() == max_params {
            return Err(QueryError::TooManyParams { max: max_params });
        }
        let (name, value) = match eq {
            Some(e) => (
                push_component(s, query, at..e, name_keep),
                push_component(s, query, e + 1..end, keep),
            ),
            None => (push_component(s, query, at..end, keep), verbatim(end..end)),
        };
        s.pairs.push(Pair {
            name,
            value,
            next: NONE,
            first: true,
        });
    }
    Ok(())
}

fn verbatim(range: Range<usize>) -> Part {
    Part {
        range,
        verbatim: true,
    }
}

/// The part for `query[range]`: verbatim (`keep`), or decoded onto the end of `s.text`.
fn push_component(s: &mut Scratch, query: &[u8], range: Range<usize>, keep: bool) -> Part {
    if keep {
        return verbatim(range);
    }
    let start = s.text.len();
    decode_lossy_into(&query[range], &mut s.text, &mut s.bytes);
    Part {
        range: start..s.text.len(),
        verbatim: false,
    }
}

/// Chains each pair to the previous pair with the same name and clears its `first` flag.
fn link_duplicates(query: &[u8], text: &str, pairs: &mut [Pair]) {
    if pairs.len() <= LINEAR_SCAN_MAX {
        // Few pairs: comparing against earlier names beats hashing them, and a 64-bit
        // filter of (length, first and last byte) skips the comparisons for a name no
        // earlier one can equal (most of them: repeated names are rare).
        let mut seen = 0u64;
        for i in 0..pairs.len() {
            let name = text_of(query, text, &pairs[i].name).as_bytes();
            let bit = 1u64 << name_bits(name);
            if seen & bit == 0 {
                seen |= bit;
                continue;
            }
            let same = |j: &usize| {
                let other = &pairs[*j].name;
                other.range.len() == name.len() && text_of(query, text, other).as_bytes() == name
            };
            if let Some(j) = (0..i).rev().find(same) {
                link(pairs, j, i);
            }
        }
        return;
    }
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
    for i in 0..pairs.len() {
        if let Some(j) = last.insert(text_of(query, text, &pairs[i].name), i) {
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
fn write_object(query: &[u8], text: &str, pairs: &[Pair], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut need_comma = false;
    for (i, p) in pairs.iter().enumerate().filter(|(_, p)| p.first) {
        if need_comma {
            out.push(b',');
        }
        need_comma = true;
        write_part(query, text, &p.name, out);
        out.push(b':');
        if p.next == NONE {
            write_part(query, text, &p.value, out);
        } else {
            write_values(query, text, pairs, i, out);
        }
    }
    out.push(b'}');
}

/// Writes the array of values of the chain of pairs starting at `first`.
fn write_values(query: &[u8], text: &str, pairs: &[Pair], first: usize, out: &mut Vec<u8>) {
    out.push(b'[');
    let mut i = first;
    loop {
        write_part(query, text, &pairs[i].value, out);
        i = pairs[i].next;
        if i == NONE {
            break;
        }
        out.push(b',');
    }
    out.push(b']');
}

/// A part as a JSON string: a verbatim one needs no escaping.
#[inline]
fn write_part(query: &[u8], text: &str, p: &Part, out: &mut Vec<u8>) {
    if p.verbatim {
        out.push(b'"');
        out.extend_from_slice(&query[p.range.clone()]);
        out.push(b'"');
    } else {
        write_str(out, &text[p.range.clone()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(max_params: usize) -> Limits {
        Limits {
            max_bytes: 1 << 20,
            max_params,
            max_depth: 32,
        }
    }

    fn enc(q: &[u8]) -> String {
        let mut out = Vec::new();
        encode_into(q, &limits(10_000), &mut out, |_, _| {}).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn empty_query_is_empty_object() {
        assert_eq!(enc(b""), "{}");
        assert_eq!(enc(b"&&&"), "{}");
    }

    #[test]
    fn splits_on_ampersand_only() {
        assert_eq!(enc(b"a=1;b=2&c=3"), r#"{"a":"1;b=2","c":"3"}"#);
    }

    #[test]
    fn empty_pieces_are_skipped() {
        assert_eq!(enc(b"&a=1&&b=2&"), r#"{"a":"1","b":"2"}"#);
    }

    #[test]
    fn first_equals_sign_splits() {
        assert_eq!(enc(b"a=b=c&=x&y="), r#"{"a":"b=c","":"x","y":""}"#);
    }

    #[test]
    fn missing_equals_means_empty_value() {
        assert_eq!(enc(b"flag&a=1"), r#"{"flag":"","a":"1"}"#);
    }

    #[test]
    fn plus_is_space_and_escapes_decode() {
        assert_eq!(enc(b"a+b=c+d%20e%2B"), r#"{"a b":"c d e+"}"#);
    }

    #[test]
    fn broken_escapes_stay_literal() {
        assert_eq!(
            enc(b"a=%&b=%4&c=%zz&d=%%41"),
            r#"{"a":"%","b":"%4","c":"%zz","d":"%A"}"#
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            enc(b"a=%ff&b=\xe2\x82&c=%C3%A9"),
            "{\"a\":\"\u{fffd}\",\"b\":\"\u{fffd}\",\"c\":\"é\"}"
        );
    }

    #[test]
    fn brackets_are_literal() {
        assert_eq!(enc(b"a[b]=1&a[]=2"), r#"{"a[b]":"1","a[]":"2"}"#);
    }

    #[test]
    fn repeated_names_become_arrays_in_first_appearance_order() {
        assert_eq!(enc(b"a=1&b=2&a=3"), r#"{"a":["1","3"],"b":"2"}"#);
        assert_eq!(
            enc(b"b&a=1&b=2&a&b=x"),
            r#"{"b":["","2","x"],"a":["1",""]}"#
        );
    }

    #[test]
    fn repeated_names_with_many_pairs_use_the_map() {
        let q: Vec<String> = (0..40).map(|i| format!("k{}={i}", i % 3)).collect();
        let v: serde_json::Value = serde_json::from_str(&enc(q.join("&").as_bytes())).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["k0", "k1", "k2"]);
        assert_eq!(v["k1"][0], "1");
        assert_eq!(v["k1"].as_array().unwrap().len(), 13);
    }

    #[test]
    fn a_verbatim_name_and_its_escaped_spelling_are_one_name() {
        assert_eq!(
            enc(b"a=1&%61=2&b+c=3&b%20c=4"),
            r#"{"a":["1","2"],"b c":["3","4"]}"#
        );
    }

    #[test]
    fn names_alike_in_the_duplicate_filter_stay_apart() {
        // Same length, first and last byte: the same filter bit, different names.
        assert_eq!(enc(b"axb=1&ayb=2&axb=3"), r#"{"axb":["1","3"],"ayb":"2"}"#);
    }

    #[test]
    fn json_specials_are_escaped() {
        assert_eq!(enc(b"q=%22%5C%0A%00"), r#"{"q":"\"\\\n\u0000"}"#);
    }

    #[test]
    fn too_many_params_counts_non_empty_pieces() {
        let mut out = Vec::new();
        assert!(encode_into(b"a&&b&", &limits(2), &mut out, |_, _| {}).is_ok());
        let err = encode_into(b"a&b&c", &limits(2), &mut out, |_, _| {}).unwrap_err();
        assert_eq!(err, QueryError::TooManyParams { max: 2 });
    }

    #[test]
    fn on_pair_sees_every_pair_in_order() {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        encode_into(b"a=1&b&a=%41", &limits(10), &mut out, |n, v| {
            seen.push((n.to_string(), v.map(str::to_string)))
        })
        .unwrap();
        let want = [("a", Some("1")), ("b", Some("")), ("a", Some("A"))];
        let want: Vec<_> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn reentrant_call_from_on_pair_works() {
        let mut out = Vec::new();
        encode_into(b"a=1", &limits(10), &mut out, |_, _| {
            assert_eq!(enc(b"b=2"), r#"{"b":"2"}"#)
        })
        .unwrap();
        assert_eq!(out, br#"{"a":"1"}"#);
    }

    /// Independent, deliberately naive WHATWG decoder.
    fn reference_pairs(q: &[u8]) -> Vec<(String, String)> {
        fn decode(s: &[u8]) -> String {
            let mut out = Vec::new();
            let mut i = 0;
            while i < s.len() {
                let hex = |b: u8| (b as char).to_digit(16);
                match s[i] {
                    b'+' => out.push(b' '),
                    b'%' if i + 2 < s.len()
                        && hex(s[i + 1]).is_some()
                        && hex(s[i + 2]).is_some() =>
                    {
                        out.push((hex(s[i + 1]).unwrap() * 16 + hex(s[i + 2]).unwrap()) as u8);
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        q.split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.iter().position(|&b| b == b'=') {
                Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
                None => (decode(p), String::new()),
            })
            .collect()
    }

    /// Groups pairs by name in first-appearance order.
    fn group(pairs: &[(String, String)]) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (n, v) in pairs {
            match groups.iter_mut().find(|(g, _)| g == n) {
                Some((_, vs)) => vs.push(v.clone()),
                None => groups.push((n.clone(), vec![v.clone()])),
            }
        }
        groups
    }

    /// Reads the groups back out of the JSON object.
    fn groups_from_json(json: &str) -> Vec<(String, Vec<String>)> {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
        v.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, vec![s]),
                serde_json::Value::Array(a) => {
                    assert!(a.len() >= 2, "array for a name seen once");
                    (
                        k,
                        a.into_iter()
                            .map(|s| s.as_str().unwrap().to_string())
                            .collect(),
                    )
                }
                other => panic!("unexpected {other}"),
            })
            .collect()
    }

    fn query_bytes() -> impl Strategy<Value = Vec<u8>> {
        let special =
            prop::sample::select(b"&=%+[];aAfF09 \"\\\n\x00\xc3\xa9\xff\xe2\x82".to_vec());
        prop::collection::vec(prop_oneof![3 => special, 1 => any::<u8>()], 0..64)
    }

    proptest! {
        #[test]
        fn output_is_json_and_round_trips_pairs(q in query_bytes()) {
            let mut seen = Vec::new();
            let mut out = Vec::new();
            encode_into(&q, &limits(10_000), &mut out, |n, v| {
                seen.push((n.to_string(), v.unwrap().to_string()))
            })
            .unwrap();
            let want = reference_pairs(&q);
            prop_assert_eq!(&seen, &want);
            let json = String::from_utf8(out).unwrap();
            prop_assert_eq!(groups_from_json(&json), group(&want));
        }
    }
}
