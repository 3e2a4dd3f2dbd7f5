//! Receipt time stamps: the wall clock (or an injected one, for tests) rendered as the
//! flavor's local time `YYYY-MM-DDTHH:MM:SS.mmm+HH:MM`, and the local calendar day that
//! picks the daily file.

use chrono::{Datelike, FixedOffset, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

/// A local calendar day, packed `yyyymmdd` so it compares and hashes as one integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub u32);

impl Day {
    /// `YYYY-MM-DD`, the daily file's stem.
    pub fn iso(self) -> String {
        let (y, m, d) = (self.0 / 10000, self.0 / 100 % 100, self.0 % 100);
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// Stamps receipt times in one time zone. Keeps the rendering of the last second it saw,
/// so the common case (many requests a second) formats only the milliseconds.
pub struct Stamper {
    tz: Tz,
    cached_sec: i64,
    /// `YYYY-MM-DDTHH:MM:SS.` for `cached_sec`.
    prefix: [u8; 20],
    /// `+HH:MM` for `cached_sec`.
    offset: [u8; 6],
    day: Day,
}

impl Stamper {
    pub fn new(tz: Tz) -> Self {
        let mut s = Stamper {
            tz,
            cached_sec: i64::MIN,
            prefix: [0; 20],
            offset: [0; 6],
            day: Day(0),
        };
        s.refresh(0);
        s
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Appends the ISO-8601 local time of `ms` (29 bytes) to `out` and returns its day.
    pub fn stamp(&mut self, ms: i64, out: &mut Vec<u8>) -> Day {
        let sec = ms.div_euclid(1000);
        if sec != self.cached_sec {
            self.refresh(sec);
        }
        let milli = ms.rem_euclid(1000) as u32;
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&[
            b'0' + (milli / 100) as u8,
            b'0' + (milli / 10 % 10) as u8,
            b'0' + (milli % 10) as u8,
        ]);
        out.extend_from_slice(&self.offset);
        self.day
    }

    fn refresh(&mut self, sec: i64) {
        let utc = Utc.timestamp_opt(sec, 0).single().unwrap_or_default();
        let local = utc.with_timezone(&self.tz);
        let off: FixedOffset = local.offset().fix();
        let mut p = Vec::with_capacity(20);
        push_num(&mut p, local.year().clamp(0, 9999) as u32, 4);
        p.push(b'-');
        push_num(&mut p, local.month(), 2);
        p.push(b'-');
        push_num(&mut p, local.day(), 2);
        p.push(b'T');
        push_num(&mut p, local.hour(), 2);
        p.push(b':');
        push_num(&mut p, local.minute(), 2);
        p.push(b':');
        push_num(&mut p, local.second(), 2);
        p.push(b'.');
        self.prefix.copy_from_slice(&p);
        let secs = off.local_minus_utc();
        let abs = secs.unsigned_abs() / 60;
        let mut o = vec![if secs < 0 { b'-' } else { b'+' }];
        push_num(&mut o, abs / 60, 2);
        o.push(b':');
        push_num(&mut o, abs % 60, 2);
        self.offset.copy_from_slice(&o);
        self.day =
            Day(local.year().clamp(0, 9999) as u32 * 10000 + local.month() * 100 + local.day());
        self.cached_sec = sec;
    }
}

fn push_num(out: &mut Vec<u8>, v: u32, width: usize) {
    let s = format!("{v:0width$}");
    out.extend_from_slice(s.as_bytes());
}

/// Parses an IANA zone name such as `Europe/Athens`.
pub fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(tz: &str, ms: i64) -> (String, Day) {
        let mut s = Stamper::new(parse_tz(tz).unwrap());
        let mut out = Vec::new();
        let day = s.stamp(ms, &mut out);
        (String::from_utf8(out).unwrap(), day)
    }

    #[test]
    fn utc_has_explicit_zero_offset() {
        // 2026-11-24T08:15:02.123Z
        let (ts, day) = stamp("UTC", 1_795_508_102_123);
        assert_eq!(ts, "2026-11-24T08:15:02.123+00:00");
        assert_eq!(day.iso(), "2026-11-24");
    }

    #[test]
    fn athens_is_two_hours_ahead_in_winter() {
        let (ts, _) = stamp("Europe/Athens", 1_795_508_102_123);
        assert_eq!(ts, "2026-11-24T10:15:02.123+02:00");
    }

    #[test]
    fn negative_and_half_hour_offsets() {
        let (ts, day) = stamp("America/New_York", 1_795_508_102_005);
        assert_eq!(ts, "2026-11-24T03:15:02.005-05:00");
        assert_eq!(day, Day(20261124));
        let (ts, _) = stamp("Asia/Kolkata", 1_795_508_102_000);
        assert_eq!(ts, "2026-11-24T13:45:02.000+05:30");
    }

    #[test]
    fn local_midnight_changes_the_day() {
        // 2026-11-24T21:59:59.999Z is 23:59:59.999 in Athens; one ms later is the 25th.
        let before = 1_795_557_599_999;
        let mut s = Stamper::new(parse_tz("Europe/Athens").unwrap());
        let mut out = Vec::new();
        assert_eq!(s.stamp(before, &mut out), Day(20261124));
        assert_eq!(s.stamp(before + 1, &mut out), Day(20261125));
        // Still the 24th in UTC.
        let mut u = Stamper::new(parse_tz("UTC").unwrap());
        assert_eq!(u.stamp(before + 1, &mut out), Day(20261124));
    }

    #[test]
    fn cache_is_refreshed_across_seconds_and_backwards() {
        let mut s = Stamper::new(parse_tz("UTC").unwrap());
        let mut a = Vec::new();
        s.stamp(1_795_508_102_999, &mut a);
        s.stamp(1_795_508_103_000, &mut a);
        s.stamp(1_795_508_101_000, &mut a);
        assert_eq!(
            String::from_utf8(a).unwrap(),
            "2026-11-24T08:15:02.999+00:002026-11-24T08:15:03.000+00:002026-11-24T08:15:01.000+00:00"
        );
    }

    #[test]
    fn unknown_zone_is_rejected() {
        assert!(parse_tz("Mars/Olympus").is_none());
    }
}
