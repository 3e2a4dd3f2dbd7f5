//! `rack` mode. Any input: no panic; an error is one rack can raise (never a limit under
//! generous limits); success is one canonical JSON object of strings, nulls, arrays and
//! objects, the same on a second call; a smaller depth limit gives the same answer or
//! TooDeep. Bracket-free input is checked against an independent model of Rack 2.2
//! (`&`/`;` separators, spaces after them dropped, strict %-escapes, last value wins,
//! no `=` is null, empty names ignored, invalid UTF-8 rejected).
#![no_main]

use beacon_fuzz::beacon;

use beacon::query::{encode_query, encode_query_into, Limits, Mode, QueryError};
use beacon_fuzz::check_json_object;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const GENEROUS: Limits = Limits {
    max_bytes: usize::MAX,
    max_params: usize::MAX,
    max_depth: 100,
};

fuzz_target!(|query: &[u8]| {
    let mut out = Vec::new();
    let mut pairs = 0usize;
    let r = encode_query_into(query, Mode::Rack, &GENEROUS, &mut out, |_, _| pairs += 1);
    match &r {
        Ok(()) => {
            let obj = check_json_object(&out, "rack");
            for v in obj.iter().flat_map(|o| o.values()) {
                check_rack_value(v);
            }
            let pieces = rack_pieces(query).iter().filter(|p| !p.is_empty()).count();
            assert_eq!(pairs, pieces, "on_pair must see every non-empty piece");
        }
        Err(QueryError::BadEscape | QueryError::InvalidUtf8 | QueryError::TypeConflict(_)) => {}
        Err(QueryError::TooDeep { max }) => assert_eq!(*max, 100),
        Err(e) => panic!("rack must not fail with {e:?} under generous limits"),
    }
    let again = encode_query(query, Mode::Rack, &GENEROUS);
    match (&r, &again) {
        (Ok(()), Ok(o)) => assert_eq!(o, &out, "rack is not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a, b, "rack is not deterministic"),
        _ => panic!("rack is not deterministic: {r:?} then {again:?}"),
    }

    if !query.contains(&b'%') && std::str::from_utf8(query).is_ok() {
        assert!(
            !matches!(r, Err(QueryError::BadEscape | QueryError::InvalidUtf8)),
            "{r:?} without any escape in valid UTF-8"
        );
    }
    if let Some(model) = bracket_free_model(query) {
        match (&model, &r) {
            (Ok(m), Ok(())) => assert_eq!(
                &out,
                serde_json::to_string(m).unwrap().as_bytes(),
                "rack differs from the bracket-free model"
            ),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("rack {r:?}, model {model:?}"),
        }
    }

    let depth = query.first().map_or(0, |b| (b % 16) as usize);
    let shallow = Limits {
        max_depth: depth,
        ..GENEROUS
    };
    match encode_query(query, Mode::Rack, &shallow) {
        Err(QueryError::TooDeep { max }) => assert_eq!(max, depth),
        Ok(o) => assert_eq!(r.map(|()| out), Ok(o), "depth {depth}"),
        Err(e) => assert_eq!(r, Err(e), "depth {depth}"),
    }
});

fn check_rack_value(v: &Value) {
    match v {
        Value::Null | Value::String(_) => {}
        Value::Array(a) => a.iter().for_each(check_rack_value),
        Value::Object(o) => o.values().for_each(check_rack_value),
        other => panic!("rack produced {other}"),
    }
}

/// Ruby's `URI.decode_www_form_component`: `+` is a space, `%XX` a byte, any other `%`
/// raises.
fn strict_unescape(s: &[u8]) -> Result<Vec<u8>, QueryError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or(QueryError::BadEscape)?;
                let hex = std::str::from_utf8(hex).map_err(|_| QueryError::BadEscape)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(QueryError::BadEscape);
                }
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

/// `parse_nested_query` for names without brackets, written from Rack 2.2's source; `None`
/// when a decoded name has a bracket (nesting is out of this model's scope).
fn bracket_free_model(query: &[u8]) -> Option<Result<Map<String, Value>, QueryError>> {
    let model = || -> Result<Option<Map<String, Value>>, QueryError> {
        let mut raw: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for p in rack_pieces(query).into_iter().filter(|p| !p.is_empty()) {
            let (k, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (
                    strict_unescape(&p[..i])?,
                    Some(strict_unescape(&p[i + 1..])?),
                ),
                None => (strict_unescape(p)?, None),
            };
            let k = String::from_utf8(k).map_err(|_| QueryError::InvalidUtf8)?;
            if k.contains(['[', ']']) {
                return Ok(None);
            }
            if k.is_empty() {
                continue;
            }
            match raw.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => raw.push((k, v)),
            }
        }
        let mut map = Map::new();
        for (k, v) in raw {
            let v = match v {
                None => Value::Null,
                Some(b) => {
                    Value::String(String::from_utf8(b).map_err(|_| QueryError::InvalidUtf8)?)
                }
            };
            map.insert(k, v);
        }
        Ok(Some(map))
    };
    model().transpose()
}

/// `qs.split(/[&;] */n)`: every separator eats the spaces after it.
fn rack_pieces(query: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = query;
    loop {
        match rest.iter().position(|&b| b == b'&' || b == b';') {
            Some(i) => {
                pieces.push(&rest[..i]);
                let after = &rest[i + 1..];
                rest = &after[after.iter().take_while(|&&b| b == b' ').count()..];
            }
            None => {
                pieces.push(rest);
                return pieces;
            }
        }
    }
}
