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
#[path = "multipart_tests.rs"]
mod tests;
