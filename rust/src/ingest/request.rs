//! One request as the HTTP layer hands it over: the method, the raw target, the few
//! headers beacon reads, the body and the peer address.

/// The request methods beacon answers; anything else is 405.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Method {
    #[default]
    Get = 0,
    Head = 1,
    Post = 2,
    Options = 3,
    Other = 4,
}

impl Method {
    /// From the code the Python side passes (`METHODS` order).
    pub fn from_code(code: u8) -> Method {
        match code {
            0 => Method::Get,
            1 => Method::Head,
            2 => Method::Post,
            3 => Method::Options,
            _ => Method::Other,
        }
    }
}

/// Method names in code order: the HTTP layer maps the request method to its index.
pub const METHODS: [&str; 4] = ["GET", "HEAD", "POST", "OPTIONS"];

/// The headers beacon reads, in slot order: the HTTP layer keeps one value per slot (the
/// last one seen) and hands the slots over as a list. `Content-Length` and `Expect` are
/// read by the HTTP layer itself (body limit, `100 Continue`).
pub const HEADER_NAMES: [&str; 11] = [
    "Host",
    "User-Agent",
    "Referer",
    "X-Forwarded-For",
    "DNT",
    "Sec-GPC",
    "Origin",
    "Content-Type",
    "Content-Encoding",
    "Content-Length",
    "Expect",
];

/// The header values `Ingest` uses, by name (a `None` is an absent header).
#[derive(Clone, Copy, Debug, Default)]
pub struct Headers<'a> {
    pub host: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub forwarded_for: Option<&'a [u8]>,
    pub dnt: Option<&'a [u8]>,
    pub gpc: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub content_encoding: Option<&'a [u8]>,
}

impl<'a> Headers<'a> {
    /// From values in `HEADER_NAMES` order (missing trailing slots are absent). Values
    /// lose surrounding whitespace (RFC 9110 §5.5: it is not part of the value; llhttp
    /// keeps the trailing part).
    pub fn from_slots(get: impl Fn(usize) -> Option<&'a [u8]>) -> Headers<'a> {
        let get = |i| get(i).map(<[u8]>::trim_ascii);
        Headers {
            host: get(0),
            user_agent: get(1),
            referer: get(2),
            forwarded_for: get(3),
            dnt: get(4),
            gpc: get(5),
            origin: get(6),
            content_type: get(7),
            content_encoding: get(8),
        }
    }

    /// `DNT: 1` or `Sec-GPC: 1`.
    pub fn do_not_track(&self) -> bool {
        self.dnt == Some(b"1") || self.gpc == Some(b"1")
    }
}

/// One request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub method: Method,
    /// The request-target as sent: origin-form `/path?query` or absolute-form
    /// `http://host/path?query`.
    pub target: &'a [u8],
    pub headers: Headers<'a>,
    /// The POST body as received (before any content coding is undone).
    pub body: Option<&'a [u8]>,
    /// The TCP peer address, as text.
    pub peer: Option<&'a [u8]>,
}
