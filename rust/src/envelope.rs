//! Builds the event line of DESIGN.md ("The event"):
//! `{"ts":"<local ISO time>","flavor":"<name>","params":{...}}\n`, in one pass straight
//! into a reusable buffer, checking required parameters and picking the Kafka key on the
//! way through the query.

use crate::clock::Day;
use crate::event::Event;
use crate::flavor::Flavor;
use crate::query::{encode_query_into, Limits, QueryError};

/// Why a request is not turned into an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed(QueryError),
    MissingParam(String),
}

/// Renders the event for `query` received at `ts_ms`. `scratch` is reused across calls.
pub fn build_event(
    flavor_idx: u16,
    flavor: &mut Flavor,
    ts_ms: i64,
    query: &[u8],
    limits: &Limits,
    scratch: &mut Vec<u8>,
) -> Result<Event, Refusal> {
    scratch.clear();
    scratch.extend_from_slice(b"{\"ts\":\"");
    let day: Day = flavor.stamper.stamp(ts_ms, scratch);
    scratch.extend_from_slice(b"\",\"flavor\":");
    scratch.extend_from_slice(&flavor.name_json);
    scratch.extend_from_slice(b",\"params\":");

    let mut present: u64 = 0; // bit i: required[i] seen non-empty (at most 64 required)
    let mut key: Option<Box<[u8]>> = None;
    let (required, key_param) = (&flavor.required, flavor.key_param.as_deref());
    encode_query_into(query, flavor.mode, limits, scratch, |name, value| {
        let value = value.unwrap_or("");
        if !required.is_empty() && !value.is_empty() {
            if let Some(i) = required.iter().position(|r| r == name) {
                present |= 1 << i;
            }
        }
        if key_param == Some(name) {
            key = Some(value.as_bytes().into()); // last value wins, as in rack
        }
    })
    .map_err(Refusal::Malformed)?;
    if let Some(missing) = (0..required.len()).find(|i| present & (1 << i) == 0) {
        return Err(Refusal::MissingParam(required[missing].clone()));
    }
    scratch.extend_from_slice(b"}\n");
    Ok(Event {
        flavor: flavor_idx,
        day,
        ts_ms,
        key,
        line: scratch.as_slice().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{parse_tz, Stamper};
    use crate::query::Mode;

    fn flavor(required: &[&str], key: Option<&str>) -> Flavor {
        Flavor::new(
            "skroutz.gr",
            Stamper::new(parse_tz("Europe/Athens").unwrap()),
            Mode::Flat,
            required.iter().map(|s| s.to_string()).collect(),
            key.map(str::to_owned),
        )
    }

    fn build(f: &mut Flavor, q: &[u8]) -> Result<Event, Refusal> {
        build_event(
            7,
            f,
            1_795_508_102_123,
            q,
            &Limits::default(),
            &mut Vec::new(),
        )
    }

    #[test]
    fn event_line_matches_the_design_example() {
        let ev = build(&mut flavor(&[], None), b"ev=view&id=42").unwrap();
        assert_eq!(
            std::str::from_utf8(&ev.line).unwrap(),
            "{\"ts\":\"2026-11-24T10:15:02.123+02:00\",\"flavor\":\"skroutz.gr\",\
             \"params\":{\"ev\":\"view\",\"id\":\"42\"}}\n"
        );
        assert_eq!(
            (ev.flavor, ev.day, ev.ts_ms, ev.key),
            (7, Day(20261124), 1_795_508_102_123, None)
        );
    }

    #[test]
    fn required_params_must_be_present_and_non_empty() {
        let mut f = flavor(&["ev", "uid"], None);
        assert!(build(&mut f, b"ev=view&uid=9").is_ok());
        assert_eq!(
            build(&mut f, b"ev=view").unwrap_err(),
            Refusal::MissingParam("uid".into())
        );
        assert_eq!(
            build(&mut f, b"ev=&uid=1").unwrap_err(),
            Refusal::MissingParam("ev".into())
        );
    }

    #[test]
    fn kafka_key_comes_from_the_configured_param() {
        let mut f = flavor(&[], Some("uid"));
        let ev = build(&mut f, b"ev=view&uid=u%2042").unwrap();
        assert_eq!(ev.key.as_deref(), Some(&b"u 42"[..]));
        assert_eq!(build(&mut f, b"ev=x").unwrap().key, None);
    }

    #[test]
    fn over_limit_is_malformed() {
        let mut f = flavor(&[], None);
        let limits = Limits {
            max_bytes: 4,
            ..Limits::default()
        };
        let err = build_event(0, &mut f, 0, b"a=12345", &limits, &mut Vec::new()).unwrap_err();
        assert!(matches!(
            err,
            Refusal::Malformed(QueryError::TooLong { .. })
        ));
    }
}
