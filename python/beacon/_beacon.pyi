"""Typed stub of beacon's native core (the Rust crate under rust/)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, final

__all__ = [
    "BAD_ROWS_FLAVOR",
    "BATCH_ANSWERS",
    "CODE_BATCH",
    "CODE_CORS",
    "CODE_HEAD",
    "CODE_PREFLIGHT",
    "EXTRA_COUNTERS",
    "HEADER_NAMES",
    "MAX_FLAVORS",
    "METHODS",
    "Ingest",
    "KafkaSink",
    "MalformedQuery",
    "TtlStore",
    "__build_epoch__",
    "__git_sha__",
    "__version__",
    "backend_flavor_stats",
    "backend_stats",
    "encode_query",
    "is_valid_timezone",
]

__version__: str
__git_sha__: str
__build_epoch__: int

class MalformedQuery(ValueError):
    """A query string that cannot be turned into JSON: bad %-encoding or invalid UTF-8
    (rack mode), conflicting parameter types, or over a size, count or depth limit."""

def encode_query(query: bytes, mode: str, max_bytes: int, max_params: int, max_depth: int) -> bytes:
    """Returns the compact JSON object for `query` in `mode` ("flat" or "rack"); see
    `beacon.encode_query`, which supplies the config's default limits.

    Raises MalformedQuery for malformed input, ValueError for an unknown mode."""

HEADER_NAMES: tuple[str, ...]
"""The request headers `Ingest.request` reads, in slot order."""
METHODS: tuple[str, ...]
"""Method names by `Ingest.request` method code."""
MAX_FLAVORS: int
"""Most flavors a config may have: each backend keeps per-flavor figures in fixed rows."""
CODE_CORS: int
CODE_PREFLIGHT: int
CODE_HEAD: int
BAD_ROWS_FLAVOR: str
"""The pseudo-flavor of bad rows: their directory under `data_dir` (README "Bad rows")."""
CODE_BATCH: int
"""A batch answer: bits 20-51 of the code hold its number + 1 (0: none), bits 52-59 its
row of `BATCH_ANSWERS`."""
BATCH_ANSWERS: tuple[tuple[str, str], ...]
"""Per batch answer: the `error` name (row 0: accepted) and the key of its number."""
EXTRA_COUNTERS: tuple[str, ...]
"""The keys of a flavor's `stats()` row that are not one request's outcome (batch events,
multipart file parts skipped, ...)."""

def is_valid_timezone(name: str) -> bool:
    """True if `name` is an IANA time zone the native core knows."""

@final
class Ingest:
    """The request path and its backends: `Ingest(cfg)` reads a validated
    `beacon.config.Config`, `start()` starts the backends; then `request()` once per
    request."""

    def __new__(cls, cfg: Any) -> Ingest: ...
    def kafka_sink(self) -> KafkaSink | None:
        """The Kafka backend's sink after `start()`; None when Kafka is off."""
    def start(self) -> None:
        """Starts the backends (queues, spools, the file writer thread)."""
    def reconfigure(self, cfg: Any) -> None:
        """Swaps in a new validated config's request-path settings (flavors matched by
        name, hosts, paths, limits, privacy switches, Kafka topics) for the next request;
        its restart-only keys are not read. Raises ValueError, changing nothing, when it
        cannot be taken."""
    def request(
        self,
        method: int,
        target: bytes,
        headers: list[bytes | None],
        body: bytes | None,
        peer: bytes | None,
    ) -> int:
        """Handles one request: `method` an index into `METHODS` (4: any other), `target`
        as sent (origin- or absolute-form), `headers` the values of `HEADER_NAMES` in order
        (None: absent), `body` the POST body as received. Returns the status in the low 16
        bits, with `CODE_CORS` (echo the Origin), `CODE_PREFLIGHT` (add the preflight
        headers), `CODE_HEAD` and `CODE_BATCH` (a batch answer's body, above the flags)
        or-ed in. Counts the outcome per flavor."""
    def request_raw(self, data: bytes, peer: bytes | None) -> int:
        """The fast path, for a read that is one whole request the HTTP parser accepted:
        the code as `request()` gives it, or -1 when the read needs the full parser (a batch
        path's request always does). With
        `CODE_CORS`, bits 20-39 hold where the `Origin` value starts in `data` and bits
        40-59 its length."""
    def handle(self, target: bytes, host: bytes | None = None) -> int:
        """A GET of `target` with only a Host header; returns the status."""
    def check_expect(self, method: int, target: bytes, headers: list[bytes | None]) -> int:
        """For `Expect: 100-continue`: 0 to continue, else the final answer's code (as
        `request()`), counted."""
    def cors_allowed(self, target: bytes, headers: list[bytes | None]) -> bool:
        """Whether an answer to this request carries CORS headers."""
    def reprocess(
        self,
        method: int,
        target: bytes,
        headers: list[bytes | None],
        body: bytes | None,
        ts_ms: int,
        event_id: str,
    ) -> tuple[str, int]:
        """`beacon reprocess`: a kept request (arguments as `request()`) again, as received
        at `ts_ms` and with the event id `event_id` (a UUID), through the current config.
        Returns its outcome's name and status. Raises ValueError for a malformed id."""
    def set_clock(self, ms: int | None) -> None:
        """Injects the receipt time in ms since the epoch (tests); None: system clock."""
    def reopen(self) -> None:
        """Closes every open file; the next write reopens it (SIGHUP)."""
    def shutdown(self) -> None:
        """Drains every queue into its backend, flushes, and stops the threads."""
    def stats(self) -> dict[str, Any]:
        """Outcome counts per flavor and backend counters."""

_Route = Literal["fast", "live", "replay"]
"""Which producer a message went through: the failures-only one (live traffic while Kafka
is up), the reporting one for live traffic while down, or the reporting one for the replay."""

_Verdict = Literal["full", "reject", "down", "fatal", "raise"]
"""What an exception from `Producer.produce()` means (see `KafkaSink.attach`)."""

_BackendStat = tuple[str, str, Literal["counter", "gauge"], str, str | None]
"""One row of the backend stats schema: (key, metric, kind, help, only)."""

def backend_stats() -> list[_BackendStat]:
    """The backend stats schema (rust/src/sinks/stats.rs): per row the key in a backend's
    `/stats` object, the Prometheus family (without `_total`; label `backend`), its kind,
    its help, and the one backend that reports it (None: every backend)."""

def backend_flavor_stats() -> list[_BackendStat]:
    """The per-flavor rows of the same schema: the keys of `backends.<name>.flavors.<flavor>`
    in `/stats`, their families in `/metrics` (labels `backend` and `flavor`)."""

@final
class KafkaSink:
    """The Kafka backend (rust/src/sinks/kafka/): its queue, gather window, spool and
    replay, rejected log and counters. The feeder thread drives it: it attaches the
    producers, hands live and replayed messages over, polls, and reports deliveries.
    Waits and disk I/O release the GIL."""

    def topics(self) -> list[str]:
        """Kafka topics by slot (the flavor index events carry), as the Ingest set them."""
    def configure(
        self,
        *,
        rejected_dir: str | Path,
        buffer_messages: int,
        buffer_kbytes: int,
        topics: list[str] | None = None,
    ) -> None:
        """The rejected log's directory, and librdkafka's `queue.buffering.max.messages` /
        `.kbytes` (the replay keeps within a share); `topics` by slot replaces the ones
        the Ingest set from the config (tests)."""
    def attach(
        self,
        *,
        fast: Callable[..., None],
        reporter: Callable[..., None],
        on_fast: Callable[[Any, Any], None],
        on_live: Callable[[Any, Any], None],
        on_replay: Callable[[Any, Any], None],
        refusal: Callable[[BaseException], tuple[_Verdict, str]],
    ) -> None:
        """The two producers' bound `produce` (called positionally: `topic, value, key, -1,
        on_delivery, None, ts_ms`), the delivery callback of each route, and `refusal`,
        which sorts an exception `produce` raised."""
    def detach(self) -> None:
        """Drops what `attach` handed over."""
    def produce_live(self, drain: bool = False) -> bool:
        """Hands the next live batch over (the gather window decides when; `drain`: at
        once). True when librdkafka's buffer is full: poll before the next call. Raises
        what `produce` raised when `refusal` says "raise" (the rest is spooled)."""
    def replay(self) -> int:
        """Hands the next chunk of the spool over, within the replay's rate; how many."""
    def settle(self, fast_held: int) -> None:
        """After each poll: `fast_held` is `len()` of the failures-only producer."""
    def probe_due(self) -> bool:
        """Kafka is down and nothing is being sent: time for a metadata probe."""
    def delivered(self, route: _Route) -> None:
        """Delivery report: acknowledged."""
    def fail(
        self,
        route: _Route,
        topic: str,
        value: bytes,
        key: bytes | None,
        ts_ms: int,
        error: str,
        quiet: bool = False,
    ) -> None:
        """Delivery report: failed after librdkafka's retries (`quiet`: our own purge). The
        message goes to the spool; `ts_ms` < 0: read from the event."""
    def reject(
        self, route: _Route, topic: str, value: bytes, key: bytes | None, ts_ms: int, error: str
    ) -> None:
        """Delivery report: refused for good. The message goes to the rejected log."""
    def brokers_down(self, error: str) -> None:
        """librdkafka's error callback: all brokers are down."""
    def fatal_error(self, error: str) -> None:
        """librdkafka's error callback: a fatal error; the producers must be replaced."""
    def brokers_reachable(self) -> None:
        """The metadata probe succeeded."""
    def needs_new_producers(self) -> bool:
        """A fatal error happened: purge the producers and attach new ones."""
    def producers_replaced(self) -> None:
        """New producers are attached (after their predecessors' purge was reported)."""
    def end_replay(self) -> None:
        """Shutdown: what the replay has not handed over goes back to the spool."""
    def close(self) -> None:
        """Stop: notes a replayed spool segment whose messages are not all reported."""
    def buffered(self) -> int:
        """Events waiting in memory: the queue and a batch waiting for room."""
    def take_notes(self) -> list[tuple[int, str]]:
        """Log lines since the last call: (logging level, message)."""
    def stats(self) -> dict[str, Any]:
        """The backend's figures, as in `/stats`."""

@final
class TtlStore:
    """A bounded key/value map with per-key expiry (the dedup store). `now_ms` defaults
    to the system clock; pass it to control time in tests."""

    def __new__(cls, max_entries: int = 1_000_000) -> TtlStore: ...
    def get(self, key: bytes, now_ms: int | None = None) -> bytes | None:
        """The value of a live key."""
    def set(self, key: bytes, value: bytes, ttl_s: float, now_ms: int | None = None) -> None:
        """Sets a key for `ttl_s` seconds, evicting the soonest-to-expire key when full."""
    def ttl(self, key: bytes, now_ms: int | None = None) -> float | None:
        """Seconds left for a live key; None when absent or expired."""
    def __len__(self) -> int: ...
    @property
    def evicted(self) -> int:
        """Live keys pushed out early because the store was full."""
