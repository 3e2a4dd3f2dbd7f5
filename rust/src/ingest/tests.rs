use super::*;
use crate::clock::{parse_tz, Stamper};
use crate::cors::Origins;

fn ingest(opts: FlavorOptions) -> Ingest {
    let f = Flavor::new("site", Stamper::new(parse_tz("UTC").unwrap()), opts);
    let mut hosts = HostMap::new(None);
    hosts.insert("site.example", 0);
    let limits = Limits {
        max_bytes: 16,
        ..Limits::default()
    };
    let mut i = Ingest::new(vec![f], hosts, vec!["/track".into()], limits, 64);
    i.trusted_proxies = vec![Cidr::parse("10.0.0.0/8").unwrap()];
    i
}

fn with_origins() -> Ingest {
    ingest(FlavorOptions {
        origins: Origins::new(&["https://shop.example"]),
        ..Default::default()
    })
}

fn get(target: &[u8]) -> Request<'_> {
    Request {
        target,
        headers: Headers {
            host: Some(b"site.example"),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn post<'a>(ctype: &'a [u8], body: &'a [u8]) -> Request<'a> {
    Request {
        method: Method::Post,
        body: Some(body),
        headers: Headers {
            content_type: Some(ctype),
            ..get(b"").headers
        },
        ..get(b"/track")
    }
}

fn from<'a>(origin: &'a [u8], req: Request<'a>) -> Request<'a> {
    Request {
        headers: Headers {
            origin: Some(origin),
            ..req.headers
        },
        ..req
    }
}

fn status(i: &mut Ingest, req: &Request<'_>) -> u16 {
    i.handle(req).status
}

#[test]
fn outcomes_are_counted_per_flavor() {
    let mut i = ingest(FlavorOptions::default());
    assert_eq!(status(&mut i, &get(b"/track?a=1")), 200);
    assert_eq!(status(&mut i, &get(b"/track")), 200);
    assert_eq!(status(&mut i, &get(b"/other?a=1")), 404);
    let mut evil = get(b"/track?a=1");
    evil.headers.host = Some(b"evil.example");
    assert_eq!(i.handle(&evil).outcome, Outcome::UnknownHost);
    assert_eq!(status(&mut i, &get(b"/track?a=01234567890123456789")), 414);
    // The 404 is the flavor's (its Host matched); the unknown host has no flavor.
    assert_eq!(i.counts()[0][..4], [2, 0, 1, 1]);
    assert_eq!(i.counts()[1][..5], [0, 0, 0, 0, 1]);
}

#[test]
fn do_not_track_is_honoured_only_where_configured() {
    let mut dnt = get(b"/track?a=1");
    dnt.headers.dnt = Some(b"1");
    let v = ingest(FlavorOptions::default()).handle(&dnt);
    assert_eq!(v.outcome, Outcome::Accepted);
    let mut i = ingest(FlavorOptions {
        honor_dnt: true,
        ..Default::default()
    });
    assert_eq!(i.handle(&dnt), verdict(Outcome::DoNotTrack, 200, false));
}

#[test]
fn json_bodies_need_the_flavor_switch() {
    let req = post(b"application/json", b"{\"a\":1}");
    let v = ingest(FlavorOptions::default()).handle(&req);
    assert_eq!((v.outcome, v.status), (Outcome::UnsupportedMediaType, 415));
    let mut i = ingest(FlavorOptions {
        json_bodies: true,
        ..Default::default()
    });
    assert_eq!(i.handle(&req), verdict(Outcome::Accepted, 204, false));
}

#[test]
fn a_body_is_limited_by_the_body_limit_not_the_query_limit() {
    let mut i = ingest(FlavorOptions::default());
    // Longer than the 16-byte query limit, within the 64-byte body limit.
    let v = i.handle(&post(b"text/plain", b"a=0123456789&b=0123456789"));
    assert_eq!(v.status, 204);
    let v = i.handle(&post(b"image/png", b"x"));
    assert_eq!(v.status, 415);
}

#[test]
fn cors_is_decided_by_this_requests_flavor() {
    let mut i = with_origins();
    let v = i.handle(&from(b"https://shop.example", get(b"/track?a=1")));
    assert_eq!(v, verdict(Outcome::Accepted, 200, true));
    assert_eq!(v.code(), 200 | CODE_CORS);
    // A refusal carries the headers too, and an unknown origin never does.
    let v = i.handle(&from(b"https://shop.example", post(b"image/png", b"x")));
    assert_eq!((v.status, v.cors), (415, true));
    let v = i.handle(&from(b"https://evil.example", get(b"/track?a=1")));
    assert_eq!((v.status, v.cors), (200, false));
    // A 404 for the flavor's Host carries them; an unknown Host (no flavor) never does.
    let v = i.handle(&from(b"https://shop.example", get(b"/nope")));
    assert_eq!((v.status, v.cors), (404, true));
    let mut evil = from(b"https://shop.example", get(b"/track?a=1"));
    evil.headers.host = Some(b"evil.example");
    assert_eq!(i.handle(&evil), verdict(Outcome::UnknownHost, 400, false));
}

#[test]
fn preflight_and_other_methods() {
    let mut i = with_origins();
    let options = |origin| {
        from(
            origin,
            Request {
                method: Method::Options,
                ..get(b"/track")
            },
        )
    };
    let v = i.handle(&options(b"https://shop.example"));
    assert_eq!(v.code(), 204 | CODE_CORS | CODE_PREFLIGHT);
    assert_eq!(v.outcome, Outcome::Preflight);
    assert_eq!(i.handle(&options(b"https://evil.example")).status, 403);
    let put = Request {
        method: Method::Other,
        ..get(b"/track?a=1")
    };
    assert_eq!(i.handle(&put), verdict(Outcome::Method, 405, false));
}

#[test]
fn absolute_form_routes_on_its_authority() {
    let mut i = ingest(FlavorOptions::default());
    let mut req = get(b"http://site.example/track?a=1");
    req.headers.host = Some(b"other.example");
    assert_eq!(status(&mut i, &req), 200);
    let req = get(b"http://other.example/track?a=1");
    assert_eq!(i.handle(&req).outcome, Outcome::UnknownHost);
}

#[test]
fn expect_is_refused_from_the_headers_alone() {
    let mut i = ingest(FlavorOptions::default());
    assert_eq!(i.check_expect(&post(b"text/plain", b"")), None);
    let v = i.check_expect(&post(b"image/png", b"")).unwrap();
    assert_eq!(v.status, 415);
    let mut gz = post(b"text/plain", b"");
    gz.headers.content_encoding = Some(b"compress");
    assert_eq!(i.check_expect(&gz).unwrap().status, 415);
    assert_eq!(i.check_expect(&get(b"/nope")).unwrap().status, 404);
    // Counted once, as the final answer.
    assert_eq!(i.counts()[0][Outcome::UnsupportedMediaType as usize], 2);
}
