//! `application/x-www-form-urlencoded` byte decoding shared by both query modes.
//!
//! The modes differ only on a `%` that is not followed by two hex digits: WHATWG keeps it
//! literally, Ruby's `URI.decode_www_form_component` (hence Rack) raises.

/// The value of an ASCII hex digit, or `None`.
#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte encoded by `%XX` at `src[i]`, if `src[i..]` starts with a valid escape.
#[inline]
pub(super) fn escape_at(src: &[u8], i: usize) -> Option<u8> {
    let hi = hex_val(*src.get(i + 1)?)?;
    let lo = hex_val(*src.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

/// The first `%` or `+` in `src`. Names and values are mostly short: below 32 bytes a plain
/// loop beats memchr's set-up.
#[inline]
fn find_special(src: &[u8]) -> Option<usize> {
    if src.len() < 32 {
        src.iter().position(|&b| b == b'%' || b == b'+')
    } else {
        memchr::memchr2(b'%', b'+', src)
    }
}

/// Appends the decoded bytes of `src` to `out`: `+` is a space, `%XX` a byte. A `%` that does
/// not start a valid escape is copied literally when `lenient`, otherwise it is an error.
/// Returns `false` on such an error; `out` then holds a partial decoding.
pub fn decode_into(src: &[u8], out: &mut Vec<u8>, lenient: bool) -> bool {
    let mut i = 0;
    while i < src.len() {
        // Copy the run up to the next special byte in one go.
        let run = find_special(&src[i..]).unwrap_or(src.len() - i);
        out.extend_from_slice(&src[i..i + run]);
        i += run;
        if i == src.len() {
            break;
        }
        if src[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else if let Some(byte) = escape_at(src, i) {
            out.push(byte);
            i += 3;
        } else if lenient {
            out.push(b'%');
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Appends `bytes` to `out` as UTF-8, each maximal invalid subsequence replaced by U+FFFD
/// (the same substitution as `String::from_utf8_lossy` and Python's `"replace"`), without
/// allocating.
pub fn push_lossy(out: &mut String, bytes: &[u8]) {
    // Valid UTF-8 (nearly always, and mostly ASCII) is copied as it is.
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8; checked just above, without `from_utf8`'s second
        // pass (measured: most of the cost for the short names and values of a query).
        out.push_str(unsafe { std::str::from_utf8_unchecked(bytes) });
        return;
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        out.push_str(s);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &[u8], lenient: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        decode_into(s, &mut out, lenient).then_some(out)
    }

    #[test]
    fn plus_and_escapes_decode() {
        assert_eq!(dec(b"a+b%20c%2Bd%ff", true).unwrap(), b"a b c+d\xff");
        assert_eq!(dec(b"%4a%4A", false).unwrap(), b"JJ");
    }

    #[test]
    fn broken_escapes_are_literal_when_lenient() {
        assert_eq!(dec(b"%", true).unwrap(), b"%");
        assert_eq!(dec(b"%4", true).unwrap(), b"%4");
        assert_eq!(dec(b"%zz%%41", true).unwrap(), b"%zz%A");
    }

    #[test]
    fn broken_escapes_fail_when_strict() {
        for s in [&b"%"[..], b"%4", b"a%g0", b"%%41"] {
            assert!(dec(s, false).is_none(), "{s:?}");
        }
    }

    #[test]
    fn lossy_matches_std() {
        for s in [
            &b"ok"[..],
            b"\xff",
            b"a\xe2\x82",
            b"\xf0\x9f\x98\x80\xc0\xaf",
            b"\xed\xa0\x80",
        ] {
            let mut out = String::new();
            push_lossy(&mut out, s);
            assert_eq!(out, String::from_utf8_lossy(s));
        }
    }
}
