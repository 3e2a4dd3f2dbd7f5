//! A flavor (tenant): the per-site settings the request path needs, and the Host → flavor
//! lookup.

use crate::clock::Stamper;
use crate::cors::Origins;
use crate::json;
use crate::privacy::IpMode;
use crate::query::Mode;
use crate::ttl_store::TtlStore;
use std::collections::HashMap;

/// Per-flavor switches, as configured.
#[derive(Clone, Debug)]
pub struct FlavorOptions {
    pub mode: Mode,
    /// Parameters that must be present and non-empty, else the request is refused.
    pub required: Vec<String>,
    /// Parameter whose value becomes the Kafka message key.
    pub key_param: Option<String>,
    pub ip: IpMode,
    pub user_agent: bool,
    pub referer: bool,
    /// Drop (but still answer) requests carrying `DNT: 1` or `Sec-GPC: 1`.
    pub honor_dnt: bool,
    /// Accept JSON objects as POST bodies.
    pub json_bodies: bool,
    /// Parameter whose repeat within `dedup_ttl_ms` is a duplicate.
    pub dedup_param: Option<String>,
    pub dedup_ttl_ms: i64,
    pub dedup_max_entries: usize,
    /// Origins whose requests get CORS headers.
    pub origins: Origins,
    /// Add a UUIDv7 `id` to each event (`crate::event_id`).
    pub event_id: bool,
}

impl FlavorOptions {
    /// Whether any parameter is read by name (required, Kafka key, dedup): the envelope
    /// then needs each decoded pair (`envelope::Seen`).
    pub fn reads_params(&self) -> bool {
        !self.required.is_empty() || self.key_param.is_some() || self.dedup_param.is_some()
    }
}

/// Everything off: a starting point for tests and fuzzing only. The server's flavors come
/// whole from the config, which owns every default (python/beacon/config/schema.py).
#[cfg(any(test, fuzzing))]
impl Default for FlavorOptions {
    fn default() -> Self {
        FlavorOptions {
            mode: Mode::Flat,
            required: Vec::new(),
            key_param: None,
            ip: IpMode::Off,
            user_agent: false,
            referer: false,
            honor_dnt: false,
            json_bodies: false,
            dedup_param: None,
            dedup_ttl_ms: 0,
            dedup_max_entries: 1_000_000,
            origins: Origins::default(),
            event_id: false,
        }
    }
}

/// What the envelope builder needs to know about one flavor.
pub struct Flavor {
    pub name: String,
    /// `"name"` already escaped, copied into every event.
    pub name_json: Box<[u8]>,
    pub stamper: Stamper,
    pub opts: FlavorOptions,
    /// Recently seen `dedup_param` values.
    pub dedup: Option<TtlStore>,
    /// Where its events go in the backends: the index of its (name, Kafka topic) pair,
    /// set by `Ingest` (see `ingest/settings.rs`).
    pub slot: u16,
}

impl Flavor {
    pub fn new(name: &str, stamper: Stamper, opts: FlavorOptions) -> Self {
        let mut name_json = Vec::new();
        json::write_str(&mut name_json, name);
        let dedup = opts
            .dedup_param
            .as_ref()
            .map(|_| TtlStore::new(opts.dedup_max_entries));
        Flavor {
            name: name.to_owned(),
            name_json: name_json.into_boxed_slice(),
            stamper,
            opts,
            dedup,
            slot: 0,
        }
    }
}

/// Host → flavor index. Matching ignores ASCII case and a `:port` suffix.
#[derive(Default)]
pub struct HostMap {
    hosts: HashMap<Box<[u8]>, u16>,
    default: Option<u16>,
}

impl HostMap {
    pub fn new(default: Option<u16>) -> Self {
        HostMap {
            hosts: HashMap::new(),
            default,
        }
    }

    pub fn insert(&mut self, host: &str, flavor: u16) {
        self.hosts
            .insert(normalise(host.as_bytes()).into_boxed_slice(), flavor);
    }

    /// The same map with each flavor index `i` replaced by `rows[i]`.
    pub fn remap(self, rows: &[u16]) -> HostMap {
        let at = |i: u16| rows[i as usize];
        HostMap {
            hosts: self.hosts.into_iter().map(|(h, i)| (h, at(i))).collect(),
            default: self.default.map(at),
        }
    }

    /// The flavor for a Host header value (or its absence), falling back to the default.
    pub fn lookup(&self, host: Option<&[u8]>) -> Option<u16> {
        let found = host.and_then(|h| {
            let h = strip_port(h);
            if h.iter().any(u8::is_ascii_uppercase) {
                self.hosts.get(&normalise(h)[..]).copied()
            } else {
                self.hosts.get(h).copied()
            }
        });
        found.or(self.default)
    }
}

fn strip_port(h: &[u8]) -> &[u8] {
    // `[::1]:8080` keeps its brackets; `example.com:8080` loses the port.
    match h.iter().rposition(|&b| b == b':') {
        Some(i) if !h[i..].contains(&b']') && h[i + 1..].iter().all(u8::is_ascii_digit) => &h[..i],
        _ => h,
    }
}

fn normalise(h: &[u8]) -> Vec<u8> {
    strip_port(h).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lookup_ignores_case_and_port() {
        let mut m = HostMap::new(None);
        m.insert("Example.com", 1);
        m.insert("[::1]", 2);
        assert_eq!(m.lookup(Some(b"example.com")), Some(1));
        assert_eq!(m.lookup(Some(b"EXAMPLE.COM:8080")), Some(1));
        assert_eq!(m.lookup(Some(b"[::1]:80")), Some(2));
        assert_eq!(m.lookup(Some(b"other.org")), None);
        assert_eq!(m.lookup(None), None);
    }

    #[test]
    fn unknown_host_falls_back_to_default() {
        let mut m = HostMap::new(Some(0));
        m.insert("a.example", 3);
        assert_eq!(m.lookup(Some(b"b.example")), Some(0));
        assert_eq!(m.lookup(None), Some(0));
        assert_eq!(m.lookup(Some(b"a.example")), Some(3));
    }
}
