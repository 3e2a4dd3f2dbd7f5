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
fn escape_at(src: &[u8], i: usize) -> Option<u8> {
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

/// Appends the lenient decoding of `src` (as `decode_into` with `lenient`) to `out` as
/// UTF-8, invalid sequences replaced as by `push_lossy`. The flat encoder's path for a name
/// or value that is not verbatim: one pass byte by byte straight into `out`, and a UTF-8
/// check only when a byte above ASCII came out (callgrind, the load benchmark's query: its
/// three escaped values in ~2.2k instructions, against ~2.7k in `decode_into` alone, which
/// calls memchr for each short run between escapes). `spare` is scratch for the rare repair.
pub fn decode_lossy_into(src: &[u8], out: &mut String, spare: &mut Vec<u8>) {
    let start = out.len();
    let valid = {
        // SAFETY: bytes go into the spare capacity, outside the string until `set_len`
        // (so an unwind before it leaves `out` as it was); after it they are found to be
        // UTF-8 or cut off again (below) and pushed back repaired, before `out` is used.
        let bytes = unsafe { out.as_mut_vec() };
        bytes.reserve(src.len()); // decoding never lengthens
        let dst = &mut bytes.spare_capacity_mut()[..src.len()];
        let (mut i, mut w, mut high) = (0, 0, 0u8);
        while i < src.len() {
            let mut b = src[i];
            i += 1;
            if b == b'+' {
                b = b' ';
            } else if b == b'%' {
                if let Some(byte) = escape_at(src, i - 1) {
                    b = byte;
                    i += 2;
                }
            }
            high |= b;
            dst[w].write(b);
            w += 1;
        }
        // SAFETY: the first `w` bytes of the spare capacity were written just above.
        unsafe { bytes.set_len(start + w) };
        let valid = high < 0x80 || std::str::from_utf8(&bytes[start..]).is_ok();
        if !valid {
            spare.clear();
            spare.extend_from_slice(&bytes[start..]);
            bytes.truncate(start);
        }
        valid
    };
    if !valid {
        push_lossy(out, spare);
    }
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

    #[test]
    fn decode_lossy_is_decode_then_lossy() {
        for s in [
            &b""[..],
            b"a+b%20c",
            b"%ff%4",
            b"%C3%A9\xff",
            b"%e2%82",
            b"x%%41+",
            b"\xe2\x82\xac%E2%82",
        ] {
            let mut decoded = Vec::new();
            decode_into(s, &mut decoded, true);
            let mut out = String::from("kept");
            decode_lossy_into(s, &mut out, &mut Vec::new());
            assert_eq!(out, format!("kept{}", String::from_utf8_lossy(&decoded)));
        }
    }
}
