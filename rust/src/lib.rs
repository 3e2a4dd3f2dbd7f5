//! beacon's native core. This file only wires the modules together; each concern lives
//! in its own module, free of pyo3, with a `py.rs` (or `*_py.rs`) that binds it.

/// mimalloc: every event is allocated on the event loop thread and freed on a backend
/// thread; glibc malloc pays for that cross-thread free, mimalloc much less (`make bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod body;
pub mod clock;
#[cfg(feature = "python")]
mod config_py;
pub mod cors;
pub mod envelope;
pub mod event;
pub mod event_id;
pub mod flavor;
#[cfg(test)]
mod fuzz_regressions;
pub mod ingest;
#[cfg(feature = "python")]
mod ingest_py;
pub mod json;
pub mod marks;
pub mod privacy;
pub mod query;
pub mod ring;
pub mod sinks;
pub mod ttl_store;
#[cfg(feature = "python")]
mod ttl_store_py;
#[cfg(feature = "python")]
mod tz_py;

#[cfg(feature = "python")]
mod python_module {
    use pyo3::prelude::*;

    #[pymodule]
    fn _beacon(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("__git_sha__", env!("BEACON_GIT_SHA"))?;
        m.add(
            "__build_epoch__",
            env!("BEACON_BUILD_EPOCH").parse::<u64>().unwrap_or(0),
        )?;
        crate::query::py::init_pymodule(m)?;
        crate::ingest_py::init_pymodule(m)?;
        crate::tz_py::init_pymodule(m)?;
        crate::sinks::py::init_pymodule(m)?;
        crate::ttl_store_py::init_pymodule(m)?;
        Ok(())
    }
}
