//! What bounds the bad rows: a token bucket of `bad_rows.max_per_s` (one second's worth
//! deep), so building rows costs the request path at most that many builds a second, and a
//! byte budget per UTC day, `bad_rows.max_bytes_per_day`, so a flood cannot fill the disk.
//! A row is charged once, when kept: wherever it then lies (the daily file, or a spool
//! while the store is down) it is within the day's budget. Pure arithmetic on the caller's
//! clock, so tests drive it with any time.

/// Milliseconds in a UTC day.
const DAY_MS: i64 = 86_400_000;

#[derive(Debug)]
pub struct Limiter {
    per_s: f64,
    burst: f64,
    tokens: f64,
    last_ms: Option<i64>,
    budget: u64,
    /// The UTC day (days since the epoch) `used` is for; None before the first row.
    day: Option<i64>,
    used: u64,
}

impl Limiter {
    pub fn new(max_per_s: u64, max_bytes_per_day: u64) -> Limiter {
        let burst = max_per_s.max(1) as f64;
        Limiter {
            per_s: max_per_s as f64,
            burst,
            tokens: burst,
            last_ms: None,
            budget: max_bytes_per_day,
            day: None,
            used: 0,
        }
    }

    /// The UTC day of `ms`, in days since the epoch.
    pub fn day_of(ms: i64) -> i64 {
        ms.div_euclid(DAY_MS)
    }

    /// Whether a row may be built at `now_ms`: a token is left and the day's budget is not
    /// spent; takes the token. At the first row of a UTC day, `on_disk(day)` says how many
    /// bytes that day already holds (a restart on the same day).
    pub fn admit(&mut self, now_ms: i64, on_disk: impl FnOnce(i64) -> u64) -> bool {
        let day = Limiter::day_of(now_ms);
        if self.day != Some(day) {
            self.day = Some(day);
            self.used = on_disk(day);
        }
        // A clock stepped back refills nothing, and does not stall the bucket either.
        let elapsed = self.last_ms.map_or(0, |last| (now_ms - last).max(0));
        self.last_ms = Some(now_ms);
        self.tokens = (self.tokens + elapsed as f64 * self.per_s / 1000.0).min(self.burst);
        if self.tokens < 1.0 || self.used >= self.budget {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Charges a built row of `bytes` to the day's budget; false (nothing charged) when it
    /// does not fit.
    pub fn spend(&mut self, bytes: u64) -> bool {
        if self.used.saturating_add(bytes) > self.budget {
            return false;
        }
        self.used += bytes;
        true
    }

    /// Bytes kept on the current day.
    pub fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_508_102_000; // 2026-11-24T08:15:02Z

    fn none(_: i64) -> u64 {
        0
    }

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let mut l = Limiter::new(10, u64::MAX);
        let admitted = (0..25).filter(|_| l.admit(T0, none)).count();
        assert_eq!(admitted, 10);
        // 100 ms at 10/s is one more token; 50 ms is half of one.
        assert!(l.admit(T0 + 100, none));
        assert!(!l.admit(T0 + 150, none));
        assert!(l.admit(T0 + 200, none));
        // A long pause refills one second's worth, no more.
        let later = (0..25).filter(|_| l.admit(T0 + 60_000, none)).count();
        assert_eq!(later, 10);
    }

    #[test]
    fn a_clock_stepped_back_refills_nothing() {
        let mut l = Limiter::new(1, u64::MAX);
        assert!(l.admit(T0, none));
        assert!(!l.admit(T0 - 5_000, none));
        assert!(!l.admit(T0 - 4_500, none));
        assert!(l.admit(T0 - 3_500, none));
    }

    #[test]
    fn the_day_budget_holds_and_resets_at_utc_midnight() {
        let mut l = Limiter::new(1000, 100);
        assert!(l.admit(T0, none) && l.spend(60));
        assert!(l.admit(T0, none));
        assert!(!l.spend(41), "60 + 41 is over 100");
        assert!(l.spend(40));
        assert_eq!(l.used(), 100);
        assert!(
            !l.admit(T0 + 1, none),
            "spent: no more rows are built today"
        );
        let midnight = (Limiter::day_of(T0) + 1) * DAY_MS;
        assert!(!l.admit(midnight - 1, none));
        assert!(l.admit(midnight, none) && l.spend(100));
        assert_eq!(l.used(), 100);
    }

    #[test]
    fn a_new_day_starts_from_what_its_file_already_holds() {
        let mut l = Limiter::new(1000, 100);
        let mut asked = None;
        assert!(l.admit(T0, |day| {
            asked = Some(day);
            90
        }));
        assert_eq!(asked, Some(Limiter::day_of(T0)));
        assert!(!l.spend(11));
        assert!(l.spend(10));
        // Asked once per day only.
        assert!(!l.admit(T0 + 1, |_| unreachable!()));
    }
}
