//! `multipart/form-data` (RFC 7578) bodies as an `application/x-www-form-urlencoded`
//! query, so a `FormData` sent by `navigator.sendBeacon` goes through the same query
//! encoders as a GET pixel.
//!
//! Our own parser, not a crate: the body is already whole in memory and capped, and the
//! crates do not fit. `multer` 3 (axum's) is async-only over a `Stream` of `Bytes`, pulls
//! in `bytes`, `http`, `httparse`, `mime`, `encoding_rs`, `spin` and `futures-util` and
//! would need an executor; its Content-Disposition reading matches `name`/`filename`
//! case-sensitively, gives up on `filename*` (so such a file part would pass as a text
//! field), undoes `\"` but not `\\`, and drops a name that is not UTF-8. `multipart` is
//! archived and flagged unmaintained (RustSec); `multiparty` has had one release, in 2021.
//! What is needed is small: find delimiters with `memchr::memmem` (linear), split each
//! part's headers from its data, read one header.
//!
//! Framing is RFC 2046 §5.1.1: an optional preamble, then `--boundary`, parts each after
//! `CRLF--boundary` plus optional spaces/tabs and CRLF, and `CRLF--boundary--`; whatever
//! follows that (the epilogue) is ignored. Decisions where RFCs and clients leave room:
//! - Line endings must be CRLF, as every browser sends (WHATWG "multipart/form-data
//!   encoding algorithm"); LF alone is broken framing.
//! - A part's headers end at a blank line. One whose blank line is the CRLF that opens the
//!   next delimiter has an empty value.
//! - A part's header section is at most [`MAX_HEADER_BYTES`]; folded header lines (a
//!   line starting with a space or tab) are refused.
//! - `Content-Type` and `Content-Transfer-Encoding` of a part are ignored: values go
//!   through as their bytes (RFC 7578 §4.7 deprecates the latter).
//! - Names are kept as sent. Browsers escape `"`, CR and LF in a name as `%22`, `%0D` and
//!   `%0A` and leave `\` alone (WHATWG); those stay as these bytes. A backslash in a
//!   quoted name is RFC 9110 §5.6.4's quoted-pair, as other clients (Go's mime/multipart)
//!   write them, so a browser-sent `\` in a name is dropped (and one ending a name leaves
//!   the quoted-string open: Malformed); analytics field names have none.

use memchr::memmem::Finder;

use super::BodyError;

/// Longest header section of one part; a browser writes one or two short lines.
pub const MAX_HEADER_BYTES: usize = 8192;

/// RFC 2046 §5.1.1: at most 70 characters.
const MAX_BOUNDARY: usize = 70;

/// The boundary of a `multipart/form-data; boundary=...` Content-Type (quoted or bare,
/// parameter name case-insensitive, other parameters allowed in any order). RFC 2046
/// §5.1.1: 1-70 characters from its bchars set, not ending in space. Missing, repeated or
/// invalid → Err(Malformed); another media type → Err(Unsupported).
///
/// Borrowed from `content_type`: a quoted boundary never needs unescaping, since `\` and
/// `"` are not bchars, so a backslash in it is refused as invalid. A bare one is taken up
/// to `;` or whitespace and then held to bchars, which is laxer than a token: clients send
/// boundaries such as `----=_Part_0` unquoted.
pub fn boundary(content_type: &[u8]) -> Result<&[u8], BodyError> {
    let (media_type, params) = split_type(content_type);
    if !media_type.eq_ignore_ascii_case(b"multipart/form-data") {
        return Err(BodyError::Unsupported);
    }
    let mut found = None;
    parse_params(params, |name, value| {
        if name.eq_ignore_ascii_case(b"boundary") {
            if found.is_some() {
                return Err(BodyError::Malformed("repeated boundary parameter"));
            }
            found = Some(value);
        }
        Ok(())
    })?;
    let value = found.ok_or(BodyError::Malformed("no boundary parameter"))?;
    if value.quoted && value.raw.contains(&b'\\') || !is_valid_boundary(value.raw) {
        return Err(BodyError::Malformed("invalid boundary"));
    }
    Ok(value.raw)
}

/// Rewrites a multipart/form-data body as an application/x-www-form-urlencoded query string
/// appended to `out` (not cleared: the caller may have put the URL's query and '&' first):
/// each text field becomes `name=value` in body order, joined with '&'; name and value
/// percent-encoded so that beacon's query decoders give back the exact bytes (every byte
/// but ALPHA DIGIT '-' '.' '_' '~' is %XX; beacon's "rack" mode decodes the name before
/// splitting brackets, as Rack does for multipart, so `a[b]` still nests there).
///
/// A part whose Content-Disposition has a `filename` (or `filename*`) parameter is skipped
/// and counted. Parts must be `form-data` with a `name`. More than `max_params` parts
/// (skipped files count too) → Err(Malformed("too many parts")); broken framing (see the
/// module docs) → Err(Malformed). Returns how many file parts were skipped. On error `out`
/// is as it was.
pub fn to_query(
    body: &[u8],
    boundary: &[u8],
    max_params: usize,
    out: &mut Vec<u8>,
) -> Result<u32, BodyError> {
    let start = out.len();
    let r = parse(body, boundary, max_params, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// RFC 2046 §5.1.1 `boundary := 0*69<bchars> bcharsnospace`.
fn is_valid_boundary(b: &[u8]) -> bool {
    let is_bchar = |c: &u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(c);
    (1..=MAX_BOUNDARY).contains(&b.len()) && b.iter().all(is_bchar) && !b.ends_with(b" ")
}

/// Walks the parts of `body`, appending each text field to `out`.
fn parse(
    body: &[u8],
    boundary: &[u8],
    max_params: usize,
    out: &mut Vec<u8>,
) -> Result<u32, BodyError> {
    if !is_valid_boundary(boundary) {
        return Err(BodyError::Malformed("invalid boundary"));
    }
    let delimiter = [b"\r\n--", boundary].concat();
    let finder = Finder::new(&delimiter);
    // The first delimiter may open the body, without the CRLF that ends a preamble.
    let mut pos = if body.starts_with(&delimiter[2..]) {
        delimiter.len() - 2
    } else {
        let at = finder
            .find(body)
            .ok_or(BodyError::Malformed("boundary not found"))?;
        at + delimiter.len()
    };
    let (mut parts, mut skipped) = (0usize, 0u32);
    let mut need_amp = false;
    while let Some(start) = open_part(body, pos)? {
        parts += 1;
        if parts > max_params {
            return Err(BodyError::Malformed("too many parts"));
        }
        let end = finder
            .find(&body[start..])
            .map(|i| start + i)
            .ok_or(BodyError::Malformed("no closing delimiter"))?;
        let (headers, data) = split_part(body, start, end)?;
        match disposition(headers)? {
            Disposition::File => skipped = skipped.saturating_add(1),
            Disposition::Field(name) => {
                if need_amp {
                    out.push(b'&');
                }
                need_amp = true;
                push_encoded(out, name.bytes());
                out.push(b'=');
                push_encoded(out, data.iter().copied());
            }
        }
        pos = end + delimiter.len();
    }
    Ok(skipped)
}

/// What follows the delimiter that ends at `pos`: `--` closes the body (`None`); spaces or
/// tabs (RFC 2046 transport padding) then CRLF open a part, whose start is returned.
fn open_part(body: &[u8], pos: usize) -> Result<Option<usize>, BodyError> {
    let rest = &body[pos..];
    if rest.starts_with(b"--") {
        return Ok(None);
    }
    let pad = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match rest[pad..] {
        [] => Err(BodyError::Malformed("no closing delimiter")),
        [b'\r', b'\n', ..] => Ok(Some(pos + pad + 2)),
        _ => Err(BodyError::Malformed("bad delimiter line")),
    }
}

/// Splits the part `body[start..end]` into its header lines (without the blank line) and
/// its data. The search for the blank line starts at the CRLF that ended the delimiter
/// line, so a part with no headers is seen, and may end on the CRLF that opens the next
/// delimiter, so headers that run into it give an empty value.
fn split_part(body: &[u8], start: usize, end: usize) -> Result<(&[u8], &[u8]), BodyError> {
    let from = start - 2;
    let to = (end + 2).min(start + MAX_HEADER_BYTES + 2);
    match memchr::memmem::find(&body[from..to], b"\r\n\r\n") {
        Some(i) => {
            let headers = &body[start..(from + i).max(start)];
            let data = &body[(from + i + 4).min(end)..end];
            Ok((headers, data))
        }
        None if to < end + 2 => Err(BodyError::Malformed("part headers too long")),
        None => Err(BodyError::Malformed("no blank line after part headers")),
    }
}

/// What a part's Content-Disposition (RFC 7578 §4.2) makes of it.
enum Disposition<'a> {
    Field(Value<'a>),
    File,
}

/// Finds the one Content-Disposition among the header lines and reads it.
fn disposition(headers: &[u8]) -> Result<Disposition<'_>, BodyError> {
    let mut found = None;
    for line in header_lines(headers) {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            return Err(BodyError::Malformed("folded part header"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(BodyError::Malformed("part header without colon"))?;
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-disposition")
            && found.replace(&line[colon + 1..]).is_some()
        {
            return Err(BodyError::Malformed("repeated content-disposition"));
        }
    }
    let value = found.ok_or(BodyError::Malformed("part without content-disposition"))?;
    let (kind, params) = split_type(value);
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(BodyError::Malformed("part is not form-data"));
    }
    let (mut name, mut file) = (None, false);
    parse_params(params, |param, value| {
        if param.eq_ignore_ascii_case(b"name") {
            if name.replace(value).is_some() {
                return Err(BodyError::Malformed("repeated name parameter"));
            }
        } else if param.eq_ignore_ascii_case(b"filename")
            || param.eq_ignore_ascii_case(b"filename*")
        {
            file = true;
        }
        Ok(())
    })?;
    let name = name.ok_or(BodyError::Malformed("part without name"))?;
    Ok(if file {
        Disposition::File
    } else {
        Disposition::Field(name)
    })
}

/// The CRLF-separated lines of a header section (none when it is empty).
fn header_lines(headers: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = (!headers.is_empty()).then_some(headers);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memmem::find(r, b"\r\n") {
            Some(i) => {
                rest = Some(&r[i + 2..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A header value's type and its `;`-led parameters: `form-data; name="a"` gives
/// `form-data` and `; name="a"`.
fn split_type(value: &[u8]) -> (&[u8], &[u8]) {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    (value[..end].trim_ascii(), &value[end..])
}

/// A parameter value as it stands in the header: a token or the inside of a quoted-string.
#[derive(Clone, Copy)]
struct Value<'a> {
    raw: &'a [u8],
    quoted: bool,
}

impl<'a> Value<'a> {
    /// The value's bytes, a quoted-pair `\x` giving `x` (RFC 9110 §5.6.4).
    fn bytes(self) -> impl Iterator<Item = u8> + 'a {
        let mut escaped = false;
        let quoted = self.quoted;
        self.raw.iter().copied().filter(move |&b| {
            let keep = !(quoted && !escaped && b == b'\\');
            escaped = !keep;
            keep
        })
    }
}

/// Calls `f` with each `name=value` of `*( OWS ";" OWS [ parameter ] )` (RFC 9110 §5.6.6),
/// allowing whitespace around `=` and a bare value that is not a strict token.
fn parse_params<'a>(
    mut s: &'a [u8],
    mut f: impl FnMut(&'a [u8], Value<'a>) -> Result<(), BodyError>,
) -> Result<(), BodyError> {
    const BAD: BodyError = BodyError::Malformed("bad header parameter");
    loop {
        s = s.trim_ascii_start();
        let Some(rest) = s.strip_prefix(b";") else {
            return if s.is_empty() { Ok(()) } else { Err(BAD) };
        };
        s = rest.trim_ascii_start();
        if s.is_empty() || s[0] == b';' {
            continue;
        }
        let name_len = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
        if name_len == 0 {
            return Err(BAD);
        }
        let name = &s[..name_len];
        s = s[name_len..]
            .trim_ascii_start()
            .strip_prefix(b"=")
            .ok_or(BAD)?;
        s = s.trim_ascii_start();
        let (value, rest) = match s.strip_prefix(b"\"") {
            Some(inner) => quoted_string(inner)?,
            None => bare_value(s).ok_or(BAD)?,
        };
        f(name, value)?;
        s = rest;
    }
}

/// The quoted-string whose opening quote precedes `s`, and what follows its closing quote.
fn quoted_string(s: &[u8]) -> Result<(Value<'_>, &[u8]), BodyError> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => {
                let value = Value {
                    raw: &s[..i],
                    quoted: true,
                };
                return Ok((value, &s[i + 1..]));
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err(BodyError::Malformed("unterminated quoted string"))
}

/// An unquoted value: up to `;` or whitespace, not empty.
fn bare_value(s: &[u8]) -> Option<(Value<'_>, &[u8])> {
    let end = s
        .iter()
        .position(|&b| b == b';' || b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let value = Value {
        raw: &s[..end],
        quoted: false,
    };
    (end > 0).then_some((value, &s[end..]))
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Appends `bytes` percent-encoded: all but RFC 3986's unreserved characters become %XX,
/// so both query modes decode them back to exactly these bytes (`+` included).
fn push_encoded(out: &mut Vec<u8>, bytes: impl Iterator<Item = u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{encode_query, encode_query_into, Limits, Mode};
    use proptest::prelude::*;

    const CHROMIUM: &str = "----WebKitFormBoundaryAbC123xYz789Qq";

    /// What Chromium sends for `FormData` with `ev`, `uid` and a `Blob` under `f`.
    fn chromium_body() -> Vec<u8> {
        [
            "------WebKitFormBoundaryAbC123xYz789Qq\r\n",
            "Content-Disposition: form-data; name=\"ev\"\r\n",
            "\r\n",
            "pageview\r\n",
            "------WebKitFormBoundaryAbC123xYz789Qq\r\n",
            "Content-Disposition: form-data; name=\"uid\"\r\n",
            "\r\n",
            "7f3c2a9e\r\n",
            "------WebKitFormBoundaryAbC123xYz789Qq\r\n",
            "Content-Disposition: form-data; name=\"f\"; filename=\"blob\"\r\n",
            "Content-Type: application/octet-stream\r\n",
            "\r\n",
            "\x00\x01binary\r\n--not-a-boundary\r\n",
            "------WebKitFormBoundaryAbC123xYz789Qq--\r\n",
        ]
        .concat()
        .into_bytes()
    }

    /// A body of `(name as it stands in the header, value, is a file)` parts, CRLF-framed.
    fn form(boundary: &str, parts: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value, file) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let filename = if *file { "; filename=\"a.txt\"" } else { "" };
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name={name}{filename}\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    fn query(body: &[u8], boundary: &str) -> Result<(String, u32), BodyError> {
        let mut out = Vec::new();
        let skipped = to_query(body, boundary.as_bytes(), 256, &mut out)?;
        Ok((String::from_utf8(out).unwrap(), skipped))
    }

    fn malformed(body: &[u8], boundary: &str) -> &'static str {
        match query(body, boundary) {
            Err(BodyError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    /// The decoded pairs beacon's flat decoder sees in `q`.
    fn flat_pairs(q: &[u8]) -> Vec<(String, String)> {
        let limits = Limits {
            max_bytes: usize::MAX,
            max_params: usize::MAX,
            max_depth: 32,
        };
        let mut pairs = Vec::new();
        encode_query_into(q, Mode::Flat, &limits, &mut Vec::new(), |n, v| {
            pairs.push((n.to_owned(), v.unwrap_or_default().to_owned()))
        })
        .unwrap();
        pairs
    }

    fn b(ct: &str) -> Result<&[u8], BodyError> {
        boundary(ct.as_bytes())
    }

    #[test]
    fn boundary_bare_or_quoted() {
        let chromium = format!("multipart/form-data; boundary={CHROMIUM}");
        assert_eq!(b(&chromium), Ok(CHROMIUM.as_bytes()));
        assert_eq!(
            b("multipart/form-data; boundary=\"a b:c\""),
            Ok(&b"a b:c"[..])
        );
        assert_eq!(b("multipart/form-data;boundary=x"), Ok(&b"x"[..]));
        assert_eq!(b("Multipart/Form-Data; BOUNDARY=x"), Ok(&b"x"[..]));
        assert_eq!(b("multipart/form-data ; boundary = x ;"), Ok(&b"x"[..]));
        assert_eq!(
            b("multipart/form-data; boundary=----=_Part_0"),
            Ok(&b"----=_Part_0"[..])
        );
    }

    #[test]
    fn boundary_among_other_parameters() {
        assert_eq!(
            b("multipart/form-data; charset=utf-8; boundary=x; foo=\"b;ar\""),
            Ok(&b"x"[..])
        );
        assert_eq!(
            b("multipart/form-data; foo=\"boundary=y\"; boundary=x"),
            Ok(&b"x"[..])
        );
        assert_eq!(b("multipart/form-data;; boundary=x"), Ok(&b"x"[..]));
    }

    #[test]
    fn boundary_length_and_characters() {
        let seventy = "a".repeat(70);
        assert_eq!(
            b(&format!("multipart/form-data; boundary={seventy}")),
            Ok(seventy.as_bytes())
        );
        for ct in [
            format!("multipart/form-data; boundary={seventy}a"),
            "multipart/form-data; boundary=\"\"".into(),
            "multipart/form-data; boundary=\"ab \"".into(),
            "multipart/form-data; boundary=a\"b".into(),
            "multipart/form-data; boundary=a*b".into(),
            "multipart/form-data; boundary=\"a\\b\"".into(),
            "multipart/form-data; boundary=\"a\u{e9}\"".into(),
            "multipart/form-data; boundary=\"abc".into(),
        ] {
            assert!(matches!(b(&ct), Err(BodyError::Malformed(_))), "{ct:?}");
        }
    }

    #[test]
    fn boundary_missing_repeated_or_not_multipart() {
        assert_eq!(
            b("multipart/form-data"),
            Err(BodyError::Malformed("no boundary parameter"))
        );
        assert_eq!(
            b("multipart/form-data; charset=utf-8"),
            Err(BodyError::Malformed("no boundary parameter"))
        );
        assert_eq!(
            b("multipart/form-data; boundary=x; boundary=y"),
            Err(BodyError::Malformed("repeated boundary parameter"))
        );
        assert!(matches!(
            b("multipart/form-data; boundary"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            b("multipart/form-data; boundary="),
            Err(BodyError::Malformed(_))
        ));
        for ct in [
            "multipart/mixed; boundary=x",
            "text/plain",
            "",
            "multipart/form-datax",
        ] {
            assert_eq!(b(ct), Err(BodyError::Unsupported), "{ct:?}");
        }
    }

    #[test]
    fn chromium_form_data_with_a_blob() {
        let (q, skipped) = query(&chromium_body(), CHROMIUM).unwrap();
        assert_eq!(q, "ev=pageview&uid=7f3c2a9e");
        assert_eq!(skipped, 1);
    }

    #[test]
    fn appends_after_what_the_caller_wrote() {
        let mut out = b"src=pixel&".to_vec();
        to_query(&chromium_body(), CHROMIUM.as_bytes(), 256, &mut out).unwrap();
        assert_eq!(out, b"src=pixel&ev=pageview&uid=7f3c2a9e");
        // On error the caller's bytes are left as they were.
        let mut out = b"src=pixel&".to_vec();
        let body = form("x", &[("\"a\"", b"1", false)]);
        assert!(to_query(&body[..body.len() - 4], b"x", 256, &mut out).is_err());
        assert_eq!(out, b"src=pixel&");
    }

    #[test]
    fn non_ascii_values_round_trip_through_the_flat_decoder() {
        let value = "καλημέρα 🙂 a+b&c=d%20;[x]\r\n\"q\"\t".as_bytes();
        let body = form(
            "x",
            &[("\"κλειδί\"", value, false), ("\"a b\"", b"", false)],
        );
        let (q, _) = query(&body, "x").unwrap();
        assert!(q
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~%=&".contains(&c)));
        assert_eq!(
            flat_pairs(q.as_bytes()),
            [
                ("κλειδί".into(), String::from_utf8(value.to_vec()).unwrap()),
                ("a b".into(), String::new()),
            ]
        );
    }

    #[test]
    fn every_byte_but_unreserved_is_escaped() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        push_encoded(&mut out, all.iter().copied());
        let want: String = all
            .iter()
            .map(|&c| match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (c as char).to_string()
                }
                _ => format!("%{c:02X}"),
            })
            .collect();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn repeated_names_keep_their_order() {
        let body = form(
            "x",
            &[
                ("\"a\"", b"1", false),
                ("\"b\"", b"2", false),
                ("\"a\"", b"3", false),
            ],
        );
        let (q, _) = query(&body, "x").unwrap();
        assert_eq!(q, "a=1&b=2&a=3");
        let json = encode_query(q.as_bytes(), Mode::Flat, &Limits::default()).unwrap();
        assert_eq!(json, br#"{"a":["1","3"],"b":"2"}"#);
    }

    #[test]
    fn bracketed_names_still_nest_in_rack_mode() {
        let body = form(
            "x",
            &[("\"a[b]\"", b"1", false), ("\"a[c][]\"", b"2", false)],
        );
        let (q, _) = query(&body, "x").unwrap();
        let json = encode_query(q.as_bytes(), Mode::Rack, &Limits::default()).unwrap();
        assert_eq!(json, br#"{"a":{"b":"1","c":["2"]}}"#);
    }

    #[test]
    fn names_quoted_escaped_or_bare() {
        let body = form(
            "x",
            &[
                ("\"a\\\"b\\\\c\"", b"1", false), // Go: a"b\c
                ("\"a%22b%0D%0A\"", b"2", false), // browsers: kept as sent
                ("plain", b"3", false),
                ("\"semi;colon\"", b"4", false),
                ("\"\"", b"5", false),
            ],
        );
        let (q, _) = query(&body, "x").unwrap();
        assert_eq!(
            flat_pairs(q.as_bytes()),
            [
                ("a\"b\\c".into(), "1".into()),
                ("a%22b%0D%0A".into(), "2".into()),
                ("plain".into(), "3".into()),
                ("semi;colon".into(), "4".into()),
                ("".into(), "5".into()),
            ]
        );
    }

    #[test]
    fn file_parts_are_skipped_and_counted() {
        let parts = [
            "--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\n",
            "Content-Type: application/octet-stream\r\n\r\n\r\n",
            "--x\r\ncontent-disposition: FORM-DATA; FILENAME*=UTF-8''%C3%A9; name=g\r\n\r\n",
            "data\r\n",
            "--x\r\nContent-Disposition: form-data; name=\"ev\"\r\n\r\nclick\r\n--x--",
        ];
        assert_eq!(
            query(parts.concat().as_bytes(), "x"),
            Ok(("ev=click".into(), 2))
        );
    }

    #[test]
    fn values_keep_crlf_dashes_and_near_boundaries() {
        let value = b"line1\r\nline2\r\n--x-not\r\n-x\r\n\r\n";
        let body = form("xy", &[("\"v\"", value, false)]);
        let (q, _) = query(&body, "xy").unwrap();
        assert_eq!(flat_pairs(q.as_bytes())[0].1.as_bytes(), value);
    }

    #[test]
    fn empty_form_and_empty_values() {
        assert_eq!(query(b"--x--\r\n", "x"), Ok((String::new(), 0)));
        assert_eq!(query(b"--x--", "x"), Ok((String::new(), 0)));
        let body = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--x--";
        assert_eq!(query(body, "x"), Ok(("a=".into(), 0)));
        // Headers running into the next delimiter: an empty value too.
        let body = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n--x--";
        assert_eq!(query(body, "x"), Ok(("a=".into(), 0)));
    }

    #[test]
    fn preamble_epilogue_and_transport_padding() {
        let body = [
            "This is the preamble.\r\nIt is ignored.\r\n",
            "--x \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n",
            "--x\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n",
            "--x--  \r\nThis is the epilogue. --x\r\nContent-Disposition: form-data; name=c",
        ]
        .concat();
        assert_eq!(query(body.as_bytes(), "x"), Ok(("a=1&b=2".into(), 0)));
    }

    #[test]
    fn other_part_headers_are_ignored() {
        let body = [
            "--x\r\nContent-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: 8bit\r\n",
            "Content-Disposition:form-data;name=\"a\"\r\nX-Other: y\r\n\r\n1\r\n--x--",
        ]
        .concat();
        assert_eq!(query(body.as_bytes(), "x"), Ok(("a=1".into(), 0)));
    }

    #[test]
    fn more_parts_than_max_params_is_malformed() {
        let body = form(
            "x",
            &[("a", b"1", false), ("f", b"", true), ("b", b"2", false)],
        );
        let mut out = Vec::new();
        assert_eq!(to_query(&body, b"x", 3, &mut out), Ok(1));
        let mut out = Vec::new();
        assert_eq!(
            to_query(&body, b"x", 2, &mut out),
            Err(BodyError::Malformed("too many parts"))
        );
        assert!(out.is_empty());
        assert_eq!(
            to_query(&body, b"x", 0, &mut out),
            Err(BodyError::Malformed("too many parts"))
        );
    }

    #[test]
    fn truncated_bodies_are_malformed() {
        let body = chromium_body();
        let close = body.len() - CHROMIUM.len() - 6;
        for cut in 0..close {
            assert!(
                matches!(query(&body[..cut], CHROMIUM), Err(BodyError::Malformed(_))),
                "cut at {cut}"
            );
        }
        assert_eq!(
            malformed(&body[..close - 1], CHROMIUM),
            "no closing delimiter"
        );
    }

    #[test]
    fn a_boundary_that_never_appears_is_malformed() {
        assert_eq!(
            malformed(&chromium_body(), "----WebKitFormBoundaryOther"),
            "boundary not found"
        );
        assert_eq!(malformed(b"", "x"), "boundary not found");
        assert_eq!(malformed(b"a=1&b=2", "x"), "boundary not found");
    }

    #[test]
    fn lf_only_line_endings_are_malformed() {
        let body = chromium_body()
            .split(|&c| c == b'\r')
            .collect::<Vec<_>>()
            .concat();
        assert!(matches!(
            query(&body, CHROMIUM),
            Err(BodyError::Malformed(_))
        ));
        let body = "--x\nContent-Disposition: form-data; name=a\n\n1\n--x--\n";
        assert_eq!(malformed(body.as_bytes(), "x"), "bad delimiter line");
    }

    #[test]
    fn broken_parts_are_malformed() {
        for (part, why) in [
            ("\r\n1", "part without content-disposition"),
            ("X-Other: y\r\n\r\n1", "part without content-disposition"),
            (
                "Content-Disposition: form-data; name=a",
                "no blank line after part headers",
            ),
            ("Content-Disposition: inline; name=a\r\n\r\n1", "part is not form-data"),
            ("Content-Disposition: form-data\r\n\r\n1", "part without name"),
            (
                "Content-Disposition: form-data; filename=a\r\n\r\n1",
                "part without name",
            ),
            (
                "Content-Disposition: form-data; name=a; name=b\r\n\r\n1",
                "repeated name parameter",
            ),
            (
                "Content-Disposition: form-data; name=\"a\r\n\r\n1",
                "unterminated quoted string",
            ),
            (
                "Content-Disposition: form-data; name=\"a\\\"\r\n\r\n1",
                "unterminated quoted string",
            ),
            (
                "Content-Disposition: form-data; name\r\n\r\n1",
                "bad header parameter",
            ),
            (
                "Content-Disposition: form-data; name=\"a\"b\r\n\r\n1",
                "bad header parameter",
            ),
            ("Content-Disposition\r\n\r\n1", "part header without colon"),
            (
                "Content-Disposition: form-data;\r\n name=a\r\n\r\n1",
                "folded part header",
            ),
            (
                "Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\n1",
                "repeated content-disposition",
            ),
        ] {
            let body = format!("--x\r\n{part}\r\n--x--\r\n");
            assert_eq!(malformed(body.as_bytes(), "x"), why, "{part:?}");
        }
    }

    #[test]
    fn part_headers_have_a_size_limit() {
        let pad = "a".repeat(MAX_HEADER_BYTES);
        let body = format!(
            "--x\r\nX-Pad: {pad}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"
        );
        assert_eq!(malformed(body.as_bytes(), "x"), "part headers too long");
        let pad = "a".repeat(MAX_HEADER_BYTES - 100);
        let body = format!(
            "--x\r\nX-Pad: {pad}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"
        );
        assert_eq!(query(body.as_bytes(), "x"), Ok(("a=1".into(), 0)));
    }

    #[test]
    fn invalid_boundary_argument_is_malformed() {
        let body = chromium_body();
        for bad in [&b""[..], b"a ", &[b'a'; 71], b"a\"b"] {
            let mut out = Vec::new();
            assert_eq!(
                to_query(&body, bad, 256, &mut out),
                Err(BodyError::Malformed("invalid boundary"))
            );
        }
    }

    #[test]
    fn many_parts_stay_linear() {
        let parts: Vec<(String, Vec<u8>)> = (0..5000)
            .map(|i| (format!("p{i}"), vec![b'v'; 8]))
            .collect();
        let refs: Vec<(&str, &[u8], bool)> = parts
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice(), false))
            .collect();
        let body = form(CHROMIUM, &refs);
        let t = std::time::Instant::now();
        let mut out = Vec::new();
        to_query(&body, CHROMIUM.as_bytes(), 10_000, &mut out).unwrap();
        assert!(
            t.elapsed() < std::time::Duration::from_millis(50),
            "{:?}",
            t.elapsed()
        );
    }

    /// A browser-like boundary that no generated value contains.
    const PROP_BOUNDARY: &str = "----WebKitFormBoundaryPr0pT3st";

    /// Quotes a name as Go's mime/multipart does: `\` and `"` backslash-escaped.
    fn quote(name: &str) -> String {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }

    proptest! {
        #[test]
        fn fields_round_trip_through_the_flat_decoder(
            fields in proptest::collection::vec(
                ("[^\r\n]{0,12}", any::<String>(), proptest::bool::weighted(0.2)),
                0..12,
            ),
        ) {
            let quoted: Vec<String> = fields.iter().map(|(n, _, _)| quote(n)).collect();
            let parts: Vec<(&str, &[u8], bool)> = fields
                .iter()
                .zip(&quoted)
                .map(|((_, v, file), q)| (q.as_str(), v.as_bytes(), *file))
                .collect();
            let body = form(PROP_BOUNDARY, &parts);
            let mut out = Vec::new();
            let skipped = to_query(&body, PROP_BOUNDARY.as_bytes(), 64, &mut out).unwrap();
            let want: Vec<(String, String)> = fields
                .iter()
                .filter(|(_, _, file)| !file)
                .map(|(n, v, _)| (n.clone(), v.clone()))
                .collect();
            prop_assert_eq!(flat_pairs(&out), want);
            prop_assert_eq!(skipped as usize, fields.iter().filter(|f| f.2).count());
        }

        #[test]
        fn random_bytes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            ct in proptest::collection::vec(any::<u8>(), 0..80),
            max_params in 0usize..8,
        ) {
            let _ = boundary(&ct);
            let mut out = b"q&".to_vec();
            match to_query(&body, b"x", max_params, &mut out) {
                Ok(_) => {
                    flat_pairs(&out);
                }
                Err(_) => prop_assert_eq!(&out, b"q&"),
            }
        }

        #[test]
        fn mangled_forms_never_panic(cut in 0usize..400, flip in 0usize..400, byte: u8) {
            let mut body = chromium_body();
            if let Some(c) = body.get_mut(flip) {
                *c = byte;
            }
            body.truncate(cut);
            let mut out = Vec::new();
            let _ = to_query(&body, CHROMIUM.as_bytes(), 8, &mut out);
        }
    }
}
