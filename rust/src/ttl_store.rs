//! A bounded in-memory key/value map with per-key expiry: the dedup store.
//!
//! Expiry order is kept in a `BTreeMap` keyed by `(expires_at, insertion seq)`, so both
//! sweeping expired keys and evicting the soonest-to-expire key when full are O(log n).
//! Times are caller-supplied milliseconds, which keeps the store testable and lets the
//! request path reuse its one receipt time stamp.

use std::collections::{BTreeMap, HashMap};

pub struct TtlStore {
    map: HashMap<Box<[u8]>, Entry>,
    by_expiry: BTreeMap<(i64, u64), Box<[u8]>>,
    max_entries: usize,
    seq: u64,
    evicted: u64,
}

struct Entry {
    value: Box<[u8]>,
    expires_at: i64,
    seq: u64,
}

impl TtlStore {
    pub fn new(max_entries: usize) -> Self {
        TtlStore {
            map: HashMap::new(),
            by_expiry: BTreeMap::new(),
            max_entries: max_entries.max(1),
            seq: 0,
            evicted: 0,
        }
    }

    /// The value of a live key.
    pub fn get(&mut self, key: &[u8], now_ms: i64) -> Option<&[u8]> {
        self.sweep(now_ms);
        self.map.get(key).map(|e| &*e.value)
    }

    /// Milliseconds left for a live key.
    pub fn ttl_ms(&mut self, key: &[u8], now_ms: i64) -> Option<i64> {
        self.sweep(now_ms);
        self.map.get(key).map(|e| e.expires_at - now_ms)
    }

    /// Sets `key` for `ttl_ms`, evicting the soonest-to-expire key when full.
    pub fn set(&mut self, key: &[u8], value: &[u8], ttl_ms: i64, now_ms: i64) {
        self.sweep(now_ms);
        if let Some(old) = self.map.remove(key) {
            self.by_expiry.remove(&(old.expires_at, old.seq));
        }
        while self.map.len() >= self.max_entries {
            let Some((_, k)) = self.by_expiry.pop_first() else {
                break;
            };
            self.map.remove(&k);
            self.evicted += 1;
        }
        self.seq += 1;
        let expires_at = now_ms.saturating_add(ttl_ms);
        self.by_expiry.insert((expires_at, self.seq), key.into());
        self.map.insert(
            key.into(),
            Entry {
                value: value.into(),
                expires_at,
                seq: self.seq,
            },
        );
    }

    /// True if `key` was live (a duplicate); otherwise records it for `ttl_ms`.
    pub fn seen_or_insert(&mut self, key: &[u8], ttl_ms: i64, now_ms: i64) -> bool {
        if self.get(key, now_ms).is_some() {
            return true;
        }
        self.set(key, b"", ttl_ms, now_ms);
        false
    }

    /// A new bound; a smaller one evicts (soonest to expire first) at the next `set`.
    pub fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries.max(1);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Live keys pushed out early because the store was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn sweep(&mut self, now_ms: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let key = entry.remove();
            self.map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expire_after_their_ttl() {
        let mut s = TtlStore::new(10);
        s.set(b"a", b"1", 1000, 0);
        assert_eq!(s.get(b"a", 999), Some(&b"1"[..]));
        assert_eq!(s.ttl_ms(b"a", 400), Some(600));
        assert_eq!(s.get(b"a", 1000), None);
        assert!(s.is_empty());
    }

    #[test]
    fn setting_again_extends_and_replaces() {
        let mut s = TtlStore::new(10);
        s.set(b"a", b"1", 100, 0);
        s.set(b"a", b"2", 100, 50);
        assert_eq!(s.get(b"a", 120), Some(&b"2"[..]));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn full_store_evicts_the_soonest_to_expire() {
        let mut s = TtlStore::new(2);
        s.set(b"long", b"", 1000, 0);
        s.set(b"short", b"", 10, 0);
        s.set(b"new", b"", 500, 0);
        assert_eq!(s.len(), 2);
        assert!(s.get(b"short", 1).is_none());
        assert!(s.get(b"long", 1).is_some() && s.get(b"new", 1).is_some());
        assert_eq!(s.evicted(), 1);
    }

    #[test]
    fn dedup_within_and_after_ttl() {
        let mut s = TtlStore::new(100);
        assert!(!s.seen_or_insert(b"e1", 1000, 0));
        assert!(s.seen_or_insert(b"e1", 1000, 500));
        assert!(!s.seen_or_insert(b"e1", 1000, 1000));
        assert!(!s.seen_or_insert(b"e2", 1000, 1000));
    }
}
