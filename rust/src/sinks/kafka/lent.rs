//! A message's value lent to confluent-kafka's `Producer.produce()` without a copy.
//!
//! `produce()` takes the value as a read-only bytes-like object and librdkafka copies it
//! (confluent-kafka always passes `RD_KAFKA_MSG_F_COPY`) before the call returns. A `bytes`
//! per message was one more allocation and copy of every event on the feeder thread:
//! malloc, free and memmove were ~40% of that thread's profile (docs/performance.md, "The
//! Kafka row"). [`Lent`] instead points one Python object at each message's bytes in turn.
//!
//! The protocol it relies on (CPython's `Python/getargs.c`, `convertbuffer`): the `z#`
//! format of `produce()` accepts only exporters *without* `bf_releasebuffer`, takes the
//! pointer and releases the view at once; so [`Lent`] defines `__getbuffer__` only, and a
//! pointer must stay valid while the object points at it. [`Lent::lend`] scopes that: it
//! points the object at a slice for the duration of one closure and empties it after, so a
//! view taken later (nothing in beacon takes one) sees zero bytes, never freed memory.

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The lender. Atomics only to make the class `Sync` for pyo3: it is used under the GIL by
/// one thread (the feeder), so `Relaxed` is enough; the GIL orders everything else.
#[pyclass(module = "beacon._beacon", name = "_Lent", frozen)]
pub struct Lent {
    ptr: AtomicPtr<u8>,
    len: AtomicUsize,
}

impl Lent {
    pub fn new(py: Python<'_>) -> PyResult<Bound<'_, Lent>> {
        let lent = Lent {
            ptr: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        };
        Bound::new(py, lent)
    }

    /// Runs `f` with `lent` exporting `bytes`, then exports nothing again, even if `f`
    /// unwinds (the guard's drop).
    pub fn lend<R>(lent: &Bound<'_, Lent>, bytes: &[u8], f: impl FnOnce() -> R) -> R {
        let me = lent.get();
        me.ptr.store(bytes.as_ptr().cast_mut(), Ordering::Relaxed);
        me.len.store(bytes.len(), Ordering::Relaxed);
        let _empty_after = Emptied(me);
        f()
    }

    fn empty(&self) {
        self.len.store(0, Ordering::Relaxed);
        self.ptr.store(ptr::null_mut(), Ordering::Relaxed);
    }
}

/// Empties the lender when dropped: the end of [`Lent::lend`]'s scope, however it ends.
struct Emptied<'a>(&'a Lent);

impl Drop for Emptied<'_> {
    fn drop(&mut self) {
        self.0.empty();
    }
}

#[pymethods]
impl Lent {
    /// A read-only view of the lent bytes. No `__releasebuffer__`: see the module doc.
    ///
    /// # Safety
    /// `view` is the `Py_buffer` CPython hands to `bf_getbuffer`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("a lent value is read-only"));
        }
        let me = slf.get();
        let (buf, len) = (
            me.ptr.load(Ordering::Relaxed),
            me.len.load(Ordering::Relaxed),
        );
        // Fills every field for `flags`, read-only, and takes a reference to `slf`.
        // SAFETY: `view` comes from CPython; `buf` is valid for `len` bytes (see `lend`), or
        // null and 0 when nothing is lent.
        let (buf, len) = (buf.cast::<c_void>(), len as isize);
        let rc = unsafe { ffi::PyBuffer_FillInfo(view, slf.as_ptr(), buf, len, 1, flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }
}
