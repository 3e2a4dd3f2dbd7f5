"""Typed stub of beacon's native core (the Rust crate under rust/)."""

from collections.abc import Callable, Sequence
from typing import Any

__version__: str
__git_sha__: str
__build_epoch__: int

class MalformedQuery(ValueError):
    """A query string that cannot be turned into JSON: bad %-encoding or invalid UTF-8
    (rack mode), conflicting parameter types, or over a size, count or depth limit."""

def encode_query(
    query: bytes, mode: str, max_bytes: int, max_params: int, max_depth: int, /
) -> bytes:
    """Returns the compact JSON object for `query` in `mode` ("flat" or "rack"); see
    `beacon.encode_query`, which supplies the config's default limits.

    Raises MalformedQuery for malformed input, ValueError for an unknown mode."""

HEADER_NAMES: tuple[str, ...]
"""The request headers `Ingest.request` reads, in slot order."""
METHODS: tuple[str, ...]
"""Method names by `Ingest.request` method code."""
CODE_CORS: int
CODE_PREFLIGHT: int

def is_valid_timezone(name: str) -> bool:
    """True if `name` is an IANA time zone the native core knows."""

class Ingest:
    """The request path and its backends: `Ingest(cfg)` reads a validated
    `beacon.config.Config`, `start()` starts the backends; then `request()` once per
    request."""

    def __init__(self, cfg: Any) -> None: ...
    def kafka_queue(self) -> KafkaQueue | None:
        """The Kafka backend's queue after `start()`; None when Kafka is off."""
    def start(self) -> None:
        """Starts the backends (queues, spools, the file writer thread)."""
    def request(
        self,
        method: int,
        target: bytes,
        headers: list[bytes | None],
        body: bytes | None,
        peer: bytes | None,
        /,
    ) -> int:
        """Handles one request: `method` an index into `METHODS` (4: any other), `target`
        as sent (origin- or absolute-form), `headers` the values of `HEADER_NAMES` in order
        (None: absent), `body` the POST body as received. Returns the status in the low 16
        bits, with `CODE_CORS` (echo the Origin) and `CODE_PREFLIGHT` (add the preflight
        headers) or-ed in. Counts the outcome per flavor."""
    def handle(self, target: bytes, host: bytes | None = None) -> int:
        """A GET of `target` with only a Host header; returns the status."""
    def check_expect(self, method: int, target: bytes, headers: list[bytes | None], /) -> int:
        """For `Expect: 100-continue`: 0 to continue, else the final answer's code (as
        `request()`), counted."""
    def cors_allowed(self, target: bytes, headers: list[bytes | None], /) -> bool:
        """Whether an answer to this request carries CORS headers."""
    def set_clock(self, ms: int | None) -> None:
        """Injects the receipt time in ms since the epoch (tests); None: system clock."""
    def reopen(self) -> None:
        """Closes every open file; the next write reopens it (SIGHUP)."""
    def shutdown(self) -> None:
        """Drains every queue into its backend, flushes, and stops the threads."""
    def stats(self) -> dict[str, Any]:
        """Outcome counts per flavor and backend counters."""

Message = tuple[int, bytes, bytes | None, int]
"""(flavor_index, value, key, ts_ms): one Kafka message."""

class KafkaQueue:
    """The Kafka feeder's view of its queue and spool. Waits release the GIL."""

    def flavors(self) -> list[str]:
        """Flavor names by index."""
    def pop_batch(self, max: int, timeout_ms: int, gather_ms: int = 0) -> list[Message]:
        """Up to `max` messages, waiting up to `timeout_ms` for the first; [] on timeout.
        With `gather_ms`, fewer than `max` queued messages are held back until `gather_ms`
        have passed since the previous call returned (fewer, bigger batches under load)."""
    def produce_batch(
        self,
        produce: Callable[..., None],
        topics: Sequence[str],
        unknown_topic: str,
        on_delivery: Callable[[Any, Any], None],
        max: int,
        timeout_ms: int,
        gather_ms: int = 0,
    ) -> tuple[int, list[Message], BaseException | None]:
        """Pops like `pop_batch` and calls `produce(topic, value, key, -1, on_delivery,
        None, ts_ms)` (a confluent_kafka `Producer.produce`) for each message, the topic
        being `topics[flavor]` or `unknown_topic`. Returns `(handed_over, rest, error)`:
        if a call raised, `error` is the exception and `rest` that message and the ones
        after it; otherwise `([], None)` for those two."""
    def buffered(self) -> int:
        """Events waiting in the queue."""
    def spool(self, items: list[Message]) -> int:
        """Appends undeliverable messages to the spool; returns how many were written
        (the rest are counted as dropped: the disk failed)."""
    def spool_pending(self) -> int:
        """Spooled messages waiting for replay."""
    def take_spooled(self) -> list[Message] | None:
        """Removes the oldest spool segment and returns its messages (flavor index 65535
        for flavors no longer configured); None when the spool is empty. What cannot be
        delivered must be `spool()`ed again."""
    def hold_spooled(self) -> tuple[list[Message], SpooledSegment] | None:
        """Like `take_spooled`, but the oldest segment stays on disk until
        `SpooledSegment.release()`, so a crash during its replay replays it again
        (at-least-once) instead of losing it. Hold one at a time: until it is released,
        this returns the same segment again. None when the spool is empty."""
    def add_replayed(self, n: int) -> None:
        """Counts messages replayed from the spool into Kafka."""

class TtlStore:
    """A bounded key/value map with per-key expiry (the dedup store). `now_ms` defaults
    to the system clock; pass it to control time in tests."""

    def __init__(self, max_entries: int = 1_000_000) -> None: ...
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

class SpooledSegment:
    """A spool segment held for replay (see `KafkaQueue.hold_spooled`)."""

    def release(self) -> None:
        """Removes the segment from disk once each of its messages is delivered or spooled
        again. Later calls do nothing."""
    def __len__(self) -> int: ...
