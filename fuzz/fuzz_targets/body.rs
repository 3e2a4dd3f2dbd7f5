//! POST bodies (`beacon::body`): Content-Encoding parsing against a small model, decoding
//! under a limit (never past it, the same answer as under a larger limit, and a round trip
//! when the target compressed the body itself), and multipart parsing: the boundary taken
//! from the Content-Type is a valid one, and whatever `to_query` accepts is a query the
//! flat decoder takes, with a form built from fields giving those fields back.
//!
//! Input layout, so seeds can be written by hand (fuzz/corpus/body/seed-*):
//! - byte 0: bits 0-2 the coding (mod 5: identity, gzip, deflate, br, zstd); bit 3 "pack":
//!   compress the body with that coding first (deflate as zlib, or raw with bit 4; br is
//!   never packed, having no encoder here); bit 5 "fields": the body is `name\0value\0...`,
//!   built into a multipart form before packing;
//! - bytes 1-2: the decode limit, u16 little-endian; byte 3: `max_params`;
//! - the Content-Encoding value up to `\n`, the Content-Type up to `\n`, then the body.
#![no_main]

use beacon_fuzz::beacon;

use beacon::body::encoding::{decode_into, ContentEncoding};
use beacon::body::multipart::{boundary, to_query};
use beacon::body::BodyError;
use beacon::query::{encode_query_into, Limits, Mode};
use beacon_fuzz::check_json_object;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

const CODINGS: [ContentEncoding; 5] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Deflate,
    ContentEncoding::Brotli,
    ContentEncoding::Zstd,
];

/// The limit the small-limit answer is compared against.
const BIG: usize = 256 << 10;

/// The boundary of forms built from fields: no value that contains it is generated.
const FORM_BOUNDARY: &str = "----WebKitFormBoundaryFuzz0123456789";

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let [sel, lo, hi, max_params, rest @ ..] = data else {
        return;
    };
    let enc = CODINGS[usize::from(sel & 7) % CODINGS.len()];
    let (pack, raw_deflate, fields) = (sel & 8 != 0, sel & 16 != 0, sel & 32 != 0);
    let max = usize::from(u16::from_le_bytes([*lo, *hi]));
    let max_params = usize::from(*max_params);
    let (content_encoding, rest) = line(rest);
    let (content_type, body) = line(rest);

    check_parse(content_encoding);

    let built = fields.then(|| form(body));
    let plain = built.as_ref().map_or(body, |(form, _)| form.as_slice());
    let packed = if pack {
        compress(plain, enc, raw_deflate)
    } else {
        None
    };
    let wire = packed.as_deref().unwrap_or(plain);
    let decoded = check_decode(wire, enc, max);
    if packed.is_some() || enc == ContentEncoding::Identity {
        // We made `wire` from `plain`: it must come back, or be too large.
        match &decoded {
            Ok(out) => assert_eq!(out, plain, "round trip"),
            Err(e) => assert!(
                plain.len() > max && *e == BodyError::TooLarge { max },
                "{e:?} for a {}-byte body",
                plain.len()
            ),
        }
    }

    if let Ok(b) = boundary(content_type) {
        check_boundary(b, content_type);
        check_to_query(decoded.as_deref().unwrap_or(body), b, max_params);
    }
    if let Some((form, want)) = &built {
        check_built_form(form, want);
    }
}

/// Splits off the bytes before the first `\n` (all of `s` if there is none).
fn line(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b'\n') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// `ContentEncoding::parse` against a model of its rule.
fn check_parse(header: &[u8]) {
    let got = ContentEncoding::parse(Some(header));
    let mut codings = Vec::new();
    let mut known = true;
    for c in header.split(|&b| b == b',') {
        // RFC 9110 optional whitespace is SP and HTAB only.
        let ows = |b: &u8| *b == b' ' || *b == b'\t';
        let start = c.iter().position(|b| !ows(b)).unwrap_or(c.len());
        let end = c.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
        let c = c[start..end].to_ascii_lowercase();
        match c.as_slice() {
            b"" | b"identity" => {}
            b"gzip" | b"x-gzip" => codings.push(ContentEncoding::Gzip),
            b"deflate" => codings.push(ContentEncoding::Deflate),
            b"br" => codings.push(ContentEncoding::Brotli),
            b"zstd" => codings.push(ContentEncoding::Zstd),
            _ => known = false,
        }
    }
    let want = match (known, codings.as_slice()) {
        (true, []) => Ok(ContentEncoding::Identity),
        (true, [one]) => Ok(*one),
        _ => Err(BodyError::Unsupported),
    };
    assert_eq!(got, want, "parse({:?})", String::from_utf8_lossy(header));
    assert_eq!(ContentEncoding::parse(None), Ok(ContentEncoding::Identity));
}

/// Decodes under `max`: never past it, `out` empty on error, and the same answer as under
/// a larger limit (cut to `max`).
fn check_decode(wire: &[u8], enc: ContentEncoding, max: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = vec![b'?'; 3];
    let r = decode_into(wire, enc, max, &mut out);
    match &r {
        Ok(()) => assert!(out.len() <= max, "{} bytes past max {max}", out.len()),
        Err(e) => {
            assert!(out.is_empty(), "out not cleared on {e:?}");
            assert!(
                !matches!(e, BodyError::Unsupported),
                "decode_into: Unsupported"
            );
        }
    }
    if enc == ContentEncoding::Identity {
        let want = if wire.len() <= max {
            Ok(())
        } else {
            Err(BodyError::TooLarge { max })
        };
        assert_eq!(r, want, "identity");
    }
    let mut big = Vec::new();
    match (decode_into(wire, enc, BIG, &mut big), &r) {
        (Ok(()), _) if big.len() <= max => assert_eq!((&r, &out), (&Ok(()), &big), "{enc:?}"),
        (Ok(()) | Err(BodyError::TooLarge { .. }), _) => {
            assert_eq!(r, Err(BodyError::TooLarge { max }), "{enc:?}")
        }
        // The small limit may stop decoding before the corruption is reached.
        (Err(BodyError::Malformed(_)), r) => assert!(
            matches!(r, Err(BodyError::Malformed(_) | BodyError::TooLarge { .. })),
            "{enc:?}: {r:?}"
        ),
        (Err(BodyError::Unsupported), _) => panic!("decode_into: Unsupported"),
    }
    r.map(|()| out)
}

/// Compresses with the target's own encoders; `None` where it has none (identity, br).
fn compress(data: &[u8], enc: ContentEncoding, raw: bool) -> Option<Vec<u8>> {
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    let level = flate2::Compression::fast();
    Some(match enc {
        ContentEncoding::Gzip => {
            let mut e = GzEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentEncoding::Deflate if raw => {
            let mut e = DeflateEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentEncoding::Deflate => {
            let mut e = ZlibEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentEncoding::Zstd => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        ContentEncoding::Identity | ContentEncoding::Brotli => return None,
    })
}

/// A boundary `boundary()` returns is RFC 2046's and taken from the header itself.
fn check_boundary(b: &[u8], content_type: &[u8]) {
    assert!((1..=70).contains(&b.len()), "boundary length {}", b.len());
    assert!(!b.ends_with(b" "), "boundary ends in a space");
    assert!(
        b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(c)),
        "boundary {b:?}"
    );
    let range = content_type.as_ptr_range();
    assert!(
        range.contains(&b.as_ptr()),
        "boundary not borrowed from the header"
    );
}

/// Whatever `to_query` accepts is `name=value` pieces of unreserved bytes and %XX escapes
/// that the flat decoder takes, no more than `max_params` parts in all; on error the
/// caller's bytes are untouched.
fn check_to_query(body: &[u8], b: &[u8], max_params: usize) {
    let mut q = b"src=1&".to_vec();
    match to_query(body, b, max_params, &mut q) {
        Ok(skipped) => {
            assert!(q.starts_with(b"src=1&"), "prefix overwritten");
            let fields = check_query_shape(&q[6..]);
            assert!(
                fields + skipped as usize <= max_params,
                "more parts than max_params"
            );
        }
        Err(e) => {
            assert_eq!(q, b"src=1&", "out changed on {e:?}");
            assert!(matches!(e, BodyError::Malformed(_)), "to_query: {e:?}");
        }
    }
}

/// Checks the pieces of `q` and that flat mode takes it; returns how many pieces.
fn check_query_shape(q: &[u8]) -> usize {
    if q.is_empty() {
        return 0;
    }
    let pieces: Vec<&[u8]> = q.split(|&c| c == b'&').collect();
    for p in &pieces {
        assert_eq!(p.iter().filter(|&&c| c == b'=').count(), 1, "piece {p:?}");
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'%' => {
                    let hex = p.get(i + 1..i + 3).expect("truncated %XX");
                    assert!(hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')));
                    i += 3;
                }
                c => {
                    assert!(c.is_ascii_alphanumeric() || b"-._~=".contains(&c), "{c:#x}");
                    i += 1;
                }
            }
        }
    }
    let limits = Limits {
        max_bytes: usize::MAX,
        max_params: usize::MAX,
        max_depth: 100,
    };
    let mut json = Vec::new();
    encode_query_into(q, Mode::Flat, &limits, &mut json, |_, _| {}).unwrap();
    check_json_object(&json, "flat of to_query");
    pieces.len()
}

/// Builds a Chromium-style form from `name\0value\0...` (names without CR or LF, quoted
/// Go-style; values without the boundary). Returns it and the pairs it holds.
fn form(spec: &[u8]) -> (Vec<u8>, Vec<(String, String)>) {
    let mut body = b"preamble\r\n".to_vec();
    let mut pairs = Vec::new();
    let mut it = spec.split(|&c| c == 0);
    while let (Some(name), Some(value)) = (it.next(), it.next()) {
        if name.contains(&b'\r') || name.contains(&b'\n') || contains(value, FORM_BOUNDARY) {
            continue;
        }
        let mut quoted = Vec::new();
        for &c in name {
            if c == b'"' || c == b'\\' {
                quoted.push(b'\\');
            }
            quoted.push(c);
        }
        body.extend_from_slice(format!("--{FORM_BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Disposition: form-data; name=\"");
        body.extend_from_slice(&quoted);
        body.extend_from_slice(b"\"\r\n\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
        let lossy = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
        pairs.push((lossy(name), lossy(value)));
    }
    body.extend_from_slice(format!("--{FORM_BOUNDARY}--\r\nepilogue").as_bytes());
    (body, pairs)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A built form gives back its pairs, in order, through the flat decoder.
fn check_built_form(form: &[u8], want: &[(String, String)]) {
    let ct = format!("multipart/form-data; boundary={FORM_BOUNDARY}");
    let b = boundary(ct.as_bytes()).unwrap();
    let mut q = Vec::new();
    let skipped = to_query(form, b, want.len(), &mut q)
        .unwrap_or_else(|e| panic!("built form refused: {e:?}"));
    assert_eq!(skipped, 0);
    let limits = Limits {
        max_bytes: usize::MAX,
        max_params: usize::MAX,
        max_depth: 100,
    };
    let mut got = Vec::new();
    encode_query_into(&q, Mode::Flat, &limits, &mut Vec::new(), |n, v| {
        got.push((n.to_owned(), v.unwrap_or_default().to_owned()))
    })
    .unwrap();
    assert_eq!(got, want, "built form pairs");
}
