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
    let body =
        format!("--x\r\nX-Pad: {pad}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--");
    assert_eq!(malformed(body.as_bytes(), "x"), "part headers too long");
    let pad = "a".repeat(MAX_HEADER_BYTES - 100);
    let body =
        format!("--x\r\nX-Pad: {pad}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--");
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
fn many_parts_are_all_read() {
    let parts: Vec<(String, Vec<u8>)> = (0..5000)
        .map(|i| (format!("p{i}"), vec![b'v'; 8]))
        .collect();
    let refs: Vec<(&str, &[u8], bool)> = parts
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice(), false))
        .collect();
    let body = form(CHROMIUM, &refs);
    let mut out = Vec::new();
    to_query(&body, CHROMIUM.as_bytes(), 10_000, &mut out).unwrap();
    // Every part, in order (its cost per part is `make bench`'s body group, not a clock here).
    let query = String::from_utf8(out).unwrap();
    let pairs: Vec<&str> = query.split('&').collect();
    assert_eq!(pairs.len(), 5000);
    assert_eq!((pairs[0], pairs[4999]), ("p0=vvvvvvvv", "p4999=vvvvvvvv"));
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
