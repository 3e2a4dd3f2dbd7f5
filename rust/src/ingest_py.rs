//! Python binding of the request path and its backends: `beacon._beacon.Ingest`.

use crate::clock::{parse_tz, Stamper};
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::ingest::{BodyKind, Ingest, Request, OUTCOMES};
use crate::privacy::{Cidr, IpMode};
use crate::query::{Limits, Mode};
use crate::sinks::file::{FileSink, FileSinkConfig};
use crate::sinks::kafka::py::PyKafkaSink;
use crate::sinks::py::backend_dict;
use crate::sinks::Backend;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
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
    ring_capacity: usize,
    file: Option<(FileSinkConfig, PathBuf)>,
    kafka_spool: Option<PathBuf>,
    kafka: Option<Py<PyKafkaSink>>,
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
    #[pyo3(signature = (*, paths, max_bytes, max_params, max_depth, ring_capacity))]
    fn new(
        paths: Vec<String>,
        max_bytes: usize,
        max_params: usize,
        max_depth: usize,
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
        dedup_param = None, dedup_ttl_s = 0.0, dedup_max_entries = 1_000_000
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

    /// The Kafka backend's sink, after `start()`; None when Kafka is off.
    fn kafka_sink(&self, py: Python<'_>) -> Option<Py<PyKafkaSink>> {
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
        let mut ingest = Ingest::new(flavors, hosts, self.paths.clone(), self.limits);
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
            self.kafka = Some(PyKafkaSink::create(py, backend.clone())?);
            ingest.backends.push(backend);
        }
        self.running = Some(ingest);
        Ok(())
    }

    /// One request: returns the HTTP status (200 stored or deliberately not stored, 400,
    /// 404, 414). `body_kind`: 0 form, 1 JSON, 2 text/plain. Positional arguments only on
    /// the hot path: keyword parsing costs more.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        target, host = None, body = None, body_kind = 0, peer = None, forwarded_for = None,
        user_agent = None, referer = None, do_not_track = false
    ))]
    fn handle(
        &mut self,
        target: &[u8],
        host: Option<&[u8]>,
        body: Option<&[u8]>,
        body_kind: u8,
        peer: Option<&[u8]>,
        forwarded_for: Option<&[u8]>,
        user_agent: Option<&[u8]>,
        referer: Option<&[u8]>,
        do_not_track: bool,
    ) -> PyResult<u16> {
        let ingest = self.running.as_mut().ok_or_else(|| err("not started"))?;
        let kind = match body_kind {
            1 => BodyKind::Json,
            2 => BodyKind::Text,
            _ => BodyKind::Form,
        };
        let req = Request {
            target,
            host,
            body: body.map(|b| (b, kind)),
            peer,
            forwarded_for,
            user_agent,
            referer,
            do_not_track,
        };
        Ok(ingest.handle(&req).status())
    }

    /// Index of the flavor the last `handle()` matched, None if none did.
    #[getter]
    fn last_flavor(&self) -> Option<u16> {
        self.running.as_ref().and_then(|i| i.last_flavor)
    }

    /// Index of the flavor a Host header selects, None if none does.
    fn flavor_for(&self, host: Option<&[u8]>) -> Option<u16> {
        self.running.as_ref().and_then(|i| i.flavor_for(host))
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
            backends.set_item(b.name, backend_dict(py, b)?)?;
        }
        out.set_item("backends", backends)?;
        Ok(out)
    }
}

fn outcome_dict<'py>(py: Python<'py>, row: &[u64; OUTCOMES.len()]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, n) in OUTCOMES.iter().zip(row) {
        d.set_item(*name, *n)?;
    }
    Ok(d)
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIngest>()
}
