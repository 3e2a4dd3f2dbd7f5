//! The rejected log: messages Kafka refuses for good (larger than the topic's
//! `max.message.bytes` or the producer's `message.max.bytes`, or a record the broker calls
//! invalid). Spooled, they would be retried forever; here they are kept for an operator.
//!
//! Layout: `<spool_dir>/kafka-rejected/<UTC date>.jsonl`, appended, one object a line:
//!
//! ```text
//! {"topic":"beacon.shop","key":"u42","ts_ms":1795508102123,"error":"Broker: Message size
//!  too large","event":"{\"ts\":\"2026-11-24T10:15:02.123+02:00\",...}"}
//! ```
//!
//! `key` is null when the message has none; `key` and `event` (the event's JSON, as a
//! string) are read as UTF-8, invalid sequences replaced.

use crate::json::write_str;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// One refused message.
pub(super) struct Rejected<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub ts_ms: i64,
    pub error: &'a str,
    pub event: &'a [u8],
}

pub(super) struct RejectedLog {
    dir: PathBuf,
    /// The error of the last message filed: a new one is worth a log line.
    last_error: String,
    /// The last write failed: the next failure is not worth another line.
    failing: bool,
}

/// What became of a refused message, and the log line worth writing, if any.
pub(super) enum Filed {
    Kept(Option<String>),
    Lost(Option<String>),
}

impl RejectedLog {
    pub(super) fn new(dir: PathBuf) -> RejectedLog {
        RejectedLog {
            dir,
            last_error: String::new(),
            failing: false,
        }
    }

    /// Appends `r` to today's file.
    pub(super) fn file(&mut self, r: &Rejected<'_>) -> Filed {
        let path = self
            .dir
            .join(format!("{}.jsonl", chrono::Utc::now().format("%Y-%m-%d")));
        let written = fs::create_dir_all(&self.dir).and_then(|()| append(&path, &line(r)));
        let failed_before = std::mem::replace(&mut self.failing, written.is_err());
        match written {
            Ok(()) if self.last_error != r.error => {
                self.last_error = r.error.to_owned();
                let p = path.display();
                Filed::Kept(Some(format!(
                    "Kafka refused a message ({}): kept in {p}",
                    r.error
                )))
            }
            Ok(()) => Filed::Kept(None),
            Err(e) if !failed_before => {
                let p = path.display();
                Filed::Lost(Some(format!("cannot write a rejected message to {p}: {e}")))
            }
            Err(_) => Filed::Lost(None),
        }
    }
}

fn append(path: &PathBuf, line: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line)
}

fn line(r: &Rejected<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.event.len() * 5 / 4 + 128);
    out.extend_from_slice(b"{\"topic\":");
    write_str(&mut out, r.topic);
    out.extend_from_slice(b",\"key\":");
    match r.key {
        Some(k) => write_str(&mut out, &String::from_utf8_lossy(k)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"ts_ms\":");
    out.extend_from_slice(r.ts_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"error\":");
    write_str(&mut out, r.error);
    out.extend_from_slice(b",\"event\":");
    write_str(&mut out, &String::from_utf8_lossy(r.event));
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_event_as_a_string() {
        let r = Rejected {
            topic: "t",
            key: Some(b"k\xff"),
            ts_ms: 7,
            error: "too \"large\"",
            event: br#"{"ts":"x","params":{"a":"1\n"}}"#,
        };
        let text = line(&r);
        assert!(text.ends_with(b"}\n") && !text[..text.len() - 1].contains(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["topic"], "t");
        assert_eq!(v["key"], "k\u{fffd}");
        assert_eq!(v["ts_ms"], 7);
        assert_eq!(v["error"], "too \"large\"");
        let event: serde_json::Value = serde_json::from_str(v["event"].as_str().unwrap()).unwrap();
        assert_eq!(event["params"]["a"], "1\n");
        let none = line(&Rejected { key: None, ..r });
        assert!(none.windows(10).any(|w| w == b"\"key\":null"));
    }
}
