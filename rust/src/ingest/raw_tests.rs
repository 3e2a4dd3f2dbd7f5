use super::*;

const LIMITS: RawLimits = RawLimits {
    header_bytes: 16384,
    target_bytes: 9216,
    body_bytes: 65536,
};

fn ok(data: &[u8]) -> Request<'_> {
    scan(data, &LIMITS).unwrap_or_else(|| panic!("declined: {:?}", String::from_utf8_lossy(data)))
}

#[test]
fn a_browser_pixel_gives_its_target_and_the_headers_ingest_reads() {
    let r = ok(
        b"GET /track?a=1 HTTP/1.1\r\nHost: t.example\r\nUser-Agent: UA/1\r\n\
        Accept: image/*\r\nReferer: https://p.example/\r\ncookie: x=1\r\nDNT: 1\r\n\r\n",
    );
    assert_eq!((r.method, r.target), (Method::Get, &b"/track?a=1"[..]));
    let h = r.headers;
    assert_eq!(h.host, Some(&b"t.example"[..]));
    assert_eq!(h.user_agent, Some(&b"UA/1"[..]));
    assert_eq!(h.referer, Some(&b"https://p.example/"[..]));
    assert!(h.do_not_track());
    assert_eq!(r.body, None);
}

#[test]
fn names_are_case_insensitive_values_trimmed_and_the_last_wins() {
    let r = ok(
        b"POST /t HTTP/1.1\r\nhOsT:  a  \r\nHost:\tb\r\norigin: https://o\r\n\
        content-type: text/plain\r\nContent-Length: 3\r\n\r\na=1",
    );
    assert_eq!(r.headers.host, Some(&b"b"[..]));
    assert_eq!(r.headers.origin, Some(&b"https://o"[..]));
    assert_eq!(r.headers.content_type, Some(&b"text/plain"[..]));
    assert_eq!((r.method, r.body), (Method::Post, Some(&b"a=1"[..])));
}

#[test]
fn methods() {
    for (m, want) in [
        (&b"HEAD"[..], Method::Head),
        (b"OPTIONS", Method::Options),
        (b"PUT", Method::Other),
    ] {
        let data = [m, &b" /t HTTP/1.1\r\nHost: a\r\n\r\n"[..]].concat();
        assert_eq!(ok(&data).method, want);
    }
}

#[test]
fn anything_unsure_declines() {
    for data in [
        &b"GET /t HTTP/1.1\r\nHost: a\r\n"[..],   // incomplete
        b"GET /t HTTP/1.1\nHost: a\n\n",          // bare LF
        b"GET /t HTTP/1.1\r\nX: a\r\n b\r\n\r\n", // folded line
        b"GET /t HTTP/1.1\r\n\r\nGET /u HTTP/1.1\r\n\r\n", // pipelined
        b"POST /t HTTP/1.1\r\nContent-Length: 4\r\n\r\na=1", // short body
        b"POST /t HTTP/1.1\r\nContent-Length: 2\r\n\r\na=1", // more than its body
        b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /t HTTP/1.1\r\nContent-Length: +3\r\n\r\na=1",
        b"GET /t HTTP/1.1\r\nNo colon\r\n\r\n",
    ] {
        assert!(
            scan(data, &LIMITS).is_none(),
            "{:?}",
            String::from_utf8_lossy(data)
        );
    }
}

#[test]
fn over_a_limit_declines_so_the_full_path_answers() {
    let tight = RawLimits {
        header_bytes: 8,
        target_bytes: 4,
        body_bytes: 2,
    };
    assert!(scan(b"GET /toolong HTTP/1.1\r\n\r\n", &tight).is_none());
    assert!(scan(b"GET /t HTTP/1.1\r\nHost: abcdefgh\r\n\r\n", &tight).is_none());
    assert!(scan(b"POST /t HTTP/1.1\r\nContent-Length: 3\r\n\r\na=1", &tight).is_none());
    assert!(scan(b"GET /t HTTP/1.1\r\nHost: a\r\n\r\n", &tight).is_some());
}

/// The scan as it was before the marks (crate::marks): byte by byte, a memchr per line.
fn reference<'a>(data: &'a [u8], limits: &RawLimits) -> Option<Request<'a>> {
    fn find_crlf(data: &[u8], from: usize) -> Option<usize> {
        let i = from + memchr::memchr(b'\n', data.get(from..)?)?;
        (i > from && data[i - 1] == b'\r').then(|| i - 1)
    }
    let line_end = find_crlf(data, 0)?;
    let (method, target) = request_line(&data[..line_end])?;
    if target.len() > limits.target_bytes {
        return None;
    }
    let (mut headers, mut length, mut header_bytes) = (Headers::default(), None, 0);
    let mut at = line_end + 2;
    loop {
        let end = find_crlf(data, at)?;
        if end == at {
            at += 2;
            break;
        }
        let colon = at + data[at..end].iter().position(|&b| b == b':')?;
        let (name, value) = field(data, at, colon, end)?;
        header_bytes += name.len() + value.len();
        if header_bytes > limits.header_bytes {
            return None;
        }
        if !pick(&mut headers, name, value) {
            match name.len() {
                14 if name.eq_ignore_ascii_case(b"content-length") => length = Some(digits(value)?),
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
        None => return None,
    };
    Some(Request {
        method,
        target,
        headers,
        body,
        peer: None,
    })
}

/// Requests made of the pieces that matter to the scan: colons, CR, LF, folds, the headers
/// it picks, bodies with and without a matching length.
fn requests() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop::sample::select(vec![
        &b"GET /t?a=1:2 HTTP/1.1\r\n"[..],
        b"POST /t HTTP/1.1\r\n",
        b"Host: a.example:80\r\n",
        b"origin: https://o.example\r\n",
        b"Referer: https://p.example/x?y=1\r\n",
        b"Content-Length: 3\r\n",
        b"X-Long: 0123456789abcdef0123456789abcdef\r\n",
        b"Content-Type: text/plain;charset=UTF-8\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b" folded\r\n",
        b"NoColon\r\n",
        b":\r\n",
        b"\n",
        b"\r\n",
        b"a=1",
        b"::",
    ]);
    prop::collection::vec(piece, 0..14).prop_map(|p| p.concat())
}

proptest::proptest! {
    #[test]
    fn the_marks_scan_reads_what_the_byte_scan_read(data in requests()) {
        let got = scan(&data, &LIMITS).map(|r| format!("{r:?}"));
        let want = reference(&data, &LIMITS).map(|r| format!("{r:?}"));
        proptest::prop_assert_eq!(got, want);
    }
}

#[test]
fn line_marks_are_newlines_and_colons() {
    crate::marks::assert_mask_is_contains::<LineMarks>();
}

#[test]
fn content_lengths_are_plain_digits() {
    for (v, want) in [
        (&b"0"[..], Some(0)),
        (b"007", Some(7)),
        (b"9999999999999999999", Some(9_999_999_999_999_999_999)),
        (b"12345678901234567890", None), // 20 digits
        (b"", None),
        (b"+3", None),
        (b"3a", None),
        (b" 3", None),
    ] {
        assert_eq!(digits(v), want, "{:?}", String::from_utf8_lossy(v));
    }
}
