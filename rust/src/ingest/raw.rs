//! One request read straight from its bytes: the fast path of `python/beacon/http/
//! protocol.py`, for a read that holds exactly one complete request (what browsers and
//! SDKs send: they do not pipeline). httptools has already parsed and accepted these very
//! bytes (it stays the parser of record: framing, validation, limits); this scan only picks
//! out what `Ingest` reads, so the HTTP layer makes no Python call per header.
//!
//! Anything the scan is not sure of answers `None`, and the HTTP layer parses the read
//! again with httptools' header callbacks: a line not ending in CRLF, a folded header
//! line, `Transfer-Encoding`, a body whose length is not exactly `Content-Length`, bytes
//! after the request (pipelining), a header block or target over the limits (the full path
//! then answers 431/414/413 as it always does).

use super::request::{Headers, Method, Request};
use crate::marks::{blocks, ByteSet};

/// Limits the full path enforces while parsing; over them, the scan declines.
#[derive(Clone, Copy, Debug)]
pub struct RawLimits {
    /// Header names and values, summed (`limits.max_header_bytes`).
    pub header_bytes: usize,
    /// The request-target (`limits.max_query_bytes` + room for the path).
    pub target_bytes: usize,
    /// `Content-Length` (`limits.max_body_bytes`).
    pub body_bytes: usize,
}

/// `\n` and `:`: where a line ends, and where a header's name may.
struct LineMarks;

impl ByteSet for LineMarks {
    const FILLER: u8 = b'a';

    #[inline]
    fn contains(b: u8) -> bool {
        b == b'\n' || b == b':'
    }

    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline]
    fn mask16(chunk: &[u8; 16]) -> u32 {
        use crate::marks::sse2::{bits, eq, load, or};
        let v = load(chunk);
        bits(or(eq(v, b'\n'), eq(v, b':')))
    }
}

/// `data` as one request, if it is exactly one and plainly framed. The header block is
/// walked by its `\n` and `:` marks (crate::marks), not byte by byte: a browser's ~900
/// bytes of headers have ~40 of them (docs/performance.md, "The raw scan").
pub fn scan<'a>(data: &'a [u8], limits: &RawLimits) -> Option<Request<'a>> {
    // The request line is mostly its target (hundreds of bytes): memchr, then the marks.
    let nl = memchr::memchr(b'\n', data)?;
    let line_end = crlf(data, 0, nl)?;
    let (method, target) = request_line(&data[..line_end])?;
    if target.len() > limits.target_bytes {
        return None;
    }
    let mut headers = Headers::default();
    let mut length: Option<usize> = None;
    let mut header_bytes = 0;
    // The line being read starts at `at`; its first `:` so far is `colon`. `None` at the end
    // of the data: no blank line, so not a whole request.
    let (mut at, mut colon, mut body_at) = (nl + 1, None, None);
    'block: for (base, mut mask) in blocks::<LineMarks>(&data[at..]) {
        while mask != 0 {
            let m = nl + 1 + base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if data[m] == b':' {
                colon = colon.or(Some(m));
                continue;
            }
            let end = crlf(data, at, m)?;
            if end == at {
                body_at = Some(m + 1); // the blank line: the header block ends
                break 'block;
            }
            let (name, value) = field(data, at, colon?, end)?;
            header_bytes += name.len() + value.len();
            if header_bytes > limits.header_bytes {
                return None;
            }
            if !pick(&mut headers, name, value) {
                match name.len() {
                    14 if name.eq_ignore_ascii_case(b"content-length") => {
                        length = Some(digits(value)?);
                    }
                    17 if name.eq_ignore_ascii_case(b"transfer-encoding") => return None,
                    _ => {}
                }
            }
            (at, colon) = (m + 1, None);
        }
    }
    let rest = &data[body_at?..];
    let body = match length {
        Some(n) if n > limits.body_bytes || n != rest.len() => return None,
        Some(_) => Some(rest),
        None if rest.is_empty() => None,
        None => return None, // bytes after a request without a body: pipelining
    };
    Some(Request {
        method,
        target,
        headers,
        body,
        peer: None,
    })
}

/// `METHOD SP target SP HTTP/x.y`.
fn request_line(line: &[u8]) -> Option<(Method, &[u8])> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let rest = &line[sp + 1..];
    // The target is most of the line (a beacon's query is hundreds of bytes): memchr.
    let sp2 = memchr::memchr(b' ', rest)?;
    let method = match &line[..sp] {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    Some((method, &rest[..sp2]))
}

/// The header line `data[at..end]`, whose first `:` is at `colon`: `name: value` with
/// optional whitespace around the value; a folded line (starting with whitespace) declines.
fn field(data: &[u8], at: usize, colon: usize, end: usize) -> Option<(&[u8], &[u8])> {
    let name = &data[at..colon];
    if name.is_empty() || name[0] == b' ' || name[0] == b'\t' {
        return None;
    }
    let value = data[colon + 1..end].trim_ascii();
    Some((name, value))
}

/// Stores a header `Ingest` reads (the last of repeated ones, as the full path does);
/// false for any other header.
fn pick<'a>(h: &mut Headers<'a>, name: &[u8], value: &'a [u8]) -> bool {
    let slot = match name.len() {
        3 if name.eq_ignore_ascii_case(b"dnt") => &mut h.dnt,
        4 if name.eq_ignore_ascii_case(b"host") => &mut h.host,
        6 if name.eq_ignore_ascii_case(b"origin") => &mut h.origin,
        7 if name.eq_ignore_ascii_case(b"referer") => &mut h.referer,
        7 if name.eq_ignore_ascii_case(b"sec-gpc") => &mut h.gpc,
        10 if name.eq_ignore_ascii_case(b"user-agent") => &mut h.user_agent,
        12 if name.eq_ignore_ascii_case(b"content-type") => &mut h.content_type,
        15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => &mut h.forwarded_for,
        16 if name.eq_ignore_ascii_case(b"content-encoding") => &mut h.content_encoding,
        _ => return false,
    };
    *slot = Some(value);
    true
}

/// A `Content-Length`: 1 to 19 ASCII digits (no sign, so no overflow of a u64).
fn digits(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter()
        .try_fold(0u64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
        })
        .and_then(|n| usize::try_from(n).ok())
}

/// The line from `from` whose `\n` is at `nl`: where its `\r\n` starts. A lone `\n`
/// declines.
fn crlf(data: &[u8], from: usize, nl: usize) -> Option<usize> {
    (nl > from && data[nl - 1] == b'\r').then(|| nl - 1)
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
