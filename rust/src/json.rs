//! RFC 8259 JSON string writer.
//!
//! Hand-rolled rather than serde_json because every event is written straight into one
//! reusable `Vec<u8>` without building a `Value`; the escaping rules are the whole of it:
//! `"` `\` and U+0000..U+001F are escaped, everything else is copied as raw UTF-8.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes that need escaping inside a JSON string: `"`, `\` and the C0 controls.
#[inline]
fn needs_escape(b: u8) -> bool {
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
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
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
