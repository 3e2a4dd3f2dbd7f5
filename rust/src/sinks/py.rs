//! Python view of the sinks: the stats schema (`beacon._beacon.backend_stats()`, read by
//! python/beacon/admin/metrics.py), a backend's figures as a dict (`Ingest.stats()`,
//! `KafkaSink.stats()`), and the Kafka sink's class.

use super::backend::Backend;
use super::kafka::py::PyKafkaSink;
use super::stats::{Snapshot, Value, STATS};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A backend's figures, keyed as the schema says.
pub fn backend_dict<'py>(py: Python<'py>, b: &Backend) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (stat, value) in Snapshot::of(b).rows(b.name) {
        match value {
            Value::Count(n) => d.set_item(stat.key, n)?,
            Value::Seconds(s) => d.set_item(stat.key, (s * 1000.0).round() / 1000.0)?,
            Value::Flag(f) => d.set_item(stat.key, f)?,
        }
    }
    Ok(d)
}

/// The schema: `(key, metric, kind, help, only)` per row, in `/stats` order; `only` is the
/// one backend that reports it, None for every backend.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn backend_stats() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    STATS
        .iter()
        .map(|s| (s.key, s.metric, s.kind.name(), s.help, s.only))
        .collect()
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(backend_stats, m)?)?;
    m.add_class::<PyKafkaSink>()
}
