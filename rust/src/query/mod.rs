//! Query string → JSON object, in the two modes of README.md ("Query string to JSON").
//!
//! `flat` is the WHATWG application/x-www-form-urlencoded parser with repeated names
//! collected into arrays; `rack` reproduces Rack 2.2's `parse_nested_query`.
//! This module is free of pyo3 so `cargo test` runs it; `py.rs` binds it.

pub mod flat;
mod percent;
#[cfg(feature = "python")]
pub mod py;
pub mod rack;

use std::fmt;

/// Which parser turns the query into JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Flat,
    Rack,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "flat" => Some(Mode::Flat),
            "rack" => Some(Mode::Rack),
            _ => None,
        }
    }
}

/// Limits past which a query is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Raw query bytes.
    pub max_bytes: usize,
    /// Number of non-empty `name[=value]` pieces.
    pub max_params: usize,
    /// `rack` only: bracket nesting depth (Rack 2.2's `param_depth_limit`: 100).
    pub max_depth: usize,
}

/// Rack's limits, for tests and fuzzing only: the server's come from the config, which owns
/// every default (python/beacon/config/schema.py).
#[cfg(any(test, fuzzing))]
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 8192,
            max_params: 256,
            max_depth: 100,
        }
    }
}

/// Why a query is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    TooLong {
        len: usize,
        max: usize,
    },
    TooManyParams {
        max: usize,
    },
    TooDeep {
        max: usize,
    },
    /// rack: an invalid `%` escape (Rack raises `ArgumentError: invalid %-encoding`).
    BadEscape,
    /// rack: a decoded name or value is not valid UTF-8 (Rails answers 400).
    InvalidUtf8,
    /// rack: `ParameterTypeError`, e.g. `a=1&a[b]=2`; the text names the key.
    TypeConflict(String),
    /// A JSON POST body that is not a JSON object.
    InvalidJson(&'static str),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::TooLong { len, max } => write!(f, "query is {len} bytes, limit {max}"),
            QueryError::TooManyParams { max } => write!(f, "more than {max} parameters"),
            QueryError::TooDeep { max } => write!(f, "nesting deeper than {max}"),
            QueryError::BadEscape => f.write_str("invalid %-encoding"),
            QueryError::InvalidUtf8 => f.write_str("invalid UTF-8"),
            QueryError::TypeConflict(msg) => f.write_str(msg),
            QueryError::InvalidJson(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for QueryError {}

/// Appends the JSON object for `query` to `out`. On error `out` may hold a partial
/// object; callers truncate it back.
///
/// `on_pair` sees every decoded `(name, value)` pair in order (value `None` for a
/// rack name without `=`); the envelope uses it for required parameters and the
/// Kafka key without decoding twice.
pub fn encode_query_into<F: FnMut(&str, Option<&str>)>(
    query: &[u8],
    mode: Mode,
    limits: &Limits,
    out: &mut Vec<u8>,
    on_pair: F,
) -> Result<(), QueryError> {
    if query.len() > limits.max_bytes {
        return Err(QueryError::TooLong {
            len: query.len(),
            max: limits.max_bytes,
        });
    }
    match mode {
        Mode::Flat => flat::encode_into(query, limits, out, on_pair),
        Mode::Rack => rack::encode_into(query, limits, out, on_pair),
    }
}

/// Convenience: the JSON object for `query` as a fresh vector.
pub fn encode_query(query: &[u8], mode: Mode, limits: &Limits) -> Result<Vec<u8>, QueryError> {
    let mut out = Vec::with_capacity(query.len() + 16);
    encode_query_into(query, mode, limits, &mut out, |_, _| {})?;
    Ok(out)
}
