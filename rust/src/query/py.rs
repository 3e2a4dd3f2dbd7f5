//! Python binding of the query encoder: `encode_query` and the `MalformedQuery` exception.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{encode_query_into, Limits, Mode, QueryError};

create_exception!(
    _beacon,
    MalformedQuery,
    PyValueError,
    "The query string is malformed or over a limit."
);

/// The Python exception for `err`; other modules (the request handler) raise it too.
pub fn malformed(err: &QueryError) -> PyErr {
    MalformedQuery::new_err(err.to_string())
}

/// `encode_query(query, mode, max_bytes, max_params, max_depth)`: the JSON object for
/// `query`, as bytes. `beacon.encode_query` wraps it with the config's default limits.
#[pyfunction]
fn encode_query<'py>(
    py: Python<'py>,
    query: &[u8],
    mode: &str,
    max_bytes: usize,
    max_params: usize,
    max_depth: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let mode = Mode::parse(mode)
        .ok_or_else(|| PyValueError::new_err(format!("unknown query mode {mode:?}")))?;
    let limits = Limits {
        max_bytes,
        max_params,
        max_depth,
    };
    let mut out = Vec::with_capacity(query.len() + 16);
    encode_query_into(query, mode, &limits, &mut out, |_, _| {}).map_err(|e| malformed(&e))?;
    Ok(PyBytes::new(py, &out))
}

/// Registers `MalformedQuery` and `encode_query` on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MalformedQuery", m.py().get_type::<MalformedQuery>())?;
    m.add_function(wrap_pyfunction!(encode_query, m)?)?;
    Ok(())
}
