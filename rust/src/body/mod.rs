//! POST bodies: undoing their content coding (`encoding`), turning a
//! `multipart/form-data` body into a query string the query encoders take (`multipart`),
//! and reading a batch's elements (`elements`).
//!
//! All work on a body the HTTP layer has already read whole and capped; none grows
//! memory past a caller-given limit, whatever the input. Free of pyo3, so `cargo test`
//! runs them.

pub mod elements;
pub mod encoding;
pub mod multipart;

use std::fmt;

/// Why a body cannot be used; the HTTP layer maps it to a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// 415: a Content-Encoding (or stacked codings) or a Content-Type we do not take.
    Unsupported,
    /// 413: the decoded body would exceed the limit.
    TooLarge { max: usize },
    /// 400: corrupt compressed data, broken multipart framing, bad boundary, too many parts.
    Malformed(&'static str),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Unsupported => f.write_str("unsupported content encoding or type"),
            BodyError::TooLarge { max } => write!(f, "decoded body exceeds {max} bytes"),
            BodyError::Malformed(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for BodyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_short_and_lowercase() {
        assert_eq!(
            BodyError::Unsupported.to_string(),
            "unsupported content encoding or type"
        );
        assert_eq!(
            BodyError::TooLarge { max: 65536 }.to_string(),
            "decoded body exceeds 65536 bytes"
        );
        assert_eq!(
            BodyError::Malformed("no closing delimiter").to_string(),
            "no closing delimiter"
        );
    }
}
