//! Python binding: time zone validation with the same database the stamps use.

use pyo3::prelude::*;

#[pyfunction]
fn is_valid_timezone(name: &str) -> bool {
    crate::clock::parse_tz(name).is_some()
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(is_valid_timezone, m)?)
}
