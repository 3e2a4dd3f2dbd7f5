//! Reads the validated config (`python/beacon/config/schema.py`) into the native core's
//! types. The config owns every default and has checked every value; what is converted
//! here (a time zone name to a zone, `"rack"` to `Mode::Rack`) cannot fail for a config
//! that passed `beacon.config`, and a failure says so.
//!
//! Each struct reads the attributes of the same name (pyo3's `FromPyObject` derive).

use crate::clock::{parse_tz, Stamper};
use crate::cors::Origins;
use crate::flavor::{Flavor, FlavorOptions, HostMap};
use crate::ingest::{BadRows, Batches, DayFiles, RawLimits, RowLimits, Settings, BAD_ROWS_FLAVOR};
use crate::privacy::{Cidr, IpMode};
use crate::query::{Limits, Mode};
use crate::sinks::file::FileSinkConfig;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

#[derive(FromPyObject)]
pub struct FlavorCfg {
    name: String,
    hosts: Vec<String>,
    timezone: String,
    query_format: String,
    /// The Kafka topic (the config's property: `kafka_topic` or `beacon.<name>`).
    topic: String,
    kafka_key_param: Option<String>,
    required_params: Vec<String>,
    allowed_origins: Vec<String>,
    ip: String,
    user_agent: bool,
    referer: bool,
    honor_dnt: bool,
    json_bodies: bool,
    dedup_param: Option<String>,
    dedup_ttl_s: f64,
    dedup_max_entries: usize,
    event_id: bool,
}

#[derive(FromPyObject)]
pub struct LimitsCfg {
    max_query_bytes: usize,
    max_params: usize,
    max_depth: usize,
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    max_header_bytes: usize,
    max_target_bytes: usize,
}

#[derive(FromPyObject)]
pub struct FileCfg {
    pub enabled: bool,
    flush_interval_ms: u64,
    fsync_interval_ms: Option<u64>,
    pub spool_high_water_bytes: Option<u64>,
}

#[derive(FromPyObject)]
pub struct KafkaCfg {
    pub enabled: bool,
    pub spool_high_water_bytes: Option<u64>,
}

#[derive(FromPyObject)]
pub struct BadRowsCfg {
    pub enabled: bool,
    pub topic: String,
    max_per_s: u64,
    max_bytes_per_day: u64,
}

#[derive(FromPyObject)]
pub struct DebugCfg {
    pub panic_target: Option<String>,
}

/// `beacon.config.Config`, as far as the native core reads it.
#[derive(FromPyObject)]
pub struct Cfg {
    pub flavors: Vec<FlavorCfg>,
    pub default_flavor: Option<String>,
    pub paths: Vec<String>,
    pub batch_paths: Vec<String>,
    pub ring_capacity: usize,
    pub limits: LimitsCfg,
    pub trusted_proxies: Vec<String>,
    pub file: FileCfg,
    pub kafka: KafkaCfg,
    pub debug: DebugCfg,
    pub bad_rows: BadRowsCfg,
    /// Processes serving (`--workers`): each keeps its share of the bad rows' limits.
    pub workers: u64,
    pub data_dir: PathBuf,
    /// This process's spool directory (the config's property).
    pub spool_dir: PathBuf,
    pub file_suffix: String,
}

fn unchecked(what: &str, value: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{what} {value:?}: the config should have refused it"
    ))
}

impl Cfg {
    /// The request path's settings: what `Ingest.reconfigure` swaps in.
    pub fn settings(&self) -> PyResult<Settings> {
        let flavors = self
            .flavors
            .iter()
            .map(|f| Ok((f.flavor()?, f.topic.clone())));
        Ok(Settings {
            flavors: flavors.collect::<PyResult<_>>()?,
            hosts: self.hosts()?,
            paths: self.paths.clone(),
            batch: self.batches(),
            limits: self.query_limits(),
            max_body_bytes: self.limits.max_body_bytes,
            raw_limits: self.raw_limits(),
            trusted_proxies: self.trusted_proxies()?,
            panic_target: self
                .debug
                .panic_target
                .as_ref()
                .map(|t| t.as_bytes().into()),
        })
    }

    /// Host → flavor index, with the default flavor.
    fn hosts(&self) -> PyResult<HostMap> {
        let default = match &self.default_flavor {
            Some(d) => Some(
                self.flavors
                    .iter()
                    .position(|f| &f.name == d)
                    .ok_or_else(|| unchecked("default_flavor", d))? as u16,
            ),
            None => None,
        };
        let mut hosts = HostMap::new(default);
        for (i, f) in self.flavors.iter().enumerate() {
            f.hosts.iter().for_each(|h| hosts.insert(h, i as u16));
        }
        Ok(hosts)
    }

    fn query_limits(&self) -> Limits {
        Limits {
            max_bytes: self.limits.max_query_bytes,
            max_params: self.limits.max_params,
            max_depth: self.limits.max_depth,
        }
    }

    fn raw_limits(&self) -> RawLimits {
        RawLimits {
            header_bytes: self.limits.max_header_bytes,
            target_bytes: self.limits.max_target_bytes,
            body_bytes: self.limits.max_body_bytes,
        }
    }

    pub fn batches(&self) -> Batches {
        Batches::new(&self.batch_paths, self.limits.max_batch_events)
    }

    pub fn trusted_proxies(&self) -> PyResult<Vec<Cidr>> {
        self.trusted_proxies
            .iter()
            .map(|p| Cidr::parse(p).ok_or_else(|| unchecked("trusted proxy", p)))
            .collect()
    }

    /// This process's bad rows: its share of the limits, each part of a row within the
    /// request limits; with the file backend, its daily files count at a start.
    pub fn bad_rows(&self) -> Option<BadRows> {
        let b = &self.bad_rows;
        if !b.enabled {
            return None;
        }
        let share = |n: u64| n.div_ceil(self.workers.max(1));
        let limits = RowLimits {
            target: self.limits.max_target_bytes,
            headers: self.limits.max_header_bytes,
            body: self.limits.max_body_bytes,
        };
        let rows = BadRows::new(share(b.max_per_s), share(b.max_bytes_per_day), limits);
        Some(match self.file.enabled {
            true => rows.with_files(DayFiles {
                dir: self.data_dir.join(BAD_ROWS_FLAVOR),
                suffix: self.file_suffix.clone(),
            }),
            false => rows,
        })
    }

    pub fn file_sink(&self) -> FileSinkConfig {
        FileSinkConfig {
            data_dir: self.data_dir.clone(),
            flush_interval: Duration::from_millis(self.file.flush_interval_ms),
            fsync_interval: self.file.fsync_interval_ms.map(Duration::from_millis),
            retry_interval: Duration::from_secs(1),
            file_suffix: self.file_suffix.clone(),
        }
    }
}

impl FlavorCfg {
    fn flavor(&self) -> PyResult<Flavor> {
        let tz = parse_tz(&self.timezone).ok_or_else(|| unchecked("timezone", &self.timezone))?;
        let mode = Mode::parse(&self.query_format)
            .ok_or_else(|| unchecked("query_format", &self.query_format))?;
        let ip = IpMode::parse(&self.ip).ok_or_else(|| unchecked("ip", &self.ip))?;
        let opts = FlavorOptions {
            mode,
            required: self.required_params.clone(),
            key_param: self.kafka_key_param.clone(),
            ip,
            user_agent: self.user_agent,
            referer: self.referer,
            honor_dnt: self.honor_dnt,
            json_bodies: self.json_bodies,
            dedup_param: self.dedup_param.clone(),
            dedup_ttl_ms: (self.dedup_ttl_s * 1000.0) as i64,
            dedup_max_entries: self.dedup_max_entries,
            origins: Origins::new(&self.allowed_origins),
            event_id: self.event_id,
        };
        Ok(Flavor::new(&self.name, Stamper::new(tz), opts))
    }
}
