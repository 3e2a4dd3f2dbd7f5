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

/// `data` as one request, if it is exactly one and plainly framed.
pub fn scan<'a>(data: &'a [u8], limits: &RawLimits) -> Option<Request<'a>> {
    let line_end = find_crlf(data, 0)?;
    let (method, target) = request_line(&data[..line_end])?;
    if target.len() > limits.target_bytes {
        return None;
    }
    let mut headers = Headers::default();
    let mut length: Option<usize> = None;
    let mut header_bytes = 0;
    let mut at = line_end + 2;
    loop {
        let end = find_crlf(data, at)?;
        if end == at {
            at += 2; // the blank line: the header block ends
            break;
        }
        let (name, value) = field(&data[at..end])?;
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
        at = end + 2;
    }
    let rest = &data[at..];
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

/// `name: value` with optional whitespace around the value; a folded line (starting
/// with whitespace) declines.
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if name.is_empty() || name[0] == b' ' || name[0] == b'\t' {
        return None;
    }
    let value = line[colon + 1..].trim_ascii();
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

fn digits(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The index of the next `\r\n` from `from`; a lone `\n` declines.
fn find_crlf(data: &[u8], from: usize) -> Option<usize> {
    let i = from + memchr::memchr(b'\n', data.get(from..)?)?;
    (i > from && data[i - 1] == b'\r').then_some(i - 1)
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
