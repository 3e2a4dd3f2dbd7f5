//! Shared oracles for beacon's fuzz targets: what every JSON text and event line beacon
//! writes must satisfy, and an independent (slow, obvious) WHATWG flat parser to compare
//! the real one against.

pub use _beacon as beacon;
use serde_json::{Map, Value};

/// Asserts `out` is RFC 8259 JSON as beacon writes it: valid UTF-8, no raw control
/// character (those must be escaped), a JSON object, and already in the compact form
/// serde_json would print (so no duplicate keys, no stray whitespace). Returns the object,
/// or `None` when it nests too deep for serde_json (then only checked structurally).
pub fn check_json_object(out: &[u8], what: &str) -> Option<Map<String, Value>> {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("{what}: output is not UTF-8 ({e}): {out:?}"));
    if let Some(b) = out.iter().find(|&&b| b < 0x20) {
        panic!("{what}: raw control byte {b:#04x} in {text:?}");
    }
    if nesting(out) >= 127 {
        // Deeper than serde_json's parser goes (rack's `a[][x]` nests two JSON levels per
        // Rack level): the structural checks of `nesting` are all we can do.
        return None;
    }
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: output is not JSON ({e}): {text:?}"));
    let reprinted = serde_json::to_string(&value).unwrap();
    assert_eq!(
        reprinted, text,
        "{what}: output is not compact canonical JSON (duplicate keys?)"
    );
    match value {
        Value::Object(map) => Some(map),
        other => panic!("{what}: output is not an object: {other}"),
    }
}

/// The deepest bracket nesting of a JSON text, checking on the way that brackets outside
/// strings balance and match, strings close, and escapes are JSON's.
pub fn nesting(json: &[u8]) -> usize {
    let (mut stack, mut deepest, mut i) = (Vec::new(), 0, 0);
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                loop {
                    match json.get(i) {
                        None => panic!("unterminated string"),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let e = json.get(i + 1).copied().unwrap_or(0);
                            assert!(b"\"\\/bfnrtu".contains(&e), "bad escape \\{}", e as char);
                            i += 2;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            open @ (b'{' | b'[') => {
                stack.push(open);
                deepest = deepest.max(stack.len());
            }
            close @ (b'}' | b']') => {
                let open = stack.pop().expect("unbalanced close");
                assert_eq!(
                    (open, close == b'}'),
                    (open, open == b'{'),
                    "mismatched brackets"
                );
            }
            _ => {}
        }
        i += 1;
    }
    assert!(stack.is_empty(), "unclosed brackets");
    deepest
}

/// Percent-decodes like WHATWG `application/x-www-form-urlencoded`: `+` is a space, `%XX`
/// a byte, any other `%` literal.
pub fn whatwg_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%'
            && i + 2 < s.len()
            && s[i + 1].is_ascii_hexdigit()
            && s[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&s[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
            continue;
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded `(name, value)` pairs of a flat query, in order, per README.md ("Query string to JSON").
pub fn whatwg_pairs(query: &[u8]) -> Vec<(String, String)> {
    query
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(i) => (whatwg_decode(&piece[..i]), whatwg_decode(&piece[i + 1..])),
            None => (whatwg_decode(piece), String::new()),
        })
        .collect()
}

/// The flat JSON object README.md specifies: a name seen once maps to its string, a name
/// seen again to an array of all its values; keys in first-appearance order.
pub fn flat_reference(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in pairs {
        match map.get_mut(name) {
            None => {
                map.insert(name.clone(), Value::String(value.clone()));
            }
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            Some(first) => {
                let first = first.take();
                map[name] = Value::Array(vec![first, Value::String(value.clone())]);
            }
        }
    }
    map
}

/// Asserts `line` is one event line: ends with the only `\n`, nothing else below 0x20,
/// a JSON object whose first keys are `ts`, (`id`,) `flavor`, `params` with the shapes README.md
/// gives. Returns the object (`None`: too deep to parse, checked structurally).
pub fn check_event_line(line: &[u8], flavor_name: &str) -> Option<Map<String, Value>> {
    assert_eq!(line.last(), Some(&b'\n'), "event line must end with \\n");
    let body = &line[..line.len() - 1];
    let obj = check_json_object(body, "event line")?;
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    // `id` (a UUIDv7, the flavor's `event_id`) sits right after `ts` when present.
    let has_id = keys.get(1) == Some(&"id");
    let first = if has_id { 4 } else { 3 };
    let expected: &[&str] = if has_id {
        &["ts", "id", "flavor", "params"]
    } else {
        &["ts", "flavor", "params"]
    };
    assert!(
        keys.len() >= first && keys[..first] == *expected,
        "event keys {keys:?}"
    );
    if has_id {
        let id = obj["id"].as_str().expect("id is a string");
        assert!(
            id.len() == 36 && id.as_bytes()[14] == b'7',
            "UUIDv7 id {id:?}"
        );
    }
    for k in &keys[first..] {
        assert!(matches!(*k, "ip" | "ua" | "referer"), "unexpected key {k}");
    }
    let ts = obj["ts"].as_str().expect("ts is a string");
    check_timestamp(ts);
    assert_eq!(obj["flavor"].as_str(), Some(flavor_name), "flavor name");
    assert!(obj["params"].is_object(), "params is an object");
    Some(obj)
}

/// `YYYY-MM-DDTHH:MM:SS.mmm+HH:MM`.
pub fn check_timestamp(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 29, "ts {ts:?}");
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 | 26 => c == b':',
            19 => c == b'.',
            23 => c == b'+' || c == b'-',
            _ => c.is_ascii_digit(),
        };
        assert!(ok, "ts {ts:?} byte {i}");
    }
}

/// The pairs a JSON object body reports as parameters (what the envelope uses for
/// required parameters, the Kafka key and dedup).
pub fn json_pairs(map: &Map<String, Value>) -> Vec<(String, Option<String>)> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            (k.clone(), v)
        })
        .collect()
}

/// The IANA zones the targets pick from: fixed, half-hour, negative, DST-switching.
pub const ZONES: [&str; 8] = [
    "UTC",
    "Europe/Athens",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Pacific/Kiritimati",
];
