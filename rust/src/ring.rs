//! The bounded lock-free queues between the event loop and the backends.
//!
//! Each backend owns one queue (docs/architecture.md, "Sinks"), so a stalled Kafka never
//! delays the file writer. The queue is crossbeam's `ArrayQueue` (Dmitry Vyukov's bounded
//! MPMC array queue, with per-slot stamps), which we use rather than write: push and pop
//! are lock-free and never block. A push that finds the queue full hands the event back;
//! the caller diverts it to the backend's overflow path.

use crate::event::SharedEvent;
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicU64, Ordering};

/// One backend's share of the ring: the queue plus its counters.
pub struct BackendQueue {
    queue: ArrayQueue<SharedEvent>,
    /// Events pushed successfully. Relaxed: a statistic, read without ordering needs.
    pushed: AtomicU64,
    /// Events refused because the queue was full. Relaxed, as above.
    full: AtomicU64,
}

impl BackendQueue {
    pub fn new(capacity: usize) -> Self {
        BackendQueue {
            queue: ArrayQueue::new(capacity.max(1)),
            pushed: AtomicU64::new(0),
            full: AtomicU64::new(0),
        }
    }

    /// Never blocks. `Err(ev)` returns the event when the queue is full.
    pub fn push(&self, ev: SharedEvent) -> Result<(), SharedEvent> {
        match self.queue.push(ev) {
            Ok(()) => {
                self.pushed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(ev) => {
                self.full.fetch_add(1, Ordering::Relaxed);
                Err(ev)
            }
        }
    }

    pub fn pop(&self) -> Option<SharedEvent> {
        self.queue.pop()
    }

    /// Moves up to `max` events into `batch`; returns how many.
    pub fn pop_batch(&self, batch: &mut Vec<SharedEvent>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.queue.pop() {
                Some(ev) => {
                    batch.push(ev);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    pub fn full_count(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Day;
    use crate::event::Event;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn ev(n: i64) -> SharedEvent {
        Arc::new(Event {
            flavor: 0,
            day: Day(20260101),
            ts_ms: n,
            key: None,
            line: Box::new([]),
        })
    }

    #[test]
    fn capacity_is_respected_and_full_is_counted() {
        let q = BackendQueue::new(4);
        for i in 0..4 {
            assert!(q.push(ev(i)).is_ok());
        }
        let back = q.push(ev(99)).unwrap_err();
        assert_eq!(back.ts_ms, 99);
        assert_eq!(
            (q.len(), q.capacity(), q.pushed(), q.full_count()),
            (4, 4, 4, 1)
        );
    }

    #[test]
    fn wraps_around_in_fifo_order() {
        let q = BackendQueue::new(3);
        let mut next_out = 0;
        for i in 0..100 {
            q.push(ev(i)).unwrap();
            if q.len() == 3 {
                assert_eq!(q.pop().unwrap().ts_ms, next_out);
                next_out += 1;
            }
        }
        let mut batch = Vec::new();
        assert_eq!(q.pop_batch(&mut batch, 10), 2);
        assert_eq!(
            batch.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            vec![98, 99]
        );
        assert!(q.is_empty());
    }

    /// One producer (the event loop) and several consumers: every event is popped exactly
    /// once, and refused pushes are exactly the ones counted as full.
    #[test]
    fn stress_one_producer_many_consumers_no_loss_no_duplicates() {
        const N: i64 = 200_000;
        let q = Arc::new(BackendQueue::new(64));
        let done = Arc::new(AtomicBool::new(false));
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let (q, done) = (q.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match q.pop() {
                            Some(e) => got.push(e.ts_ms),
                            None if done.load(Ordering::Acquire) && q.is_empty() => break,
                            None => std::hint::spin_loop(),
                        }
                    }
                    got
                })
            })
            .collect();
        let mut refused = 0u64;
        for i in 0..N {
            let mut e = ev(i);
            while let Err(back) = q.push(e) {
                refused += 1;
                e = back;
                std::thread::yield_now();
            }
        }
        done.store(true, Ordering::Release);
        let mut seen = HashSet::new();
        for c in consumers {
            for v in c.join().unwrap() {
                assert!(seen.insert(v), "event {v} popped twice");
            }
        }
        assert_eq!(seen.len() as i64, N);
        assert_eq!(q.pushed(), N as u64);
        assert_eq!(q.full_count(), refused);
    }

    /// Two backend queues fed from two producers, drained concurrently.
    #[test]
    fn stress_many_producers_per_queue() {
        let q = Arc::new(BackendQueue::new(128));
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000 {
                        let mut e = ev(p * 1_000_000 + i);
                        while let Err(back) = q.push(e) {
                            e = back;
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 100_000 {
            if q.pop_batch(&mut Vec::new(), 0) == 0 {
                if let Some(e) = q.pop() {
                    got.push(e.ts_ms);
                }
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        // Per producer, FIFO order is preserved.
        for p in 0..2 {
            let mine: Vec<_> = got.iter().filter(|v| **v / 1_000_000 == p).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(mine.len(), 50_000);
        }
    }
}
