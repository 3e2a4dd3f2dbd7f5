//! Event ids: UUIDv7 (RFC 9562 §5.7), made at receipt, so ids sort by time.
//!
//! Layout: the 48-bit receipt time in ms since the epoch (the event's `ts_ms`, so an id
//! carries the event's own time, also for `beacon reprocess` and injected clocks), version
//! 7, 12 + 62 random bits around the variant. Within one millisecond the random part of the
//! previous id is incremented instead (RFC 9562 §6.2, "Monotonic Random"), so the ids one
//! process makes never go backwards within a ms. The bits come from fastrand's wyrand,
//! seeded once from std's OS-random hash keys: fast (a few ns), not for secrets.
//! Rendered in the event right after `ts` (`envelope.rs`); Kafka messages carry it as the
//! header `id` too (`sinks/kafka/live.rs`).

use uuid::Uuid;

/// The 74 random bits: 12 of `rand_a`, 62 of `rand_b`.
const RAND_BITS: u32 = 74;
const RAND_MASK: u128 = (1 << RAND_BITS) - 1;
/// The length of the hyphenated text form.
pub const ID_LEN: usize = 36;

pub struct IdGen {
    rng: fastrand::Rng,
    last_ms: i64,
    last_rand: u128,
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen::new()
    }
}

impl IdGen {
    pub fn new() -> IdGen {
        IdGen {
            rng: fastrand::Rng::new(),
            last_ms: i64::MIN,
            last_rand: 0,
        }
    }

    /// A new id for an event received at `ts_ms`.
    pub fn next(&mut self, ts_ms: i64) -> Uuid {
        let rand = if ts_ms == self.last_ms && self.last_rand < RAND_MASK {
            self.last_rand + 1
        } else {
            self.rng.u128(..) & RAND_MASK
        };
        self.last_ms = ts_ms;
        self.last_rand = rand;
        v7(ts_ms, rand)
    }
}

/// The UUIDv7 of `ts_ms` with these 74 random bits.
pub fn v7(ts_ms: i64, rand: u128) -> Uuid {
    let ms = (ts_ms.max(0) as u128) & ((1 << 48) - 1);
    let rand_a = (rand >> 62) & 0xfff;
    let rand_b = rand & ((1 << 62) - 1);
    Uuid::from_u128((ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
}

/// Appends the hyphenated lowercase form (36 bytes).
pub fn write_id(id: &Uuid, out: &mut Vec<u8>) {
    let mut buf = [0u8; ID_LEN];
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &Uuid) -> String {
        let mut out = Vec::new();
        write_id(id, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn carries_the_receipt_ms_version_and_variant() {
        let id = IdGen::new().next(1_795_508_102_123);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos / 1_000_000),
            1_795_508_102_123
        );
        assert_eq!(text(&id).len(), ID_LEN);
        assert_eq!(&text(&id)[..13], "01a20c9f-63eb");
    }

    #[test]
    fn ids_sort_by_time_and_within_a_ms() {
        let mut g = IdGen::new();
        let ids: Vec<String> = [5, 5, 5, 6, 6, 1000]
            .iter()
            .map(|&ms| text(&g.next(ms)))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn the_random_part_differs_between_generators() {
        let (a, b) = (IdGen::new().next(7), IdGen::new().next(7));
        assert_ne!(a, b);
    }
}
