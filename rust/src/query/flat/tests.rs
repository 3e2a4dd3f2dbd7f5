//! The flat encoder against an independent, naive WHATWG decoder.

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
fn parts_after_longer_ones_are_not_mixed_with_them() {
    // The arena keeps the bytes of longer parts and earlier calls past what is in use.
    let long = "x".repeat(40);
    assert_eq!(
        enc(format!("a=%41{long}%42&b=%43").as_bytes()),
        format!(r#"{{"a":"A{long}B","b":"C"}}"#)
    );
    assert_eq!(enc(b"c=%44+"), r#"{"c":"D "}"#);
}

#[test]
fn invalid_utf8_in_long_parts_is_replaced() {
    let (y, z) = ("y".repeat(30), "z".repeat(20));
    let q = format!("k=%ff{y}%e2%82&v=%C3%A9{z}");
    let want = format!("{{\"k\":\"\u{fffd}{y}\u{fffd}\",\"v\":\"\u{e9}{z}\"}}");
    assert_eq!(enc(q.as_bytes()), want);
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
                b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
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
    let special = prop::sample::select(b"&=%+[];aAfF09 \"\\\n\x00\xc3\xa9\xff\xe2\x82".to_vec());
    prop::collection::vec(prop_oneof![3 => special, 1 => any::<u8>()], 0..64)
}

/// Long plain runs between the special bytes: the scan's chunks and the arena's wide moves.
fn long_query_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::collection::vec(prop::sample::select(b"abcXYZ09-_.~".to_vec()), 0..40),
        2 => query_bytes(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn output_is_json_and_round_trips_pairs(q in prop_oneof![query_bytes(), long_query_bytes()]) {
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
