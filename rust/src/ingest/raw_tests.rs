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
