//! The bad row: one refused request as one JSON line (README "Bad rows"):
//! `{"ts":..,"id":..,"reason":..,"status":..[,"flavor":..],"request":{"method":..,
//! "target":..[,"host":..],"headers":{..}[,"body_b64":..][,"truncated":[..]]}}`.
//! `ts` and `id` sit where they sit in an event (`envelope::ID_AT`), so the Kafka sink
//! gives bad rows the header `id` as it does events. Text that is not UTF-8 is kept with
//! U+FFFD in place of the bad bytes; the body is kept byte for byte (base64).

use crate::clock::{Day, Stamper};
use crate::event_id::write_id;
use crate::ingest::{Headers, Method, Request, HEADER_NAMES, METHODS};
use crate::json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use uuid::Uuid;

/// How much of a request a row keeps (`limits.max_target_bytes`, `limits.max_header_bytes`
/// for Host and the headers together, `limits.max_body_bytes`); past them a part is cut and
/// named in `truncated`.
#[derive(Clone, Copy, Debug)]
pub struct RowLimits {
    pub target: usize,
    pub headers: usize,
    pub body: usize,
}

/// Why the request was refused, and for which flavor.
#[derive(Clone, Copy, Debug)]
pub struct Refused<'a> {
    /// The refusal's counter name (`OUTCOMES`).
    pub reason: &'a str,
    pub status: u16,
    pub flavor: Option<&'a str>,
}

/// The headers a row keeps besides Host: those `Ingest` reads, named as in `HEADER_NAMES`.
fn kept_headers<'a>(h: &Headers<'a>) -> [(&'static str, Option<&'a [u8]>); 8] {
    [
        (HEADER_NAMES[1], h.user_agent),
        (HEADER_NAMES[2], h.referer),
        (HEADER_NAMES[3], h.forwarded_for),
        (HEADER_NAMES[4], h.dnt),
        (HEADER_NAMES[5], h.gpc),
        (HEADER_NAMES[6], h.origin),
        (HEADER_NAMES[7], h.content_type),
        (HEADER_NAMES[8], h.content_encoding),
    ]
}

/// Appends the row of `req`, received at `ts_ms` (stamped by `utc`), and returns its UTC day.
pub fn write_row(
    out: &mut Vec<u8>,
    utc: &mut Stamper,
    ts_ms: i64,
    id: &Uuid,
    why: &Refused<'_>,
    req: &Request<'_>,
    limits: &RowLimits,
) -> Day {
    out.extend_from_slice(b"{\"ts\":\"");
    let day = utc.stamp(ts_ms, out);
    out.extend_from_slice(b"\",\"id\":\"");
    write_id(id, out);
    out.extend_from_slice(b"\",\"reason\":");
    json::write_str(out, why.reason);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(why.status).as_bytes());
    if let Some(f) = why.flavor {
        out.extend_from_slice(b",\"flavor\":");
        json::write_str(out, f);
    }
    out.extend_from_slice(b",\"request\":{\"method\":");
    match req.method {
        Method::Other => out.extend_from_slice(b"null"),
        m => json::write_str(out, METHODS[m as usize]),
    }
    let mut truncated: Vec<&str> = Vec::new();
    out.extend_from_slice(b",\"target\":");
    if text(out, req.target, limits.target) {
        truncated.push("target");
    }
    let mut room = limits.headers;
    if let Some(host) = req.headers.host {
        out.extend_from_slice(b",\"host\":");
        if bounded_text(out, "Host", host, &mut room) {
            truncated.push("host");
        }
    }
    out.extend_from_slice(b",\"headers\":{");
    let mut first = true;
    let mut cut = false;
    for (name, value) in kept_headers(&req.headers) {
        let Some(value) = value else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        json::write_str(out, name);
        out.push(b':');
        cut |= bounded_text(out, name, value, &mut room);
    }
    out.push(b'}');
    if cut {
        truncated.push("headers");
    }
    if let Some(body) = req.body {
        out.extend_from_slice(b",\"body_b64\":\"");
        let kept = &body[..body.len().min(limits.body)];
        let start = out.len();
        out.resize(
            start + base64::encoded_len(kept.len(), true).unwrap_or(0),
            0,
        );
        let n = B64.encode_slice(kept, &mut out[start..]).unwrap_or(0);
        out.truncate(start + n);
        out.push(b'"');
        if kept.len() < body.len() {
            truncated.push("body");
        }
    }
    if !truncated.is_empty() {
        out.extend_from_slice(b",\"truncated\":[");
        for (i, part) in truncated.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, part);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}\n");
    day
}

/// Writes at most `max` bytes of `bytes` as a JSON string; true when it cut some.
fn text(out: &mut Vec<u8>, bytes: &[u8], max: usize) -> bool {
    let kept = &bytes[..bytes.len().min(max)];
    // `from_utf8` first: its check is far faster than the lossy conversion's walk.
    match std::str::from_utf8(kept) {
        Ok(s) => json::write_str(out, s),
        Err(_) => json::write_str(out, &String::from_utf8_lossy(kept)),
    }
    kept.len() < bytes.len()
}

/// A header value within what is left of the header budget (its name counts, as in
/// `limits.max_header_bytes`); true when it cut some.
fn bounded_text(out: &mut Vec<u8>, name: &str, value: &[u8], room: &mut usize) -> bool {
    let max = room.saturating_sub(name.len());
    let cut = text(out, value, max);
    *room = room.saturating_sub(name.len() + value.len().min(max));
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_tz;
    use crate::envelope::event_id;
    use serde_json::{json, Value};

    const TS: i64 = 1_795_508_102_123; // 2026-11-24T08:15:02.123Z
    const WIDE: RowLimits = RowLimits {
        target: 1024,
        headers: 1024,
        body: 1024,
    };

    fn row(why: &Refused<'_>, req: &Request<'_>, limits: &RowLimits) -> (Vec<u8>, Day) {
        let mut utc = Stamper::new(parse_tz("UTC").unwrap());
        let mut out = Vec::new();
        let id = crate::event_id::v7(TS, 42);
        let day = write_row(&mut out, &mut utc, TS, &id, why, req, limits);
        (out, day)
    }

    fn parsed(line: &[u8]) -> Value {
        assert!(line.ends_with(b"\n") && !line[..line.len() - 1].contains(&b'\n'));
        serde_json::from_slice(line).unwrap()
    }

    const MISSING: Refused<'static> = Refused {
        reason: "missing_param",
        status: 400,
        flavor: Some("shop"),
    };

    #[test]
    fn a_refused_post_with_every_field() {
        let req = Request {
            method: Method::Post,
            target: b"/track?ev=view",
            headers: Headers {
                host: Some(b"shop.example"),
                user_agent: Some(b"curl/8.5 \"quoted\""),
                content_type: Some(b"text/plain"),
                ..Headers::default()
            },
            body: Some(b"a=1&b=\x00\xff"),
            peer: Some(b"10.1.2.3"),
        };
        let (line, day) = row(&MISSING, &req, &WIDE);
        assert_eq!(day, Day(20261124));
        let v = parsed(&line);
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(
            v,
            json!({
                "ts": "2026-11-24T08:15:02.123+00:00",
                "id": id,
                "reason": "missing_param",
                "status": 400,
                "flavor": "shop",
                "request": {
                    "method": "POST",
                    "target": "/track?ev=view",
                    "host": "shop.example",
                    "headers": {"User-Agent": "curl/8.5 \"quoted\"", "Content-Type": "text/plain"},
                    "body_b64": "YT0xJmI9AP8=",
                }
            })
        );
        // The id where an event's is: the Kafka sink reads it from there for the header.
        assert_eq!(event_id(&line[..line.len() - 1]), Some(id.as_bytes()));
        assert_eq!(&id[..13], "01a20c9f-63eb");
    }

    #[test]
    fn no_flavor_no_host_no_body_and_an_unknown_method() {
        let req = Request {
            method: Method::Other,
            target: b"/track",
            ..Request::default()
        };
        let why = Refused {
            reason: "unknown_host",
            status: 400,
            flavor: None,
        };
        let v = parsed(&row(&why, &req, &WIDE).0);
        assert_eq!(v["reason"], "unknown_host");
        assert!(v.get("flavor").is_none());
        let r = &v["request"];
        assert_eq!(r["method"], Value::Null);
        assert_eq!(r["headers"], json!({}));
        assert!(r.get("host").is_none() && r.get("body_b64").is_none());
        assert!(r.get("truncated").is_none());
    }

    #[test]
    fn parts_over_the_limits_are_cut_and_named() {
        let long_ua = vec![b'u'; 100];
        let req = Request {
            method: Method::Post,
            target: b"/track?0123456789",
            headers: Headers {
                host: Some(b"shop.example"),
                user_agent: Some(&long_ua),
                referer: Some(b"https://r.example/"),
                ..Headers::default()
            },
            body: Some(b"0123456789"),
            ..Request::default()
        };
        let limits = RowLimits {
            target: 8,
            headers: 4 + 12 + 10 + 20,
            body: 3,
        };
        let v = parsed(&row(&MISSING, &req, &limits).0);
        let r = &v["request"];
        assert_eq!(r["target"], "/track?0");
        assert_eq!(r["host"], "shop.example");
        // Host takes 16 of the 46 bytes; User-Agent's name 10, its value the 20 left.
        assert_eq!(r["headers"]["User-Agent"], "u".repeat(20));
        assert_eq!(r["headers"]["Referer"], "");
        assert_eq!(r["body_b64"], "MDEy");
        assert_eq!(r["truncated"], json!(["target", "headers", "body"]));
    }

    #[test]
    fn text_that_is_not_utf8_is_kept_with_replacement_characters() {
        let req = Request {
            target: b"/track?q=\xe9t\xe9&c=\x01",
            ..Request::default()
        };
        let v = parsed(&row(&MISSING, &req, &WIDE).0);
        assert_eq!(v["request"]["target"], "/track?q=\u{fffd}t\u{fffd}&c=\u{1}");
    }
}
