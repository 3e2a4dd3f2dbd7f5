//! Python binding of the TTL store: `beacon._beacon.TtlStore`.

use crate::ttl_store::TtlStore;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(module = "beacon._beacon", name = "TtlStore")]
pub struct PyTtlStore {
    inner: TtlStore,
}

#[pymethods]
impl PyTtlStore {
    #[new]
    #[pyo3(signature = (max_entries = 1_000_000))]
    fn new(max_entries: usize) -> Self {
        PyTtlStore {
            inner: TtlStore::new(max_entries),
        }
    }

    #[pyo3(signature = (key, now_ms = None))]
    fn get<'py>(
        &mut self,
        py: Python<'py>,
        key: &[u8],
        now_ms: Option<i64>,
    ) -> Option<Bound<'py, PyBytes>> {
        let now = now_ms.unwrap_or_else(crate::clock::now_ms);
        self.inner.get(key, now).map(|v| PyBytes::new(py, v))
    }

    #[pyo3(signature = (key, value, ttl_s, now_ms = None))]
    fn set(&mut self, key: &[u8], value: &[u8], ttl_s: f64, now_ms: Option<i64>) {
        let now = now_ms.unwrap_or_else(crate::clock::now_ms);
        self.inner.set(key, value, (ttl_s * 1000.0) as i64, now);
    }

    /// Seconds left for a live key, None when absent or expired.
    #[pyo3(signature = (key, now_ms = None))]
    fn ttl(&mut self, key: &[u8], now_ms: Option<i64>) -> Option<f64> {
        let now = now_ms.unwrap_or_else(crate::clock::now_ms);
        self.inner.ttl_ms(key, now).map(|ms| ms as f64 / 1000.0)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn evicted(&self) -> u64 {
        self.inner.evicted()
    }
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTtlStore>()
}
