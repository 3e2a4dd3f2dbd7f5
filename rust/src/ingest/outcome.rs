//! What became of one request, and the answer the HTTP layer gives for it.

use super::batch::BatchAnswer;

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
    /// A batch of more than `limits.max_batch_events` events (413).
    BatchTooLarge = 12,
    /// A batch refused while a backend's spool is over its high-water mark (503).
    BatchBackpressure = 13,
}

pub const OUTCOMES: [&str; 14] = [
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
    "batch_too_large",
    "batch_backpressure",
];

/// Per-flavor counters that are not outcomes (a request has one outcome, and may add to
/// these): multipart file parts skipped; refused requests kept as bad rows, and those over
/// the bad rows' limits (README "Bad rows"); requests on a batch path (every outcome), the
/// events batches stored, and their elements dropped as duplicates.
pub const EXTRA_COUNTERS: [&str; 6] = [
    "multipart_file_skipped",
    "bad_rows_kept",
    "bad_rows_dropped",
    "batch_requests",
    "batch_events",
    "batch_duplicates",
];
pub const FILES_SKIPPED: usize = OUTCOMES.len();
pub const BAD_ROWS_KEPT: usize = OUTCOMES.len() + 1;
pub const BAD_ROWS_DROPPED: usize = OUTCOMES.len() + 2;
pub const BATCH_REQUESTS: usize = OUTCOMES.len() + 3;
pub const BATCH_EVENTS: usize = OUTCOMES.len() + 4;
pub const BATCH_DUPLICATES: usize = OUTCOMES.len() + 5;
/// One row of counters: the outcomes, then `EXTRA_COUNTERS`.
pub type CountRow = [u64; OUTCOMES.len() + EXTRA_COUNTERS.len()];

/// The answer to one request, packed for the Python side into one int (`code()`):
/// the status in the low 16 bits, then flags for the headers to add, then a batch
/// answer's body.
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
    /// A request on a batch path: the answer's JSON body.
    pub batch: Option<BatchAnswer>,
}

/// `Verdict::code()` flag bits, mirrored by `python/beacon/http/responses.py`.
pub const CODE_CORS: u64 = 1 << 16;
pub const CODE_PREFLIGHT: u64 = 1 << 17;
pub const CODE_HEAD: u64 = 1 << 18;
/// A batch answer: bits 20-51 hold its number + 1 (0: none), bits 52-59 which row of
/// `BATCH_ANSWERS` it is (`python/beacon/http/responses.py` writes the body).
pub const CODE_BATCH: u64 = 1 << 19;

impl Verdict {
    pub fn code(self) -> u64 {
        let mut code = u64::from(self.status);
        if self.cors {
            code |= CODE_CORS;
        }
        if self.preflight {
            code |= CODE_PREFLIGHT;
        }
        if self.head {
            code |= CODE_HEAD;
        }
        if let Some(b) = self.batch {
            let n = b.n.map_or(0, |n| u64::from(n.min(u32::MAX - 1)) + 1);
            code |= CODE_BATCH | n << 20 | (b.reason as u64) << 52;
        }
        code
    }
}
