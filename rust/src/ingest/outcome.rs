//! What became of one request, and the answer the HTTP layer gives for it.

/// The outcome of one request, counted per flavor. The names (`OUTCOMES`) are the keys of
/// `/stats` `requests` and the `outcome` label of `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    Accepted = 0,
    Malformed = 1,
    /// Query over `max_query_bytes` (414) or a body, raw or decoded, over `max_body_bytes`
    /// (413).
    TooLarge = 2,
    NotFound = 3,
    UnknownHost = 4,
    MissingParam = 5,
    Duplicate = 6,
    /// Dropped because the client asked not to be tracked (DNT / Sec-GPC).
    DoNotTrack = 7,
    /// A body type or content coding beacon does not read.
    UnsupportedMediaType = 8,
    /// A method other than GET, HEAD, POST and OPTIONS.
    Method = 9,
    /// A CORS preflight from an origin the flavor does not allow.
    CorsDenied = 10,
    /// A CORS preflight answered for an allowed origin.
    Preflight = 11,
}

pub const OUTCOMES: [&str; 12] = [
    "accepted",
    "malformed",
    "too_large",
    "not_found",
    "unknown_host",
    "missing_param",
    "duplicate",
    "do_not_track",
    "unsupported_media_type",
    "method",
    "cors_denied",
    "preflight",
];

/// Per-flavor counters that are not outcomes (a request has one outcome, and may add to
/// these): multipart file parts skipped; refused requests kept as bad rows, and those over
/// the bad rows' limits (README "Bad rows").
pub const EXTRA_COUNTERS: [&str; 3] = [
    "multipart_file_skipped",
    "bad_rows_kept",
    "bad_rows_dropped",
];
pub const FILES_SKIPPED: usize = OUTCOMES.len();
pub const BAD_ROWS_KEPT: usize = OUTCOMES.len() + 1;
pub const BAD_ROWS_DROPPED: usize = OUTCOMES.len() + 2;
/// One row of counters: the outcomes, then `EXTRA_COUNTERS`.
pub type CountRow = [u64; OUTCOMES.len() + EXTRA_COUNTERS.len()];

/// The answer to one request, packed for the Python side into one int (`code()`):
/// the status in the low 16 bits, then flags for the headers to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub status: u16,
    /// Echo the request's Origin (`Access-Control-Allow-Origin` + `-Credentials`).
    pub cors: bool,
    /// Add the preflight headers (`-Allow-Methods`, `-Allow-Headers`, `-Max-Age`).
    pub preflight: bool,
    /// A HEAD request: the answer without its body.
    pub head: bool,
}

/// `Verdict::code()` flag bits, mirrored by `python/beacon/http/responses.py`.
pub const CODE_CORS: u32 = 1 << 16;
pub const CODE_PREFLIGHT: u32 = 1 << 17;
pub const CODE_HEAD: u32 = 1 << 18;

impl Verdict {
    pub fn code(self) -> u32 {
        let mut code = u32::from(self.status);
        if self.cors {
            code |= CODE_CORS;
        }
        if self.preflight {
            code |= CODE_PREFLIGHT;
        }
        if self.head {
            code |= CODE_HEAD;
        }
        code
    }
}
