//! RFC 8259 JSON string writer.
//!
//! Hand-rolled rather than serde_json because every event is written straight into one
//! reusable `Vec<u8>` without building a `Value`; the escaping rules are the whole of it:
//! `"` `\` and U+0000..U+001F are escaped, everything else is copied as raw UTF-8.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes that need escaping inside a JSON string: `"`, `\` and the C0 controls.
#[inline]
pub fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends `s` as a quoted JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_body(out, s);
    out.push(b'"');
}

/// Appends the escaped body of `s` without the surrounding quotes.
pub fn write_str_body(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The index of the first byte at or after `from` that needs escaping: eight bytes at a
/// time while none does (most of every event), then byte by byte.
#[inline]
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = &bytes[from..];
    let mut words = rest.chunks_exact(8);
    let mut skipped = 0;
    for word in words.by_ref() {
        let w = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        if word_needs_escape(w) {
            break;
        }
        skipped += 8;
    }
    let tail = &rest[skipped..];
    tail.iter()
        .position(|&b| needs_escape(b))
        .map(|p| from + skipped + p)
}

/// Whether any of the eight bytes of `w` needs escaping: the SWAR tests of "Bit Twiddling
/// Hacks" (S. E. Anderson, "Determine if a word has a byte less than n" / "equal to n"),
/// exact for every byte value: a byte ≥ 0x80 (UTF-8) never sets its flag.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')))
        != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(enc("hello"), "\"hello\"");
        assert_eq!(enc("ünï€😀"), "\"ünï€😀\"");
    }

    #[test]
    fn quotes_backslashes_and_controls_are_escaped() {
        assert_eq!(enc("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(enc("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(enc("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        // DEL and U+2028 are legal raw in RFC 8259.
        assert_eq!(enc("\u{7f}\u{2028}"), "\"\u{7f}\u{2028}\"");
    }

    #[test]
    fn output_parses_back_to_the_input() {
        for s in ["", "x", "\"", "\\\\", "a\u{0}b", "tab\there", "日本"] {
            let back: String = serde_json::from_str(&enc(s)).unwrap();
            assert_eq!(back, s);
        }
    }
}
