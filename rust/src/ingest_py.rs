//! Python binding of the request path and its backends: `beacon._beacon.Ingest`.

use crate::config_py::Cfg;
use crate::ingest::{
    CountRow, Headers, Ingest, Method, Request, Slot, BAD_ROWS_FLAVOR, BATCH_ANSWERS, CODE_BATCH,
    CODE_CORS, CODE_HEAD, CODE_PREFLIGHT, EXTRA_COUNTERS, HEADER_NAMES, METHODS, OUTCOMES,
};
use crate::sinks::file::FileSink;
use crate::sinks::kafka::py::PyKafkaSink;
use crate::sinks::py::backend_dict;
use crate::sinks::Backend;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::sync::Arc;

/// `Ingest(cfg)` builds the request path from a `beacon.config.Config`; `start()` starts
/// its backends; then `request()` once per request.
#[pyclass(module = "beacon._beacon", name = "Ingest")]
pub struct PyIngest {
    ingest: Ingest,
    cfg: Cfg,
    started: bool,
    kafka: Option<Py<PyKafkaSink>>,
    file_sink: Option<FileSink>,
}

fn err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

impl PyIngest {
    /// Tells the backends every slot's flavor name and Kafka topic.
    fn name_slots(&self, py: Python<'_>) {
        let slots = self.ingest.slots();
        let names: Vec<String> = slots.iter().map(|s| s.name.clone()).collect();
        for b in &self.ingest.backends {
            b.set_flavors(&names);
        }
        if let Some(k) = &self.kafka {
            k.get()
                .set_topics(py, slots.iter().map(|s| s.topic.clone()).collect());
        }
    }

    fn running(&mut self) -> PyResult<&mut Ingest> {
        if self.started {
            Ok(&mut self.ingest)
        } else {
            Err(err("not started"))
        }
    }
}

#[pymethods]
impl PyIngest {
    #[new]
    fn new(cfg: Cfg) -> PyResult<Self> {
        let mut ingest = Ingest::configured(cfg.settings()?).map_err(PyValueError::new_err)?;
        // Bad rows have a slot of their own, also while they are off: an earlier run's
        // spool may still hold some (README "Bad rows").
        let bad_slot = ingest
            .add_slot(Slot {
                name: BAD_ROWS_FLAVOR.into(),
                topic: cfg.bad_rows.topic.clone(),
            })
            .map_err(PyValueError::new_err)?;
        ingest.bad_rows = cfg.bad_rows().map(|rows| rows.in_slot(bad_slot));
        Ok(PyIngest {
            ingest,
            cfg,
            started: false,
            kafka: None,
            file_sink: None,
        })
    }

    /// Swaps in the request-path settings of a new, validated config (SIGHUP): flavors,
    /// hosts, paths, limits, privacy switches, Kafka topics, for the next request. What
    /// needs a restart (listeners, directories, backends, ring capacity) is not read
    /// here; `beacon.runtime.reload` says so. Raises ValueError, changing nothing, when
    /// the config cannot be taken.
    fn reconfigure(&mut self, py: Python<'_>, cfg: Cfg) -> PyResult<()> {
        let settings = cfg.settings()?;
        self.ingest
            .reconfigure(settings)
            .map_err(PyValueError::new_err)?;
        // The backends learn the new slots before an event of one is offered: no request
        // runs until this returns (the event loop thread is the only one handling them).
        self.name_slots(py);
        Ok(())
    }

    /// The Kafka backend's sink, after `start()`; None when Kafka is off.
    fn kafka_sink(&self, py: Python<'_>) -> Option<Py<PyKafkaSink>> {
        self.kafka.as_ref().map(|k| k.clone_ref(py))
    }

    /// Starts the configured backends: their queues, spools and the file writer thread.
    fn start(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.started {
            return Err(err("already started"));
        }
        let cfg = &self.cfg;
        let names: Vec<String> = self.ingest.slots().iter().map(|s| s.name.clone()).collect();
        if cfg.file.enabled {
            let spool = cfg.spool_dir.join("file");
            let mut backend =
                Backend::new("file", cfg.ring_capacity, &spool, names.clone()).map_err(err)?;
            backend.spool_high_water = cfg.file.spool_high_water_bytes;
            let backend = Arc::new(backend);
            self.file_sink = Some(FileSink::start(backend.clone(), cfg.file_sink()).map_err(err)?);
            self.ingest.backends.push(backend);
        }
        if cfg.kafka.enabled {
            let spool = cfg.spool_dir.join("kafka");
            let mut backend =
                Backend::new("kafka", cfg.ring_capacity, &spool, names).map_err(err)?;
            backend.spool_high_water = cfg.kafka.spool_high_water_bytes;
            let backend = Arc::new(backend);
            self.kafka = Some(PyKafkaSink::create(py, backend.clone())?);
            self.ingest.backends.push(backend);
        }
        self.name_slots(py);
        self.started = true;
        Ok(())
    }

    /// One request: `method` an index into `METHODS` (4: any other), `target` as sent,
    /// `headers` the values of `HEADER_NAMES` in order (None: absent), `body` the POST
    /// body as received. Returns `Verdict::code()`: the status in the low 16 bits,
    /// `CODE_CORS` / `CODE_PREFLIGHT` for the headers to add, and with `CODE_BATCH` a batch
    /// answer's body (see `outcome.rs`). The hot path: positional arguments only.
    fn request(
        &mut self,
        method: u8,
        target: &[u8],
        headers: &Bound<'_, PyList>,
        body: Option<&[u8]>,
        peer: Option<&[u8]>,
    ) -> PyResult<u64> {
        let ingest = self.running()?;
        let slots = slots(headers);
        let req = request(method, target, &slots, body, peer);
        Ok(ingest.handle(&req).code())
    }

    /// The fast path, for a read that holds one whole request the HTTP parser accepted
    /// (see rust/src/ingest/raw.rs): the code as `request()` gives it, or -1 when the read
    /// needs the full parser. With `CODE_CORS`, bits 20-39 of the code are where the
    /// `Origin` value starts in `data` and bits 40-59 its length: the HTTP layer echoes it
    /// without reading the headers itself.
    fn request_raw(&mut self, data: &[u8], peer: Option<&[u8]>) -> PyResult<i64> {
        let ingest = self.running()?;
        let Some((v, origin)) = ingest.handle_raw(data, peer) else {
            return Ok(-1);
        };
        let span = match origin {
            // Past 2^20 bytes the span does not fit: the full parser answers instead (only
            // with limits configured far beyond the defaults).
            Some(o) if o.end >= 1 << 20 => return Ok(-1),
            Some(o) => ((o.len() as i64) << 40) | ((o.start as i64) << 20),
            None => 0,
        };
        // Never a batch answer (those take the full parser): the code fits in 20 bits.
        Ok(v.code() as i64 | span)
    }

    /// A GET of `target` with only a Host header; returns the status (tests, tools).
    #[pyo3(signature = (target, host = None))]
    fn handle(&mut self, target: &[u8], host: Option<&[u8]>) -> PyResult<u16> {
        let ingest = self.running()?;
        let req = Request {
            target,
            headers: Headers {
                host,
                ..Headers::default()
            },
            ..Request::default()
        };
        Ok(ingest.handle(&req).status)
    }

    /// For a request announcing its body (`Expect: 100-continue`): 0 to send
    /// `100 Continue`, else the final answer's code (as `request()`), already counted.
    fn check_expect(
        &mut self,
        method: u8,
        target: &[u8],
        headers: &Bound<'_, PyList>,
    ) -> PyResult<u64> {
        let ingest = self.running()?;
        let slots = slots(headers);
        let req = request(method, target, &slots, None, None);
        Ok(ingest.check_expect(&req).map_or(0, |v| v.code()))
    }

    /// Whether an answer to this request carries CORS headers: for refusals made before
    /// the request is complete (413, 431, ...).
    fn cors_allowed(&self, target: &[u8], headers: &Bound<'_, PyList>) -> bool {
        let slots = slots(headers);
        let req = request(0, target, &slots, None, None);
        self.ingest.cors_allowed(&req)
    }

    /// `beacon reprocess`: a kept request again, as received at `ts_ms` and with the event
    /// id `event_id` (its bad row's), through the current config. Returns its outcome's
    /// name (`OUTCOMES`) and status; the event, if accepted, is with the backends.
    #[allow(clippy::too_many_arguments)]
    fn reprocess(
        &mut self,
        method: u8,
        target: &[u8],
        headers: &Bound<'_, PyList>,
        body: Option<&[u8]>,
        ts_ms: i64,
        event_id: &str,
    ) -> PyResult<(&'static str, u16)> {
        let id = uuid::Uuid::parse_str(event_id)
            .map_err(|e| PyValueError::new_err(format!("event id {event_id:?}: {e}")))?;
        let ingest = self.running()?;
        let slots = slots(headers);
        let req = request(method, target, &slots, body, None);
        let clock = ingest.fixed_clock_ms.replace(ts_ms);
        ingest.fixed_id = Some(id);
        let v = ingest.handle(&req);
        // A flavor without event ids leaves the id unused: it must not go to the next one.
        ingest.fixed_clock_ms = clock;
        ingest.fixed_id = None;
        Ok((OUTCOMES[v.outcome as usize], v.status))
    }

    /// Injects the receipt time (ms since the epoch) for tests; `None` restores the clock.
    fn set_clock(&mut self, ms: Option<i64>) -> PyResult<()> {
        self.running()?.fixed_clock_ms = ms;
        Ok(())
    }

    /// Closes every open file; the next write reopens (SIGHUP, logrotate).
    fn reopen(&self) {
        if let Some(f) = &self.file_sink {
            f.reopen();
        }
    }

    /// Flushes every queue to its backend and stops the backend threads.
    fn shutdown(&mut self, py: Python<'_>) {
        if let Some(mut sink) = self.file_sink.take() {
            py.detach(move || sink.stop());
        }
    }

    /// Counters: `{"flavors": {name: {outcome: n}}, "no_flavor": {...}, "backends": {...}}`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let ingest = &self.ingest;
        let flavors = PyDict::new(py);
        let counts = ingest.counts();
        for (f, row) in ingest.flavors.iter().zip(counts) {
            flavors.set_item(&f.name, outcome_dict(py, row)?)?;
        }
        out.set_item("flavors", flavors)?;
        out.set_item("no_flavor", outcome_dict(py, &counts[counts.len() - 1])?)?;
        let backends = PyDict::new(py);
        for b in &ingest.backends {
            backends.set_item(b.name, backend_dict(py, b)?)?;
        }
        out.set_item("backends", backends)?;
        Ok(out)
    }
}

type Slots<'py> = [Option<Bound<'py, PyBytes>>; HEADER_NAMES.len()];

/// The header values of a `HEADER_NAMES`-ordered list (anything not bytes is absent).
fn slots<'py>(headers: &Bound<'py, PyList>) -> Slots<'py> {
    std::array::from_fn(|i| {
        let item = headers.get_item(i).ok()?;
        item.cast_into::<PyBytes>().ok()
    })
}

fn request<'a>(
    method: u8,
    target: &'a [u8],
    slots: &'a Slots<'_>,
    body: Option<&'a [u8]>,
    peer: Option<&'a [u8]>,
) -> Request<'a> {
    Request {
        method: Method::from_code(method),
        target,
        headers: Headers::from_slots(|i| slots[i].as_ref().map(|b| b.as_bytes())),
        body,
        peer,
    }
}

fn outcome_dict<'py>(py: Python<'py>, row: &CountRow) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, n) in OUTCOMES.iter().chain(&EXTRA_COUNTERS).zip(row) {
        d.set_item(*name, *n)?;
    }
    Ok(d)
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("HEADER_NAMES", PyTuple::new(m.py(), HEADER_NAMES)?)?;
    m.add("METHODS", PyTuple::new(m.py(), METHODS)?)?;
    m.add("CODE_CORS", CODE_CORS)?;
    m.add("CODE_PREFLIGHT", CODE_PREFLIGHT)?;
    m.add("CODE_HEAD", CODE_HEAD)?;
    m.add("BAD_ROWS_FLAVOR", BAD_ROWS_FLAVOR)?;
    m.add("CODE_BATCH", CODE_BATCH)?;
    m.add("BATCH_ANSWERS", PyTuple::new(m.py(), BATCH_ANSWERS)?)?;
    m.add("EXTRA_COUNTERS", PyTuple::new(m.py(), EXTRA_COUNTERS)?)?;
    m.add_class::<PyIngest>()
}
