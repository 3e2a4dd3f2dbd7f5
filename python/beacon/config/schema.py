"""The config file's schema: one frozen dataclass per JSON object of the file, every default
written once, on its field (README "Configuration" documents them). Field types say what is
checked (`checks.py`); `load.py` reads a file into these. The native core reads the same
objects (`Ingest(cfg)`): nothing below this module keeps a default of its own."""

# No `from __future__ import annotations`: cattrs reads the `Annotated` field types, and
# string annotations would lose their `Check`s.
from dataclasses import dataclass, field, replace
from pathlib import Path

from beacon.config.checks import (
    Address,
    BatchPaths,
    Boolean,
    Cidrs,
    Directory,
    FlavorRef,
    IpMode,
    ListenAddress,
    LogLevel,
    Name,
    NonNegative,
    OptionalDirectory,
    OptionalName,
    OptionalPositiveInt,
    Origins,
    ParamName,
    Paths,
    Positive,
    PositiveInt,
    ProducerSettings,
    QueryFormat,
    RequestTarget,
    RequiredParams,
    String,
    Strings,
    TimeZone,
)


@dataclass(frozen=True)
class FlavorConfig:
    name: Name
    hosts: Strings = ()
    timezone: TimeZone = "UTC"
    query_format: QueryFormat = "flat"
    kafka_topic: OptionalName = None
    kafka_key_param: ParamName = None
    required_params: RequiredParams = ()
    allowed_origins: Origins = ()
    ip: IpMode = "off"
    user_agent: Boolean = False
    referer: Boolean = False
    honor_dnt: Boolean = False
    json_bodies: Boolean = False
    dedup_param: ParamName = None
    dedup_ttl_s: Positive = 3600.0
    dedup_max_entries: PositiveInt = 1_000_000
    # A UUIDv7 `id` in each event and a Kafka header `id` (README "Event ids").
    event_id: Boolean = True

    @property
    def topic(self) -> str:
        return self.kafka_topic or f"beacon.{self.name}"


@dataclass(frozen=True)
class SpoolWatch:
    """What each backend's spool is held to, the same keys for every backend."""

    # `/healthz` says degraded while the oldest spooled event is older than this.
    spool_max_age_s: OptionalPositiveInt = None


@dataclass(frozen=True)
class FileBackendConfig(SpoolWatch):
    enabled: Boolean = True
    flush_interval_ms: PositiveInt = 1000
    fsync_interval_ms: OptionalPositiveInt = None
    # Batches get 503 while the spool holds more (README "The batch endpoint"); none: never.
    spool_high_water_bytes: OptionalPositiveInt = None


@dataclass(frozen=True)
class KafkaBackendConfig(SpoolWatch):
    enabled: Boolean = False
    bootstrap_servers: String = ""
    producer: ProducerSettings = field(default_factory=dict)
    spool_high_water_bytes: OptionalPositiveInt = None


@dataclass(frozen=True)
class BackendsConfig:
    file: FileBackendConfig = FileBackendConfig()
    kafka: KafkaBackendConfig = KafkaBackendConfig()


@dataclass(frozen=True)
class BadRowsConfig:
    """Refused requests kept for `beacon reprocess` (README "Bad rows"). The limits are the
    server's: `--workers N` gives each worker an Nth."""

    enabled: Boolean = True
    topic: Name = "beacon._bad"
    max_per_s: PositiveInt = 1000
    max_bytes_per_day: PositiveInt = 1 << 30


@dataclass(frozen=True)
class LimitsConfig:
    max_query_bytes: PositiveInt = 8192
    max_params: PositiveInt = 256
    # Rack 2.2's `param_depth_limit`: it raises at 100 levels.
    max_depth: PositiveInt = 100
    max_header_bytes: PositiveInt = 16384
    max_request_bytes: PositiveInt = 65536
    max_body_bytes: PositiveInt = 65536
    max_batch_events: PositiveInt = 500
    max_connections: PositiveInt = 20000
    header_timeout_s: Positive = 10.0
    idle_timeout_s: Positive = 60.0

    @property
    def max_target_bytes(self) -> int:
        """The query limit plus room for the path: longer targets are 414 before parsing."""
        return self.max_query_bytes + 1024


@dataclass(frozen=True)
class ShutdownConfig:
    pre_stop_s: NonNegative = 0.0
    timeout_s: NonNegative = 10.0


@dataclass(frozen=True)
class DebugConfig:
    enabled: Boolean = False
    tracemalloc: Boolean = False
    # Test hook: a request for exactly this target panics inside the Rust request path.
    panic_target: RequestTarget = None


#: Keys of `Config` that the file may not set (the command line sets them).
RUNTIME_KEYS = frozenset({"workers", "worker_index"})


@dataclass(frozen=True)
class Config:
    listen: ListenAddress = Address("127.0.0.1", 8080)  # noqa: RUF009 (frozen: shared is fine)
    admin_listen: ListenAddress = Address("127.0.0.1", 9090)  # noqa: RUF009
    data_dir: Directory = Path("data")
    # The file's `spool_dir`; `spool_dir` (the property) is this process's.
    spool_root: OptionalDirectory = None
    # Absent from the file: the only flavor if there is one (`load.py`), else none.
    default_flavor: FlavorRef = "default"
    flavors: tuple[FlavorConfig, ...] = (FlavorConfig("default"),)
    paths: Paths = ("/track",)
    # The batch endpoint (README "The batch endpoint"); `[]`: none.
    batch_paths: BatchPaths = ("/batch",)
    ring_capacity: PositiveInt = 65536
    backends: BackendsConfig = BackendsConfig()
    limits: LimitsConfig = LimitsConfig()
    bad_rows: BadRowsConfig = BadRowsConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    debug: DebugConfig = DebugConfig()
    trusted_proxies: Cidrs = ()
    allow_public_admin: Boolean = False
    log_level: LogLevel = "info"
    # Set by `serve --workers N` for each worker process, not by the file.
    workers: int = 1
    worker_index: int = 0

    @property
    def file(self) -> FileBackendConfig:
        return self.backends.file

    @property
    def kafka(self) -> KafkaBackendConfig:
        return self.backends.kafka

    @property
    def spool_dir(self) -> Path:
        """This process's spools: one directory per worker when there are several."""
        base = self.spool_root or self.data_dir / "spool"
        return base / f"w{self.worker_index}" if self.workers > 1 else base

    @property
    def file_suffix(self) -> str:
        """Workers never share a daily file: worker i writes `<day>.w<i>.jsonl`."""
        return f".w{self.worker_index}" if self.workers > 1 else ""

    def for_worker(self, index: int, workers: int) -> "Config":
        """Worker `index` of `workers`: its admin listener is `admin_listen` + index."""
        admin = Address(self.admin_listen.host, self.admin_listen.port + index)
        return replace(self, workers=workers, worker_index=index, admin_listen=admin)
