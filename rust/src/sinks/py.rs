//! Python view of the sinks: the stats schema (`beacon._beacon.backend_stats()`, read by
//! python/beacon/admin/metrics.py), a backend's figures as a dict (`Ingest.stats()`,
//! `KafkaSink.stats()`), and the Kafka sink's class.

use super::backend::Backend;
use super::kafka::py::PyKafkaSink;
use super::per_flavor::MAX_FLAVORS;
use super::stats::{flavor_rows, flavor_snapshots, Snapshot, Stat, Value, FLAVOR_STATS, STATS};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A backend's figures, keyed as the schema says, its flavors' under `flavors`.
pub fn backend_dict<'py>(py: Python<'py>, b: &Backend) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (stat, value) in Snapshot::of(b).rows(b.name) {
        set(&d, stat.key, value)?;
    }
    let flavors = PyDict::new(py);
    for (name, f) in flavor_snapshots(b) {
        let row = PyDict::new(py);
        for (stat, value) in flavor_rows(&f, b.name) {
            set(&row, stat.key, value)?;
        }
        flavors.set_item(name, row)?;
    }
    d.set_item("flavors", flavors)?;
    Ok(d)
}

fn set(d: &Bound<'_, PyDict>, key: &str, value: Value) -> PyResult<()> {
    match value {
        Value::Count(n) => d.set_item(key, n),
        Value::Seconds(s) => d.set_item(key, (s * 1000.0).round() / 1000.0),
        Value::Flag(f) => d.set_item(key, f),
    }
}

type StatRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

fn schema_rows<S>(stats: &'static [Stat<S>]) -> Vec<StatRow> {
    stats
        .iter()
        .map(|s| (s.key, s.metric, s.kind.name(), s.help, s.only))
        .collect()
}

/// The schema: `(key, metric, kind, help, only)` per row, in `/stats` order; `only` is the
/// one backend that reports it, None for every backend.
#[pyfunction]
fn backend_stats() -> Vec<StatRow> {
    schema_rows(STATS)
}

/// The per-flavor rows, the same shape (`backends.<name>.flavors.<flavor>` in `/stats`).
#[pyfunction]
fn backend_flavor_stats() -> Vec<StatRow> {
    schema_rows(FLAVOR_STATS)
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(backend_stats, m)?)?;
    m.add_function(wrap_pyfunction!(backend_flavor_stats, m)?)?;
    m.add("MAX_FLAVORS", MAX_FLAVORS)?;
    m.add_class::<PyKafkaSink>()
}
