"""The JSON config file: parsed into frozen dataclasses, validated with every error
collected and named by its key (`flavors[1].timezone: unknown time zone "Mars/Base"`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from beacon._beacon import is_valid_timezone

T = TypeVar("T")

QUERY_FORMATS = ("flat", "rack")
IP_MODES = ("off", "full", "anonymized")
LOG_LEVELS = ("debug", "info", "warning", "error")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigError(Exception):
    """Every problem found in a config, one `key: problem` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FlavorConfig:
    name: str
    hosts: tuple[str, ...] = ()
    timezone: str = "UTC"
    query_format: str = "flat"
    kafka_topic: str | None = None
    kafka_key_param: str | None = None
    required_params: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    ip: str = "off"
    user_agent: bool = False
    referer: bool = False
    honor_dnt: bool = False
    json_bodies: bool = False
    dedup_param: str | None = None
    dedup_ttl_s: float = 3600.0
    dedup_max_entries: int = 1_000_000

    @property
    def topic(self) -> str:
        return self.kafka_topic or f"beacon.{self.name}"


@dataclass(frozen=True)
class FileBackendConfig:
    enabled: bool = True
    flush_interval_ms: int = 1000
    fsync_interval_ms: int | None = None


@dataclass(frozen=True)
class KafkaBackendConfig:
    enabled: bool = False
    bootstrap_servers: str = ""
    producer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LimitsConfig:
    max_query_bytes: int = 8192
    max_params: int = 256
    max_depth: int = 100
    max_header_bytes: int = 16384
    max_request_bytes: int = 65536
    max_body_bytes: int = 65536
    max_connections: int = 20000
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0


@dataclass(frozen=True)
class ShutdownConfig:
    pre_stop_s: float = 0.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class DebugConfig:
    enabled: bool = False
    tracemalloc: bool = False
    # Test hook: a request for exactly this target panics inside the Rust request path.
    panic_target: str | None = None


@dataclass(frozen=True)
class Config:
    listen: Address = Address("127.0.0.1", 8080)
    admin_listen: Address = Address("127.0.0.1", 9090)
    data_dir: Path = Path("data")
    spool_dir_: Path | None = None
    default_flavor: str | None = "default"
    flavors: tuple[FlavorConfig, ...] = (FlavorConfig("default"),)
    paths: tuple[str, ...] = ("/track",)
    ring_capacity: int = 65536
    file: FileBackendConfig = FileBackendConfig()
    kafka: KafkaBackendConfig = KafkaBackendConfig()
    limits: LimitsConfig = LimitsConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    debug: DebugConfig = DebugConfig()
    trusted_proxies: tuple[str, ...] = ()
    allow_public_admin: bool = False
    log_level: str = "info"
    # Set by `serve --workers N` for each worker process, not by the file.
    workers: int = 1
    worker_index: int = 0

    @property
    def spool_dir(self) -> Path:
        """This process's spools: one directory per worker when there are several."""
        base = self.spool_dir_ or self.data_dir / "spool"
        return base / f"w{self.worker_index}" if self.workers > 1 else base

    @property
    def file_suffix(self) -> str:
        """Workers never share a daily file: worker i writes `<day>.w<i>.jsonl`."""
        return f".w{self.worker_index}" if self.workers > 1 else ""

    def for_worker(self, index: int, workers: int) -> Config:
        """Worker `index` of `workers`: its admin listener is `admin_listen` + index."""
        admin = Address(self.admin_listen.host, self.admin_listen.port + index)
        return replace(self, workers=workers, worker_index=index, admin_listen=admin)

    def with_overrides(
        self, listen: str | None, data_dir: str | None, admin_listen: str | None = None
    ) -> Config:
        """Applies command-line flags, which win over the file."""
        errors = _Errors()
        cfg = self
        if listen is not None:
            addr = errors.check("--listen", listen, _address)
            if addr is not None:
                cfg = replace(cfg, listen=addr)
        if admin_listen is not None:
            addr = errors.check("--admin-listen", admin_listen, _address)
            if addr is not None and not _is_loopback(addr.host) and not cfg.allow_public_admin:
                errors.add("--admin-listen", f"{addr.host} is not a loopback address")
            elif addr is not None:
                cfg = replace(cfg, admin_listen=addr)
        if data_dir is not None:
            cfg = replace(cfg, data_dir=Path(data_dir))
        errors.raise_if_any()
        return cfg


class _Errors:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, key: str, problem: str) -> None:
        self.problems.append(f"{key}: {problem}")

    def check(self, key: str, value: Any, parse: Callable[[Any], T]) -> T | None:
        try:
            return parse(value)
        except ValueError as e:
            self.add(key, str(e))
            return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _address(value: Any) -> Address:
    if not isinstance(value, str):
        raise ValueError(f'expected "host:port", got {json.dumps(value)}')
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'expected "host:port" with a port 1-65535, got {value!r}')
    return Address(host, int(port))


def _kind(expected: type | tuple[type, ...], what: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool) and bool not in (
            expected if isinstance(expected, tuple) else (expected,)
        ):
            raise ValueError(f"expected {what}, got {json.dumps(value)}")
        if not isinstance(value, expected):
            raise ValueError(f"expected {what}, got {json.dumps(value)}")
        return value

    return parse


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {json.dumps(value)}")
    return value


def _positive_int(value: Any) -> int:
    v: int = _kind(int, "a positive integer")(value)
    if v <= 0:
        raise ValueError(f"expected a positive integer, got {v}")
    return v


def _non_negative(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a number >= 0, got {json.dumps(value)}")
    return float(value)


def _positive(value: Any) -> float:
    if _non_negative(value) == 0:
        raise ValueError("expected a number > 0, got 0")
    return float(value)


def _cidr(value: Any) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        raise ValueError(f"expected an address or CIDR block, got {json.dumps(value)}") from None
    return str(value)


def _cidr_list(value: Any) -> tuple[str, ...]:
    return tuple(_cidr(v) for v in _str_list(value))


def _required_params(value: Any) -> tuple[str, ...]:
    names = _str_list(value)
    if len(set(names)) != len(names):
        raise ValueError(f"lists a parameter twice: {json.dumps(value)}")
    if len(names) > 64:
        raise ValueError(f"at most 64 parameters, got {len(names)}")
    return names


def _origins(value: Any) -> tuple[str, ...]:
    origins = _str_list(value)
    bad = [o for o in origins if o != "*" and not re.match(r"^https?://[^/\s]+$", o)]
    if bad:
        raise ValueError(f'expected "*" or origins like "https://example.com", got {bad}')
    return origins


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a list of non-empty strings, got {json.dumps(value)}")
    return tuple(value)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {json.dumps(value)}")
        return str(value)

    return parse


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_timezone(value):
        raise ValueError(f"unknown time zone {json.dumps(value)}")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"expected a name of letters, digits, '.', '_' or '-', got {json.dumps(value)}"
        )
    return value


def _path_list(value: Any) -> tuple[str, ...]:
    paths = _str_list(value)
    bad = [p for p in paths if not p.startswith("/") or "?" in p]
    if bad or not paths:
        raise ValueError(f"expected absolute paths without '?', got {json.dumps(value)}")
    return paths


class _Section:
    """Reads one JSON object, reporting wrong types, bad values and unknown keys."""

    def __init__(self, errors: _Errors, prefix: str, obj: Any) -> None:
        self.errors, self.prefix = errors, prefix
        if not isinstance(obj, dict):
            errors.add(prefix or "config", f"expected an object, got {json.dumps(obj)}")
            obj = {}
        self.obj: dict[str, Any] = obj
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def get(self, name: str, parse: Callable[[Any], T], default: T) -> T:
        self.used.add(name)
        if name not in self.obj:
            return default
        got = self.errors.check(self.key(name), self.obj[name], parse)
        return default if got is None else got

    def optional(self, name: str, parse: Callable[[Any], T]) -> T | None:
        self.used.add(name)
        if self.obj.get(name) is None:
            return None
        return self.errors.check(self.key(name), self.obj[name], parse)

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.obj.get(name)

    def finish(self) -> None:
        for k in sorted(set(self.obj) - self.used):
            self.errors.add(self.key(k), "unknown key")


def _flavor(errors: _Errors, prefix: str, obj: Any) -> FlavorConfig | None:
    s = _Section(errors, prefix, obj)
    name = s.optional("name", _name)
    if name is None and "name" not in s.obj:
        errors.add(s.key("name"), "required")
    flavor = FlavorConfig(
        name=name or "",
        hosts=s.get("hosts", _str_list, ()),
        timezone=s.get("timezone", _timezone, "UTC"),
        query_format=s.get("query_format", _one_of(QUERY_FORMATS), "flat"),
        kafka_topic=s.optional("kafka_topic", _name),
        kafka_key_param=s.optional("kafka_key_param", _kind(str, "a parameter name")),
        required_params=s.get("required_params", _required_params, ()),
        allowed_origins=s.get("allowed_origins", _origins, ()),
        ip=s.get("ip", _one_of(IP_MODES), "off"),
        user_agent=s.get("user_agent", _bool, False),
        referer=s.get("referer", _bool, False),
        honor_dnt=s.get("honor_dnt", _bool, False),
        json_bodies=s.get("json_bodies", _bool, False),
        dedup_param=s.optional("dedup_param", _kind(str, "a parameter name")),
        dedup_ttl_s=s.get("dedup_ttl_s", _positive, 3600.0),
        dedup_max_entries=s.get("dedup_max_entries", _positive_int, 1_000_000),
    )
    s.finish()
    return flavor if name else None


def _flavors(errors: _Errors, value: Any) -> tuple[FlavorConfig, ...]:
    if not isinstance(value, list) or not value:
        errors.add("flavors", "expected a non-empty list of flavor objects")
        return ()
    flavors = [_flavor(errors, f"flavors[{i}]", v) for i, v in enumerate(value)]
    found = tuple(f for f in flavors if f is not None)
    seen_names: set[str] = set()
    seen_hosts: dict[str, str] = {}
    for i, f in enumerate(flavors):
        if f is None:
            continue
        if f.name in seen_names:
            errors.add(f"flavors[{i}].name", f"duplicate flavor {f.name!r}")
        seen_names.add(f.name)
        for h in f.hosts:
            other = seen_hosts.setdefault(h.lower(), f.name)
            if other != f.name:
                errors.add(f"flavors[{i}].hosts", f"host {h!r} already belongs to {other!r}")
    return found


def _file_backend(errors: _Errors, obj: Any) -> FileBackendConfig:
    s = _Section(errors, "backends.file", obj)
    cfg = FileBackendConfig(
        enabled=s.get("enabled", _bool, True),
        flush_interval_ms=s.get("flush_interval_ms", _positive_int, 1000),
        fsync_interval_ms=s.optional("fsync_interval_ms", _positive_int),
    )
    s.finish()
    return cfg


def _kafka_backend(errors: _Errors, obj: Any) -> KafkaBackendConfig:
    s = _Section(errors, "backends.kafka", obj)
    cfg = KafkaBackendConfig(
        enabled=s.get("enabled", _bool, False),
        bootstrap_servers=s.get("bootstrap_servers", _kind(str, "a string"), ""),
        producer=s.get("producer", _kind(dict, "an object of librdkafka settings"), {}),
    )
    if cfg.enabled and not cfg.bootstrap_servers:
        errors.add("backends.kafka.bootstrap_servers", "required when kafka is enabled")
    s.finish()
    return cfg


def _limits(errors: _Errors, obj: Any) -> LimitsConfig:
    s = _Section(errors, "limits", obj)
    d = LimitsConfig()
    cfg = LimitsConfig(
        max_query_bytes=s.get("max_query_bytes", _positive_int, d.max_query_bytes),
        max_params=s.get("max_params", _positive_int, d.max_params),
        max_depth=s.get("max_depth", _positive_int, d.max_depth),
        max_header_bytes=s.get("max_header_bytes", _positive_int, d.max_header_bytes),
        max_request_bytes=s.get("max_request_bytes", _positive_int, d.max_request_bytes),
        max_body_bytes=s.get("max_body_bytes", _positive_int, d.max_body_bytes),
        max_connections=s.get("max_connections", _positive_int, d.max_connections),
        header_timeout_s=s.get("header_timeout_s", _positive, d.header_timeout_s),
        idle_timeout_s=s.get("idle_timeout_s", _positive, d.idle_timeout_s),
    )
    s.finish()
    return cfg


def _shutdown(errors: _Errors, obj: Any) -> ShutdownConfig:
    s = _Section(errors, "shutdown", obj)
    cfg = ShutdownConfig(
        pre_stop_s=s.get("pre_stop_s", _non_negative, 0.0),
        timeout_s=s.get("timeout_s", _non_negative, 10.0),
    )
    s.finish()
    return cfg


def _debug(errors: _Errors, obj: Any) -> DebugConfig:
    s = _Section(errors, "debug", obj)
    cfg = DebugConfig(
        enabled=s.get("enabled", _bool, False),
        tracemalloc=s.get("tracemalloc", _bool, False),
        panic_target=s.optional("panic_target", _kind(str, "a request target")),
    )
    s.finish()
    return cfg


def parse_config(obj: Any) -> Config:
    """Validates a decoded config object; raises ConfigError naming every problem."""
    errors = _Errors()
    top = _Section(errors, "", obj)
    d = Config()
    flavors = _flavors(errors, top.raw("flavors")) if "flavors" in top.obj else d.flavors
    top.used.add("flavors")
    backends = _Section(errors, "backends", top.raw("backends") or {})
    file_cfg = _file_backend(errors, backends.raw("file") or {})
    kafka_cfg = _kafka_backend(errors, backends.raw("kafka") or {})
    backends.finish()
    default = top.get("default_flavor", _kind((str, type(None)), "a flavor name or null"), None)
    if "default_flavor" not in top.obj and len(flavors) == 1:
        default = flavors[0].name
    if default is not None and flavors and default not in {f.name for f in flavors}:
        errors.add("default_flavor", f"{default!r} is not the name of a flavor")
    cfg = Config(
        listen=top.get("listen", _address, d.listen),
        admin_listen=top.get("admin_listen", _address, d.admin_listen),
        data_dir=Path(top.get("data_dir", _kind(str, "a directory path"), str(d.data_dir))),
        spool_dir_=(
            Path(p) if (p := top.optional("spool_dir", _kind(str, "a directory path"))) else None
        ),
        default_flavor=default,
        flavors=flavors,
        paths=top.get("paths", _path_list, d.paths),
        ring_capacity=top.get("ring_capacity", _positive_int, d.ring_capacity),
        file=file_cfg,
        kafka=kafka_cfg,
        limits=_limits(errors, top.raw("limits") or {}),
        shutdown=_shutdown(errors, top.raw("shutdown") or {}),
        debug=_debug(errors, top.raw("debug") or {}),
        trusted_proxies=top.get("trusted_proxies", _cidr_list, ()),
        allow_public_admin=top.get("allow_public_admin", _bool, False),
        log_level=top.get("log_level", _one_of(LOG_LEVELS), d.log_level),
    )
    top.finish()
    if not cfg.allow_public_admin and not _is_loopback(cfg.admin_listen.host):
        errors.add(
            "admin_listen",
            f"{cfg.admin_listen.host} is not a loopback address; the admin listener exposes "
            "internals: set allow_public_admin to true to bind it anyway",
        )
    if cfg.admin_listen == cfg.listen:
        errors.add("admin_listen", "must differ from listen: admin routes are never public")
    errors.raise_if_any()
    return cfg


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: str | Path) -> Config:
    """Reads and validates a JSON config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from e
    # Whole-line `//` comments are allowed (the packaged example is commented); blanking
    # them keeps line numbers right in error messages.
    text = "\n".join("" if ln.lstrip().startswith("//") else ln for ln in text.splitlines())
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        raise ConfigError([f"{path}: invalid JSON at {where}: {e.msg}"]) from None
    return parse_config(obj)
