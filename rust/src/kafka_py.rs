//! Python binding of the Kafka backend's share of the ring: `beacon._beacon.KafkaQueue`.
//!
//! The Kafka feeder (python/beacon/backends/kafka.py) runs on its own thread and calls
//! these methods; every wait happens with the GIL released so the event loop runs on.

use crate::backend::{Backend, Counters};
use crate::clock::Day;
use crate::event::SharedEvent;
use crate::spool::{Segment, SpoolRecord};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message as the feeder sees it: `(flavor_index, value, key, ts_ms)`.
type Message<'py> = (u16, Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>, i64);
/// The same, as the feeder hands it back for spooling.
type OwnedMessage = (u16, Vec<u8>, Option<Vec<u8>>, i64);

#[pyclass(module = "beacon._beacon", name = "KafkaQueue", frozen)]
pub struct KafkaQueue {
    pub backend: Arc<Backend>,
    /// When `pop_batch` last returned (its gather window starts there).
    pub last_pop: Mutex<Option<Instant>>,
}

/// A spool segment taken for replay that stays on disk until `release()`: a crash during
/// the replay replays it again (at-least-once) instead of losing it.
#[pyclass(module = "beacon._beacon", name = "SpooledSegment", frozen)]
pub struct SpooledSegment {
    backend: Arc<Backend>,
    segment: Mutex<Option<Segment>>,
    len: usize,
}

#[pymethods]
impl SpooledSegment {
    /// Removes the segment from disk: call once every message of it is delivered or
    /// spooled again. A second call does nothing.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let seg = self
            .segment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(seg) = seg else { return Ok(()) };
        let backend = &self.backend;
        py.detach(|| backend.spool().remove(seg))
            .map_err(|e| PyOSError::new_err(e.to_string()))
    }

    fn __len__(&self) -> usize {
        self.len
    }
}

fn spooled_messages<'py>(
    py: Python<'py>,
    backend: &Backend,
    records: &[SpoolRecord],
) -> PyResult<Bound<'py, PyList>> {
    let items = records
        .iter()
        .map(|r| {
            let value = r.line.strip_suffix(b"\n").unwrap_or(&r.line);
            let key = r.key.as_deref().map(|k| PyBytes::new(py, k));
            let m: Message<'py> = (
                backend.flavor_index(&r.flavor),
                PyBytes::new(py, value),
                key,
                r.ts_ms,
            );
            m.into_pyobject(py)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// An event's Kafka value and key: the JSON object without the file's trailing newline.
fn value_and_key<'py>(
    py: Python<'py>,
    ev: &SharedEvent,
) -> (Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>) {
    let line = ev.line.strip_suffix(b"\n").unwrap_or(&ev.line);
    let key = ev.key.as_deref().map(|k| PyBytes::new(py, k));
    (PyBytes::new(py, line), key)
}

fn message<'py>(py: Python<'py>, ev: &SharedEvent) -> PyResult<Bound<'py, PyTuple>> {
    let (value, key) = value_and_key(py, ev);
    let m: Message<'py> = (ev.flavor, value, key, ev.ts_ms);
    m.into_pyobject(py)
}

fn messages<'py>(py: Python<'py>, batch: &[SharedEvent]) -> PyResult<Bound<'py, PyList>> {
    let items = batch
        .iter()
        .map(|ev| message(py, ev))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

impl KafkaQueue {
    /// Waits (GIL released) as `pop_batch` documents, then pops up to `max` events.
    fn wait_and_pop(
        &self,
        py: Python<'_>,
        max: usize,
        timeout_ms: u64,
        gather_ms: u64,
    ) -> Vec<SharedEvent> {
        let backend = &self.backend;
        let last = &self.last_pop;
        py.detach(|| {
            let now = Instant::now();
            let deadline = now + Duration::from_millis(timeout_ms);
            let mut prev = last.lock().unwrap_or_else(|p| p.into_inner());
            let gathered = prev.map_or(now, |t| t + Duration::from_millis(gather_ms));
            loop {
                let queued = backend.queue.len();
                let now = Instant::now();
                let ready = queued >= max || (queued > 0 && now >= gathered);
                if ready || now >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut batch = Vec::with_capacity(max.min(4096));
            backend.queue.pop_batch(&mut batch, max);
            *prev = Some(Instant::now());
            batch
        })
    }
}

#[pymethods]
impl KafkaQueue {
    /// Flavor names by index.
    fn flavors(&self) -> Vec<String> {
        self.backend.flavors.clone()
    }

    /// Up to `max` messages `(flavor_index, value, key, ts_ms)`, waiting up to
    /// `timeout_ms` (GIL released) for the first one. Empty on timeout.
    ///
    /// With `gather_ms` > 0 it also waits, while fewer than `max` are queued, until
    /// `gather_ms` have passed since the previous call returned: under load the feeder then
    /// returns to Python (and takes the GIL from the event loop) about 1000 / `gather_ms`
    /// times a second with big batches, instead of once per millisecond with a handful.
    /// (Its waiting still polls the queue every millisecond, without the GIL.)
    #[pyo3(signature = (max, timeout_ms, gather_ms = 0))]
    fn pop_batch<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        timeout_ms: u64,
        gather_ms: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let batch = self.wait_and_pop(py, max, timeout_ms, gather_ms);
        messages(py, &batch)
    }

    /// Pops messages like `pop_batch` and hands each to `produce` (a confluent_kafka
    /// `Producer.produce`) as `produce(topic, value, key, -1, on_delivery, None, ts_ms)`,
    /// with `topics[flavor]` as the topic (`unknown_topic` past its end). Returns
    /// `(handed_over, rest, error)`: when a call raises, `rest` holds that message and
    /// the ones after it as `(flavor_index, value, key, ts_ms)` and `error` the exception;
    /// otherwise `rest` is empty and `error` None.
    ///
    /// The same work as a Python loop over `pop_batch`, without running bytecode per
    /// message: measured under wrk, the feeder's Python loop was its largest cost.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (produce, topics, unknown_topic, on_delivery, max, timeout_ms, gather_ms = 0))]
    fn produce_batch<'py>(
        &self,
        py: Python<'py>,
        produce: &Bound<'py, PyAny>,
        topics: Vec<Bound<'py, PyAny>>,
        unknown_topic: &Bound<'py, PyAny>,
        on_delivery: &Bound<'py, PyAny>,
        max: usize,
        timeout_ms: u64,
        gather_ms: u64,
    ) -> PyResult<(usize, Bound<'py, PyList>, Option<PyErr>)> {
        let batch = self.wait_and_pop(py, max, timeout_ms, gather_ms);
        for (i, ev) in batch.iter().enumerate() {
            let topic = topics.get(ev.flavor as usize).unwrap_or(unknown_topic);
            let (value, key) = value_and_key(py, ev);
            let args = (topic, value, key, -1, on_delivery, py.None(), ev.ts_ms);
            if let Err(e) = produce.call1(args) {
                return Ok((i, messages(py, &batch[i..])?, Some(e)));
            }
        }
        Ok((batch.len(), PyList::empty(py), None))
    }

    /// Events waiting in the queue.
    fn buffered(&self) -> usize {
        self.backend.queue.len()
    }

    /// Appends messages that Kafka could not take to the spool:
    /// items are `(flavor_index, value, key, ts_ms)`.
    fn spool(&self, py: Python<'_>, items: Vec<OwnedMessage>) -> u64 {
        let backend = &self.backend;
        py.detach(|| {
            let mut spool = backend.spool();
            let mut ok = 0;
            for (flavor, mut value, key, ts_ms) in items {
                value.push(b'\n');
                let name = backend
                    .flavors
                    .get(flavor as usize)
                    .map_or("unknown", String::as_str);
                // The day only matters to the file backend; Kafka records keep 0.
                match spool.append(name, ts_ms, Day(0), key.as_deref(), &value) {
                    Ok(()) => ok += 1,
                    Err(_) => Counters::add(&backend.counters.dropped, 1),
                }
            }
            Counters::add(&backend.counters.spooled, ok);
            let _ = spool.flush();
            ok
        })
    }

    /// Spooled messages waiting for replay.
    fn spool_pending(&self) -> u64 {
        self.backend.spool().pending()
    }

    /// Takes the oldest spool segment and removes it from disk, returning its messages
    /// `(flavor_index, value, key, ts_ms)` (flavors no longer configured get index
    /// 65535). The caller owns them now: what it cannot deliver it must `spool()` again.
    fn take_spooled<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let backend = &self.backend;
        let seg = py.detach(|| {
            let mut spool = backend.spool();
            let seg = spool.take_oldest()?;
            let Some(seg) = seg else { return Ok(None) };
            let recs = seg.records.clone();
            Counters::add(&backend.counters.dropped, seg.corrupt);
            spool.remove(seg)?;
            Ok::<_, std::io::Error>(Some(recs))
        });
        let Some(records) = seg.map_err(|e| PyOSError::new_err(e.to_string()))? else {
            return Ok(None);
        };
        Ok(Some(spooled_messages(py, backend, &records)?))
    }

    /// Like `take_spooled`, but the oldest segment stays on disk until the returned
    /// `SpooledSegment.release()`: `(messages, segment)`, None when the spool is empty.
    /// Hold one segment at a time: until it is released, this returns it again.
    fn hold_spooled<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyList>, SpooledSegment)>> {
        let backend = &self.backend;
        let seg = py
            .detach(|| backend.spool().take_oldest())
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        let Some(mut seg) = seg else { return Ok(None) };
        Counters::add(&backend.counters.dropped, seg.corrupt);
        let items = spooled_messages(py, backend, &seg.records)?;
        // Python owns the messages now; keep only the count `Spool::remove` needs.
        for r in &mut seg.records {
            *r = SpoolRecord {
                flavor: String::new(),
                ts_ms: 0,
                day: Day(0),
                key: None,
                line: Vec::new(),
            };
        }
        let len = seg.records.len();
        let held = SpooledSegment {
            backend: backend.clone(),
            segment: Mutex::new(Some(seg)),
            len,
        };
        Ok(Some((items, held)))
    }

    /// Counts messages the feeder replayed from the spool into Kafka.
    fn add_replayed(&self, n: u64) {
        Counters::add(&self.backend.counters.replayed, n);
    }
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<KafkaQueue>()?;
    m.add_class::<SpooledSegment>()
}
