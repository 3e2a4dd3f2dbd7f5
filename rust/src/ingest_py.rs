//! Python binding of the request path and its backends: `beacon._beacon.Ingest`.

use crate::backend::{Backend, Counters};
use crate::clock::{parse_tz, Stamper};
use crate::cors::Origins;
use crate::filesink::{FileSink, FileSinkConfig};
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::ingest::{
    CountRow, Headers, Ingest, Method, Request, CODE_CORS, CODE_PREFLIGHT, EXTRA_COUNTERS,
    HEADER_NAMES, METHODS, OUTCOMES,
};
use crate::kafka_py::KafkaQueue;
use crate::privacy::{Cidr, IpMode};
use crate::query::{Limits, Mode};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct FlavorSpec {
    name: String,
    hosts: Vec<String>,
    flavor: Flavor,
}

/// Built in two steps: `add_flavor` and the `enable_*` calls, then `start()`.
#[pyclass(module = "beacon._beacon", name = "Ingest")]
pub struct PyIngest {
    specs: Vec<FlavorSpec>,
    default_flavor: Option<String>,
    paths: Vec<String>,
    limits: Limits,
    max_body_bytes: usize,
    ring_capacity: usize,
    file: Option<(FileSinkConfig, PathBuf)>,
    kafka_spool: Option<PathBuf>,
    kafka: Option<Py<KafkaQueue>>,
    trusted: Vec<Cidr>,
    running: Option<Ingest>,
    file_sink: Option<FileSink>,
}

fn err(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

#[pymethods]
impl PyIngest {
    #[new]
    #[pyo3(signature = (*, paths, max_bytes, max_params, max_depth, max_body_bytes, ring_capacity))]
    fn new(
        paths: Vec<String>,
        max_bytes: usize,
        max_params: usize,
        max_depth: usize,
        max_body_bytes: usize,
        ring_capacity: usize,
    ) -> Self {
        PyIngest {
            specs: Vec::new(),
            default_flavor: None,
            paths,
            limits: Limits {
                max_bytes,
                max_params,
                max_depth,
            },
            max_body_bytes,
            ring_capacity,
            file: None,
            kafka_spool: None,
            kafka: None,
            trusted: Vec::new(),
            running: None,
            file_sink: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        name, *, hosts, timezone, query_format, required_params, key_param, ip = "off",
        user_agent = false, referer = false, honor_dnt = false, json_bodies = false,
        dedup_param = None, dedup_ttl_s = 0.0, dedup_max_entries = 1_000_000,
        allowed_origins = Vec::new()
    ))]
    fn add_flavor(
        &mut self,
        name: String,
        hosts: Vec<String>,
        timezone: &str,
        query_format: &str,
        required_params: Vec<String>,
        key_param: Option<String>,
        ip: &str,
        user_agent: bool,
        referer: bool,
        honor_dnt: bool,
        json_bodies: bool,
        dedup_param: Option<String>,
        dedup_ttl_s: f64,
        dedup_max_entries: usize,
        allowed_origins: Vec<String>,
    ) -> PyResult<()> {
        let bad = |what: &str, v: &str| PyValueError::new_err(format!("unknown {what} {v:?}"));
        let tz = parse_tz(timezone).ok_or_else(|| bad("time zone", timezone))?;
        let mode = Mode::parse(query_format).ok_or_else(|| bad("query_format", query_format))?;
        let ip = IpMode::parse(ip).ok_or_else(|| bad("ip mode", ip))?;
        if required_params.len() > 64 {
            return Err(PyValueError::new_err("at most 64 required_params"));
        }
        let opts = FlavorOptions {
            mode,
            required: required_params,
            key_param,
            ip,
            user_agent,
            referer,
            honor_dnt,
            json_bodies,
            dedup_param,
            dedup_ttl_ms: (dedup_ttl_s * 1000.0) as i64,
            dedup_max_entries,
            origins: Origins::new(&allowed_origins),
        };
        let flavor = Flavor::new(&name, Stamper::new(tz), opts);
        self.specs.push(FlavorSpec {
            name,
            hosts,
            flavor,
        });
        Ok(())
    }

    /// Addresses (CIDR blocks) whose X-Forwarded-For is believed.
    fn set_trusted_proxies(&mut self, proxies: Vec<String>) -> PyResult<()> {
        self.trusted = proxies
            .iter()
            .map(|p| Cidr::parse(p).ok_or_else(|| PyValueError::new_err(format!("bad CIDR {p:?}"))))
            .collect::<PyResult<_>>()?;
        Ok(())
    }

    fn set_default_flavor(&mut self, name: Option<String>) {
        self.default_flavor = name;
    }

    #[pyo3(signature = (
        *, data_dir, spool_dir, flush_interval_ms, fsync_interval_ms, file_suffix = String::new()
    ))]
    fn enable_file_backend(
        &mut self,
        data_dir: PathBuf,
        spool_dir: PathBuf,
        flush_interval_ms: u64,
        fsync_interval_ms: Option<u64>,
        file_suffix: String,
    ) {
        let cfg = FileSinkConfig {
            data_dir,
            flush_interval: Duration::from_millis(flush_interval_ms),
            fsync_interval: fsync_interval_ms.map(Duration::from_millis),
            retry_interval: Duration::from_secs(1),
            file_suffix,
        };
        self.file = Some((cfg, spool_dir));
    }

    /// Queues events for the Kafka feeder, with overflow to `spool_dir`.
    #[pyo3(signature = (*, spool_dir))]
    fn enable_kafka_backend(&mut self, spool_dir: PathBuf) {
        self.kafka_spool = Some(spool_dir);
    }

    /// The Kafka backend's queue, after `start()`; None when Kafka is off.
    fn kafka_queue(&self, py: Python<'_>) -> Option<Py<KafkaQueue>> {
        self.kafka.as_ref().map(|k| k.clone_ref(py))
    }

    /// Builds the request path and starts the backend threads.
    fn start(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.running.is_some() {
            return Err(err("already started"));
        }
        let names: Vec<String> = self.specs.iter().map(|s| s.name.clone()).collect();
        let default = match &self.default_flavor {
            Some(d) => Some(names.iter().position(|n| n == d).ok_or_else(|| {
                PyValueError::new_err(format!("default_flavor {d:?} is not a flavor"))
            })? as u16),
            None => None,
        };
        let mut hosts = HostMap::new(default);
        for (i, s) in self.specs.iter().enumerate() {
            s.hosts.iter().for_each(|h| hosts.insert(h, i as u16));
        }
        let flavors = self.specs.drain(..).map(|s| s.flavor).collect();
        let mut ingest = Ingest::new(
            flavors,
            hosts,
            self.paths.clone(),
            self.limits,
            self.max_body_bytes,
        );
        ingest.trusted_proxies = std::mem::take(&mut self.trusted);
        if let Some((cfg, spool_dir)) = self.file.take() {
            let backend = Arc::new(
                Backend::new("file", self.ring_capacity, &spool_dir, names.clone()).map_err(err)?,
            );
            self.file_sink = Some(FileSink::start(backend.clone(), cfg).map_err(err)?);
            ingest.backends.push(backend);
        }
        if let Some(spool_dir) = self.kafka_spool.take() {
            let backend = Arc::new(
                Backend::new("kafka", self.ring_capacity, &spool_dir, names).map_err(err)?,
            );
            self.kafka = Some(Py::new(
                py,
                KafkaQueue {
                    backend: backend.clone(),
                    last_pop: Default::default(),
                },
            )?);
            ingest.backends.push(backend);
        }
        self.running = Some(ingest);
        Ok(())
    }

    /// One request: `method` an index into `METHODS` (4: any other), `target` as sent,
    /// `headers` the values of `HEADER_NAMES` in order (None: absent), `body` the POST
    /// body as received. Returns `Verdict::code()`: the status in the low 16 bits, and
    /// `CODE_CORS` / `CODE_PREFLIGHT` for the headers to add. The hot path: positional
    /// arguments only.
    fn request(
        &mut self,
        method: u8,
        target: &[u8],
        headers: &Bound<'_, PyList>,
        body: Option<&[u8]>,
        peer: Option<&[u8]>,
    ) -> PyResult<u32> {
        let ingest = self.running.as_mut().ok_or_else(|| err("not started"))?;
        let slots = slots(headers);
        let req = request(method, target, &slots, body, peer);
        Ok(ingest.handle(&req).code())
    }

    /// A GET of `target` with only a Host header; returns the status (tests, tools).
    #[pyo3(signature = (target, host = None))]
    fn handle(&mut self, target: &[u8], host: Option<&[u8]>) -> PyResult<u16> {
        let ingest = self.running.as_mut().ok_or_else(|| err("not started"))?;
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
    ) -> PyResult<u32> {
        let ingest = self.running.as_mut().ok_or_else(|| err("not started"))?;
        let slots = slots(headers);
        let req = request(method, target, &slots, None, None);
        Ok(ingest.check_expect(&req).map_or(0, |v| v.code()))
    }

    /// Whether an answer to this request carries CORS headers: for refusals made before
    /// the request is complete (413, 431, ...).
    fn cors_allowed(&self, target: &[u8], headers: &Bound<'_, PyList>) -> bool {
        let slots = slots(headers);
        let req = request(0, target, &slots, None, None);
        self.running.as_ref().is_some_and(|i| i.cors_allowed(&req))
    }

    /// Test hook: `handle()` panics on exactly this target (None: never).
    fn set_panic_target(&mut self, target: Option<Vec<u8>>) -> PyResult<()> {
        let i = self.running.as_mut().ok_or_else(|| err("not started"))?;
        i.panic_target = target.map(Vec::into_boxed_slice);
        Ok(())
    }

    /// Injects the receipt time (ms since the epoch) for tests; `None` restores the clock.
    fn set_clock(&mut self, ms: Option<i64>) -> PyResult<()> {
        let i = self.running.as_mut().ok_or_else(|| err("not started"))?;
        i.fixed_clock_ms = ms;
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
        let Some(ingest) = &self.running else {
            return Ok(out);
        };
        let flavors = PyDict::new(py);
        let counts = ingest.counts();
        for (f, row) in ingest.flavors.iter().zip(counts) {
            flavors.set_item(&f.name, outcome_dict(py, row)?)?;
        }
        out.set_item("flavors", flavors)?;
        out.set_item("no_flavor", outcome_dict(py, &counts[counts.len() - 1])?)?;
        let backends = PyDict::new(py);
        for b in &ingest.backends {
            backends.set_item(b.name, backend_dict(py, b, self.file_sink.as_ref())?)?;
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

fn backend_dict<'py>(
    py: Python<'py>,
    b: &Backend,
    sink: Option<&FileSink>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let c = &b.counters;
    d.set_item("buffered", b.queue.len())?;
    d.set_item("capacity", b.queue.capacity())?;
    d.set_item("queued_total", b.queue.pushed())?;
    d.set_item("queue_full", b.queue.full_count())?;
    d.set_item("written", Counters::get(&c.written))?;
    d.set_item("bytes", Counters::get(&c.bytes))?;
    d.set_item("spooled", Counters::get(&c.spooled))?;
    d.set_item("replayed", Counters::get(&c.replayed))?;
    d.set_item("dropped", Counters::get(&c.dropped))?;
    d.set_item("errors", Counters::get(&c.errors))?;
    d.set_item("spool_pending", b.spool().pending())?;
    d.set_item("failing", sink.is_some_and(FileSink::is_failing))?;
    Ok(d)
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("HEADER_NAMES", PyTuple::new(m.py(), HEADER_NAMES)?)?;
    m.add("METHODS", PyTuple::new(m.py(), METHODS)?)?;
    m.add("CODE_CORS", CODE_CORS)?;
    m.add("CODE_PREFLIGHT", CODE_PREFLIGHT)?;
    m.add_class::<PyIngest>()
}
