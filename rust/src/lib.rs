//! beacon's native core. This file only wires the modules together; each concern lives
//! in its own module, free of pyo3, with a `py.rs` (or `*_py.rs`) that binds it.

pub mod json;
pub mod query;

#[cfg(feature = "python")]
mod python_module {
    use pyo3::prelude::*;

    #[pymodule]
    fn _beacon(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        crate::query::py::init_pymodule(m)?;
        Ok(())
    }
}
