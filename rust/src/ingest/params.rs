//! Where an event's parameters come from: the URL's query, and for a POST its body, read
//! by its `Content-Type` after undoing its `Content-Encoding` (`crate::body`).
//!
//! A urlencoded or text/plain body is a query string joined to the URL's query with `&`;
//! a multipart/form-data body is rewritten as one (`body::multipart::to_query`) and joined
//! the same way; a JSON object body (where the flavor takes JSON) replaces the query.

use super::request::Headers;
use crate::body::encoding::ContentEncoding;
use crate::body::{self, BodyError};
use crate::envelope::Params;

/// What a flavor and the limits allow a body.
#[derive(Clone, Copy, Debug)]
pub struct BodyRules {
    /// The flavor takes JSON object bodies.
    pub json_ok: bool,
    /// Bytes a body may have, raw and decoded (`limits.max_body_bytes`).
    pub max_bytes: usize,
    /// Multipart parts a body may have (`limits.max_params`).
    pub max_params: usize,
}

/// How a POST body is read, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyType<'a> {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `text/plain` (or no Content-Type): a JSON object where the flavor takes JSON and the
    /// body starts with `{`, else a query string.
    Text,
    /// `application/json`.
    Json,
    /// `multipart/form-data` with its boundary.
    Multipart(&'a [u8]),
}

fn body_type(content_type: Option<&[u8]>) -> Result<BodyType<'_>, BodyError> {
    // sendBeacon with a string sends text/plain; a client that sends nothing is read alike.
    let Some(ct) = content_type else {
        return Ok(BodyType::Text);
    };
    let mime = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if mime.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        Ok(BodyType::Form)
    } else if mime.eq_ignore_ascii_case(b"text/plain") {
        Ok(BodyType::Text)
    } else if mime.eq_ignore_ascii_case(b"application/json") {
        Ok(BodyType::Json)
    } else if mime.eq_ignore_ascii_case(b"multipart/form-data") {
        Ok(BodyType::Multipart(body::multipart::boundary(ct)?))
    } else {
        Err(BodyError::Unsupported)
    }
}

/// Reusable buffers for decoded bodies and joined queries.
#[derive(Default)]
pub struct BodyScratch {
    decoded: Vec<u8>,
    joined: Vec<u8>,
}

impl BodyScratch {
    /// `raw` with its Content-Encoding undone, at most `max_bytes` (a batch body).
    pub fn decode<'a>(
        &'a mut self,
        raw: &'a [u8],
        content_encoding: Option<&[u8]>,
        max_bytes: usize,
    ) -> Result<&'a [u8], BodyError> {
        let encoding = ContentEncoding::parse(content_encoding)?;
        decode(raw, encoding, max_bytes, &mut self.decoded)
    }
}

/// `raw` as it is, or decoded into `decoded` when it has a content coding.
fn decode<'a>(
    raw: &'a [u8],
    encoding: ContentEncoding,
    max_bytes: usize,
    decoded: &'a mut Vec<u8>,
) -> Result<&'a [u8], BodyError> {
    if encoding == ContentEncoding::Identity {
        return Ok(raw);
    }
    body::encoding::decode_into(raw, encoding, max_bytes, decoded)?;
    Ok(decoded)
}

/// A POST body's headers as far as reading it goes, checked before the body arrives
/// (`Expect: 100-continue`): an unknown coding or type, or a bad multipart boundary.
pub fn check_headers(
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
    json_ok: bool,
) -> Result<(), BodyError> {
    ContentEncoding::parse(content_encoding)?;
    match body_type(content_type)? {
        BodyType::Json if !json_ok => Err(BodyError::Unsupported),
        _ => Ok(()),
    }
}

/// What a body contributed: the parameters' source and the multipart file parts skipped.
pub struct FromBody<'a> {
    pub params: Params<'a>,
    pub files_skipped: u32,
}

/// The parameters of a request with `query` from its URL and `body` (None: no body).
pub fn select<'a>(
    query: &'a [u8],
    body: Option<&'a [u8]>,
    headers: &Headers<'a>,
    rules: BodyRules,
    scratch: &'a mut BodyScratch,
) -> Result<FromBody<'a>, BodyError> {
    let plain = |params| FromBody {
        params,
        files_skipped: 0,
    };
    let Some(raw) = body.filter(|b| !b.is_empty()) else {
        return Ok(plain(Params::Query(query)));
    };
    let encoding = ContentEncoding::parse(headers.content_encoding)?;
    let kind = body_type(headers.content_type)?;
    let BodyScratch { decoded, joined } = scratch;
    let body = decode(raw, encoding, rules.max_bytes, decoded)?;
    let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match kind {
        BodyType::Json if !rules.json_ok => Err(BodyError::Unsupported),
        BodyType::Json => Ok(plain(Params::Json(body))),
        BodyType::Text if rules.json_ok && looks_json => Ok(plain(Params::Json(body))),
        BodyType::Form | BodyType::Text if query.is_empty() => Ok(plain(Params::Query(body))),
        BodyType::Form | BodyType::Text => {
            join(query, joined);
            joined.extend_from_slice(body);
            Ok(plain(Params::Query(joined)))
        }
        BodyType::Multipart(boundary) => {
            join(query, joined);
            let files_skipped =
                body::multipart::to_query(body, boundary, rules.max_params, joined)?;
            if joined.last() == Some(&b'&') {
                joined.pop(); // no text fields: the URL's query alone
            }
            Ok(FromBody {
                params: Params::Query(joined),
                files_skipped,
            })
        }
    }
}

/// Starts `joined` with the URL's query and a separator, if there is a query.
fn join(query: &[u8], joined: &mut Vec<u8>) {
    joined.clear();
    if !query.is_empty() {
        joined.extend_from_slice(query);
        joined.push(b'&');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: BodyRules = BodyRules {
        json_ok: false,
        max_bytes: 100,
        max_params: 10,
    };

    fn typed(ctype: &[u8]) -> Headers<'_> {
        Headers {
            content_type: Some(ctype),
            ..Headers::default()
        }
    }

    fn query_of(r: Result<FromBody<'_>, BodyError>) -> Vec<u8> {
        match r.map(|f| f.params) {
            Ok(Params::Query(q)) => q.to_vec(),
            other => panic!("not a query: {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn text_and_form_bodies_join_the_query() {
        let mut s = BodyScratch::default();
        let text = typed(b"text/plain;charset=UTF-8");
        let r = select(b"a=1", Some(b"b=2"), &text, RULES, &mut s);
        assert_eq!(query_of(r), b"a=1&b=2");
        let form = typed(b"application/x-www-form-urlencoded");
        assert_eq!(
            query_of(select(b"", Some(b"b=2"), &form, RULES, &mut s)),
            b"b=2"
        );
        let r = select(b"a=1", None, &Headers::default(), RULES, &mut s);
        assert_eq!(query_of(r), b"a=1");
    }

    #[test]
    fn unknown_types_and_json_without_the_switch_are_unsupported() {
        let mut s = BodyScratch::default();
        for ct in [&b"image/png"[..], b"application/json"] {
            let r = select(b"", Some(b"{}"), &typed(ct), RULES, &mut s);
            assert_eq!(r.err(), Some(BodyError::Unsupported));
        }
        let json = Some(&b"application/json"[..]);
        assert_eq!(
            check_headers(json, None, false),
            Err(BodyError::Unsupported)
        );
        assert_eq!(check_headers(json, None, true), Ok(()));
        let compress = Some(&b"compress"[..]);
        assert_eq!(
            check_headers(None, compress, true),
            Err(BodyError::Unsupported)
        );
    }
}
