"""Shared pieces of the fault scenarios: the load, counting events in files and in Kafka,
and the result row each scenario records."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from support.accounting import wait_accounted
from support.admin import admin_get, stats
from support.beacon_server import BeaconServer
from support.kafka_broker import consume_all
from support.load import BackgroundLoad, LoadResult

FLAVOR = "rel"
HOST = "rel.test"
#: A second flavor on the same topic (`requests()` alternates them): the accounting is
#: checked per flavor, and a shared topic's failed deliveries must find their own flavor.
FLAVOR2 = "rel2"
HOST2 = "rel2.test"
FLAVORS = (FLAVOR, FLAVOR2)
#: Paced request rate of the load (requests/s): steady, and leaves CPU for the broker on a
#: small machine.
RATE = float(os.environ.get("BEACON_RELIABILITY_RATE", "500"))


def load_seconds() -> float:
    """Length of the long loads: `$BEACON_RELIABILITY_LOAD_S`; `make reliability` sets 120
    (what the issue asks), plain `make test` runs the 45 s default."""
    return float(os.environ.get("BEACON_RELIABILITY_LOAD_S", "45"))


def requests(host: str | None = None) -> Iterator[tuple[str, str]]:
    """Request `n` carries `n=<n>`: the event's identity in files and Kafka; it goes to
    `host`, or by default to flavor `rel` for even `n` and `rel2` for odd."""
    i = 0
    while True:
        to = host or (HOST, HOST2)[i % 2]
        yield to, f"/track?ev=view&uid=u{i % 13}&n={i}"
        i += 1


def beacon_config(topic: str | None, bootstrap: str | None, **extra: Any) -> dict[str, Any]:
    """Flavors `rel` (Host `rel.test`, `localhost`) and `rel2` (`rel2.test`), the file
    backend, and Kafka, both flavors to one topic, when `topic` is set."""
    flavors: list[dict[str, Any]] = [
        {"name": FLAVOR, "hosts": [HOST, "localhost"]},
        {"name": FLAVOR2, "hosts": [HOST2]},
    ]
    backends: dict[str, Any] = {"file": {"enabled": True}}
    if topic is not None:
        for flavor in flavors:
            flavor["kafka_topic"] = topic
            flavor["kafka_key_param"] = "uid"
        backends["kafka"] = {"enabled": True, "bootstrap_servers": bootstrap}
    return {"flavors": flavors, "backends": backends, **extra}


@dataclass
class FileScan:
    ids: Counter[int] = field(default_factory=Counter)
    lines: int = 0
    #: lines that do not parse, and files not ending in a newline
    torn: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return sum(c - 1 for c in self.ids.values())


def scan_files(data_dirs: Iterable[Path], flavors: Iterable[str] = FLAVORS) -> FileScan:
    """Every event in the flavors' daily files under each data dir, checking each line."""
    scan = FileScan()
    for data_dir in data_dirs:
        paths = [p for f in flavors for p in sorted((data_dir / f).glob("*.jsonl"))]
        for path in paths:
            raw = path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                scan.torn.append(f"{path}: no final newline, ends {raw[-80:]!r}")
            for i, line in enumerate(raw.splitlines()):
                scan.lines += 1
                try:
                    scan.ids[int(json.loads(line)["params"]["n"])] += 1
                except (ValueError, KeyError, TypeError) as e:
                    scan.torn.append(f"{path}:{i + 1}: {e}: {line[:120]!r}")
    return scan


def scan_kafka(
    bootstrap: str, topic: str, expected: int | None, timeout_s: float = 180
) -> Counter[int]:
    """Every event in the topic: waits for `expected` messages (if given), then reads on
    until idle so that duplicates beyond `expected` are seen too."""
    if expected is not None:
        consume_all(bootstrap, topic, expected, timeout_s, idle_s=timeout_s)
    msgs = consume_all(bootstrap, topic, None, timeout_s, idle_s=8.0)
    return Counter(int(json.loads(m.value() or b"{}")["params"]["n"]) for m in msgs)


def spool_segments(srv: BeaconServer, backend: str) -> list[Path]:
    return sorted((srv.data_dir / "spool" / backend).glob("*.spool"))


def wait_spool_empty(srv: BeaconServer, backend: str, timeout_s: float = 180) -> list[Path]:
    """Waits until the backend's spool has no segment left; returns what is left."""
    deadline = time.monotonic() + timeout_s
    while spool_segments(srv, backend) and time.monotonic() < deadline:
        time.sleep(0.5)
    return spool_segments(srv, backend)


def sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


class Sampler:
    """Polls an instance's /healthz (and /stats) twice a second on a thread: which health
    answers were seen, and whether each backend was ever reported failing / down."""

    def __init__(self, admin_port: int, interval_s: float = 0.5) -> None:
        self.admin_port = admin_port
        self.interval_s = interval_s
        self.health: Counter[str] = Counter()
        self.file_failing_seen = False
        self.kafka_down_seen = False
        self.max_spooled: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                status, body = admin_get(self.admin_port, "/healthz")
                self.health[f"{status} {body.strip()}"] += 1
                backends = stats(self.admin_port)["backends"]
            except (OSError, AssertionError):
                self.health["unreachable"] += 1
                continue
            if "file" in backends and not backends["file"]["up"]:
                self.file_failing_seen = True
            if "kafka" in backends and not backends["kafka"]["up"]:
                self.kafka_down_seen = True

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass
class Row:
    """One line of the `make reliability` table."""

    fault: str
    sent: int
    accepted: int
    in_files: int
    in_kafka: int | None
    dup_kafka: int | None
    lost: int
    dup_files: int = 0
    failed: int = 0
    seconds: float = 0.0
    #: the largest loss allowed (0, or the documented in-memory bound)
    lost_bound: int = 0
    #: events /stats cannot place, summed over backends and instances (rust/src/sinks/
    #: stats.rs: recovered + accepted = delivered + rejected + dropped + buffered +
    #: in_flight + spool_pending), read once the spools drained and before the SIGTERM
    unaccounted: int | None = None
    notes: str = ""

    def describe(self) -> str:
        d = asdict(self)
        return "  ".join(f"{k}={v}" for k, v in d.items() if v not in ("", None))


def accounting(*servers: BeaconServer) -> dict[str, int]:
    """Each instance's backends' unaccounted events (`instance/backend` -> n), and each
    flavor's of each backend (`instance/backend/flavor`; `.../total <figure>`: what the
    flavors miss of the backend's figure), waiting (up to 30 s) for the figures to settle:
    the load has stopped, the spools are empty. Every flavor of the config has its row."""
    out = {}
    for i, srv in enumerate(servers):
        backends = stats(srv.admin_port)["backends"]
        left = wait_accounted(lambda srv=srv: stats(srv.admin_port)["backends"])
        out |= {f"{i}/{name}": n for name, n in left.items()}
        for name, b in backends.items():
            out |= {f"{i}/{name}/{f} has no row": 1 for f in FLAVORS if f not in b["flavors"]}
    return out


def append_row(path: Path, row: Row) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(asdict(row)) + "\n")


FEEDER_RE = re.compile(
    r"kafka: stopped: (\d+) delivered, (\d+) failed, (\d+) replayed, (\d+) spooled"
)


def feeder_summary(log: str) -> str:
    """The Kafka feeder's last `stopped:` line (delivered/failed/replayed/spooled), if any."""
    found = FEEDER_RE.findall(log)
    if not found:
        return "feeder: no summary line"
    d, f, r, s = found[-1]
    return f"feeder: {d} delivered, {f} failed, {r} replayed, {s} spooled"


#: The spool's write buffer (README "Reliability"), and the shortest spool record a test
#: event makes (header fields plus a ~85-byte JSON line): the most events that buffer holds.
SPOOL_BUFFER_BYTES = 64 * 1024
MIN_SPOOL_RECORD_BYTES = 100


def memory_bound(rate: float, ring_capacity: int = 65536, flush_interval_ms: int = 1000) -> int:
    """README's SIGKILL loss bound for one backend, in events: its queue (`ring_capacity`),
    plus `flush_interval_ms` of buffered file lines at `rate`, plus the spool's write
    buffer."""
    flushed = int(rate * flush_interval_ms / 1000) + 1
    return ring_capacity + flushed + SPOOL_BUFFER_BYTES // MIN_SPOOL_RECORD_BYTES


@dataclass
class Outcome:
    """How a loaded run under a fault ended: the load's result, what Kafka holds, the
    spool segments left, and the server's exit code after SIGTERM."""

    result: LoadResult
    elapsed: float
    in_kafka: Counter[int]
    left: list[Path]
    code: int
    #: `accounting()` before the SIGTERM
    unaccounted: dict[str, int]


def stop_and_collect(
    srv: BeaconServer,
    load: BackgroundLoad,
    sampler: Sampler,
    t0: float,
    kafka: tuple[str, str],
    spool: str,
) -> Outcome:
    """Stops the load, reads the topic (`kafka` is `(bootstrap, topic)`) until every sent
    event is there, waits for the `spool` backend's spool to drain, stops the server."""
    result = load.stop()
    elapsed = time.monotonic() - t0
    in_kafka = scan_kafka(*kafka, result.sent)
    left = wait_spool_empty(srv, spool)
    sampler.stop()
    unaccounted = accounting(srv)
    code = srv.stop(signal.SIGTERM)
    return Outcome(result, elapsed, in_kafka, left, code, unaccounted)


def check_exactly_once(
    srv: BeaconServer, out: Outcome, fault: str, notes: str, record: Callable[[Row], None]
) -> None:
    """Records the row, then asserts: clean exit, every request answered 200, spool
    drained, every event accounted for in /stats, no torn line, every event once in the
    files and once in Kafka."""
    result, in_kafka = out.result, out.in_kafka
    files = scan_files([srv.data_dir])
    accepted = result.statuses.get(200, 0)
    sent_ids = set(range(result.sent))
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    lost = len(sent_ids - set(files.ids)) + len(sent_ids - set(in_kafka))
    record(
        Row(
            fault=fault,
            sent=result.sent,
            accepted=accepted,
            in_files=len(files.ids),
            in_kafka=len(in_kafka),
            dup_kafka=dup_kafka,
            dup_files=files.duplicates,
            lost=lost,
            failed=result.sent - accepted,
            seconds=round(out.elapsed, 1),
            unaccounted=sum(out.unaccounted.values()),
            notes=f"{notes}; {feeder_summary(srv.log())}",
        )
    )
    assert out.code == 0, srv.log()[-3000:]
    assert not any(out.unaccounted.values()), out.unaccounted
    assert result.errors == [] and result.unanswered == 0, result.errors[:5]
    assert result.statuses == {200: result.sent}
    assert out.left == [], f"spool not drained: {out.left}"
    assert files.torn == [], files.torn[:5]
    assert set(files.ids) == sent_ids, f"missing in files: {sorted(sent_ids - set(files.ids))[:20]}"
    assert files.duplicates == 0
    assert set(in_kafka) == sent_ids, f"missing in kafka: {sorted(sent_ids - set(in_kafka))[:20]}"
    assert dup_kafka == 0
