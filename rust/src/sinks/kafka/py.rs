//! Python binding of the Kafka sink: `beacon._beacon.KafkaSink`, driven by the feeder
//! thread (python/beacon/backends/kafka/feeder.py). Thin: it makes confluent-kafka's bound
//! `Producer.produce` methods a [`Producer`], and Python arguments the sink's types. Waits
//! and disk I/O run with the GIL released, so the event loop runs meanwhile.

use super::lent::Lent;
use super::{Handed, KafkaConfig, KafkaSink, Message, Producer, Refusal, Returned, Route};
use crate::sinks::backend::Backend;
use crate::sinks::py::backend_dict;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[pyclass(module = "beacon._beacon", name = "KafkaSink", frozen)]
pub struct PyKafkaSink {
    sink: Arc<KafkaSink>,
    handles: Mutex<Option<Handles>>,
}

/// What `attach` hands over: the two producers' `produce`, the three delivery callbacks,
/// and the sorter of `produce`'s exceptions.
struct Handles {
    topics: Vec<Py<PyString>>,
    unknown_topic: Py<PyString>,
    fast: Py<PyAny>,
    reporter: Py<PyAny>,
    on_fast: Py<PyAny>,
    on_live: Py<PyAny>,
    on_replay: Py<PyAny>,
    refusal: Py<PyAny>,
}

/// The same, bound for one call.
struct PyProducer<'py> {
    py: Python<'py>,
    topics: Vec<Bound<'py, PyString>>,
    unknown_topic: Bound<'py, PyString>,
    fast: Bound<'py, PyAny>,
    reporter: Bound<'py, PyAny>,
    on_fast: Bound<'py, PyAny>,
    on_live: Bound<'py, PyAny>,
    on_replay: Bound<'py, PyAny>,
    refusal: Bound<'py, PyAny>,
    /// `"id"`, interned: the header name of the event id.
    id_header: Bound<'py, PyString>,
    /// Each message's value, lent to `produce` in turn (lent.rs).
    value: Bound<'py, Lent>,
    /// The exception behind a `Refusal::Abort`, raised once the sink has spooled the rest.
    error: Option<PyErr>,
}

impl Producer for PyProducer<'_> {
    fn produce(&mut self, route: Route, m: &Message<'_>) -> Result<(), Refusal> {
        let py = self.py;
        let key = m.key.map(|k| PyBytes::new(py, k));
        // Positional, no keyword parsing per message: (topic, value, key, partition -1:
        // any, callback, on_delivery None, timestamp, headers). confluent-kafka takes
        // headers as a list of (name, value) pairs; None for events without an id.
        let headers = match m.id {
            Some(id) => {
                let pair = (self.id_header.clone(), PyBytes::new(py, id));
                Some(PyList::new(py, [pair]).expect("a list of one tuple"))
            }
            None => None,
        };
        let (produce, on_delivery) = match route {
            Route::Fast => (&self.fast, &self.on_fast),
            Route::Live => (&self.reporter, &self.on_live),
            Route::Replay => (&self.reporter, &self.on_replay),
        };
        let topic = self
            .topics
            .get(m.topic as usize)
            .unwrap_or(&self.unknown_topic);
        let args = (
            topic,
            &self.value,
            key,
            -1,
            on_delivery,
            py.None(),
            m.ts_ms,
            headers,
        );
        match Lent::lend(&self.value, m.value, || produce.call1(args)) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.sort(e)),
        }
    }
}

impl PyProducer<'_> {
    /// `refusal(exc) -> (verdict, message)` says what the exception means.
    fn sort(&mut self, e: PyErr) -> Refusal {
        let sorted = self
            .refusal
            .call1((e.value(self.py),))
            .and_then(|v| v.extract::<(String, String)>());
        match sorted {
            Ok((verdict, message)) => match verdict.as_str() {
                "full" => Refusal::Full,
                "reject" => Refusal::Reject(message),
                "down" => Refusal::Down(message),
                "fatal" => Refusal::Fatal(message),
                _ => {
                    self.error = Some(e);
                    Refusal::Abort
                }
            },
            Err(sort_failed) => {
                self.error = Some(sort_failed);
                Refusal::Abort
            }
        }
    }
}

fn intern(py: Python<'_>, topics: &[String]) -> Vec<Py<PyString>> {
    (topics.iter())
        .map(|t| PyString::intern(py, t).unbind())
        .collect()
}

fn route(name: &str) -> PyResult<Route> {
    match name {
        "fast" => Ok(Route::Fast),
        "live" => Ok(Route::Live),
        "replay" => Ok(Route::Replay),
        _ => Err(PyValueError::new_err(format!("unknown route {name:?}"))),
    }
}

impl PyKafkaSink {
    /// The Kafka backend's sink, with beacon's defaults until `configure()`.
    pub fn create(py: Python<'_>, backend: Arc<Backend>) -> PyResult<Py<PyKafkaSink>> {
        let sink = KafkaSink::new(backend, KafkaConfig::default());
        Py::new(
            py,
            PyKafkaSink {
                sink: Arc::new(sink),
                handles: Mutex::new(None),
            },
        )
    }

    /// Topics by slot, for the sink and the attached producers (`Ingest.reconfigure`).
    pub fn set_topics(&self, py: Python<'_>, topics: Vec<String>) {
        let mut guard = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = guard.as_mut() {
            h.topics = intern(py, &topics);
        }
        self.sink.set_topics(topics);
    }

    fn producer<'py>(&self, py: Python<'py>) -> PyResult<PyProducer<'py>> {
        let guard = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let h = guard
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("no producers attached"))?;
        let b = |o: &Py<PyAny>| o.bind(py).clone();
        Ok(PyProducer {
            py,
            topics: h.topics.iter().map(|t| t.bind(py).clone()).collect(),
            unknown_topic: h.unknown_topic.bind(py).clone(),
            fast: b(&h.fast),
            reporter: b(&h.reporter),
            on_fast: b(&h.on_fast),
            on_live: b(&h.on_live),
            on_replay: b(&h.on_replay),
            refusal: b(&h.refusal),
            id_header: PyString::intern(py, "id"),
            value: Lent::new(py)?,
            error: None,
        })
    }
}

#[pymethods]
impl PyKafkaSink {
    /// Topics by slot (`Ingest` names them from the config).
    fn topics(&self) -> Vec<String> {
        self.sink.config().topics
    }

    /// The rejected log's directory and librdkafka's buffer limits; `topics` by slot
    /// replaces the config's (tests, tools).
    #[pyo3(signature = (*, rejected_dir, buffer_messages, buffer_kbytes, topics = None))]
    fn configure(
        &self,
        py: Python<'_>,
        rejected_dir: PathBuf,
        buffer_messages: u64,
        buffer_kbytes: u64,
        topics: Option<Vec<String>>,
    ) {
        let topics = topics.unwrap_or_else(|| self.sink.config().topics);
        self.sink.configure(KafkaConfig {
            topics: topics.clone(),
            rejected_dir,
            buffer_messages,
            buffer_kbytes,
            ..KafkaConfig::default()
        });
        self.set_topics(py, topics);
    }

    /// Hands over the producers' `produce`, the delivery callbacks and `refusal`.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, fast, reporter, on_fast, on_live, on_replay, refusal))]
    fn attach(
        &self,
        py: Python<'_>,
        fast: Py<PyAny>,
        reporter: Py<PyAny>,
        on_fast: Py<PyAny>,
        on_live: Py<PyAny>,
        on_replay: Py<PyAny>,
        refusal: Py<PyAny>,
    ) {
        let cfg = self.sink.config();
        let handles = Handles {
            topics: intern(py, &cfg.topics),
            unknown_topic: PyString::intern(py, &cfg.unknown_topic).unbind(),
            fast,
            reporter,
            on_fast,
            on_live,
            on_replay,
            refusal,
        };
        *self.handles.lock().unwrap_or_else(|p| p.into_inner()) = Some(handles);
    }

    /// Drops what `attach` handed over (the producers hold callbacks that hold the sink).
    fn detach(&self) {
        let handles = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(handles);
    }

    /// Hands the next live batch to librdkafka (see `KafkaSink::take_live`). True when its
    /// buffer is full: poll before the next call. `drain`: take what is queued, no waiting.
    #[pyo3(signature = (drain = false))]
    fn produce_live(&self, py: Python<'_>, drain: bool) -> PyResult<bool> {
        let sink = &self.sink;
        let batch = py.detach(|| sink.take_live(drain));
        if batch.is_empty() {
            return Ok(false);
        }
        let mut producer = self.producer(py)?;
        let handed = sink.hand_live(batch, sink.route(), &mut producer);
        py.detach(|| sink.spill());
        match producer.error.take() {
            Some(e) => Err(e),
            None => Ok(handed == Handed::Full),
        }
    }

    /// Hands the next chunk of the spool to librdkafka, within the replay's rate; returns
    /// how many messages.
    fn replay(&self, py: Python<'_>) -> PyResult<usize> {
        let sink = &self.sink;
        let budget = sink.replay_budget(Instant::now());
        if budget == 0 || !py.detach(|| sink.load_segment()) {
            return Ok(0);
        }
        let mut producer = self.producer(py)?;
        let (handed, _) = sink.replay_chunk(budget, &mut producer);
        match producer.error.take() {
            Some(e) => Err(e),
            None => Ok(handed),
        }
    }

    /// After each poll: `fast_held` is `len()` of the failures-only producer.
    fn settle(&self, py: Python<'_>, fast_held: u64) {
        py.detach(|| self.sink.settle(fast_held));
    }

    /// Down and idle: time for a metadata probe.
    fn probe_due(&self) -> bool {
        self.sink.probe_due(Instant::now())
    }

    fn delivered(&self, route: &str) -> PyResult<()> {
        self.sink.delivered(self::route(route)?);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (route, topic, value, key, ts_ms, error, quiet = false))]
    fn fail(
        &self,
        route: &str,
        topic: &str,
        value: &[u8],
        key: Option<&[u8]>,
        ts_ms: i64,
        error: &str,
        quiet: bool,
    ) -> PyResult<()> {
        let msg = Returned {
            topic,
            value,
            key,
            ts_ms,
        };
        self.sink.failed(self::route(route)?, msg, error, quiet);
        Ok(())
    }

    fn reject(
        &self,
        route: &str,
        topic: &str,
        value: &[u8],
        key: Option<&[u8]>,
        ts_ms: i64,
        error: &str,
    ) -> PyResult<()> {
        let msg = Returned {
            topic,
            value,
            key,
            ts_ms,
        };
        self.sink.rejected(self::route(route)?, msg, error);
        Ok(())
    }

    fn brokers_down(&self, error: &str) {
        self.sink.brokers_down(error);
    }

    fn fatal_error(&self, error: &str) {
        self.sink.fatal_error(error);
    }

    fn brokers_reachable(&self) {
        self.sink.brokers_reachable();
    }

    fn needs_new_producers(&self) -> bool {
        self.sink.needs_new_producers()
    }

    fn producers_replaced(&self) {
        self.sink.producers_replaced();
    }

    /// Shutdown: what the replay has not handed over goes back to the spool.
    fn end_replay(&self, py: Python<'_>) {
        py.detach(|| self.sink.end_replay());
    }

    /// Stop: notes a replayed segment left unreported.
    fn close(&self) {
        self.sink.close();
    }

    /// Events waiting in memory: the queue and a batch waiting for room.
    fn buffered(&self) -> usize {
        self.sink.buffered()
    }

    /// Log lines since the last call: `(logging level, message)`.
    fn take_notes(&self) -> Vec<(u8, String)> {
        let notes = self.sink.take_notes();
        notes.into_iter().map(|(l, t)| (l as u8, t)).collect()
    }

    /// The backend's figures, as in `/stats`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        backend_dict(py, &self.sink.backend)
    }
}
