"""The running server: listeners, the once-a-second housekeeping tick, signals, and
drain-and-die."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import resource
import signal
import socket
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable

import uvloop

from beacon._beacon import Ingest
from beacon.admin.gcstats import GcStats
from beacon.admin.routes import AdminProtocol
from beacon.admin.stats import HealthTracker
from beacon.config import Config
from beacon.http.listeners import activated_sockets, bind, describe
from beacon.http.protocol import TrackProtocol
from beacon.http.responses import ResponseTable
from beacon.pipeline import build_ingest

log = logging.getLogger("beacon.http")

BACKLOG = 4096  # capped by net.core.somaxconn
GC_THRESHOLD0 = 300
PREFLIGHT_HEADERS = (
    b"Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
    b"Access-Control-Allow-Headers: Content-Type\r\n"
    b"Access-Control-Max-Age: 86400\r\n"
)


class Server:
    """State shared by every connection of the public listener, and the admin views."""

    def __init__(self, cfg: Config, ingest: Ingest) -> None:
        self.cfg = cfg
        self.ingest = ingest
        self.responses = ResponseTable()
        limits = cfg.limits
        self.max_request_bytes = limits.max_request_bytes
        self.max_header_bytes = limits.max_header_bytes
        self.max_body_bytes = limits.max_body_bytes
        # The query limit plus room for the path: longer targets are 414 before parsing.
        self.max_url_bytes = limits.max_query_bytes + 1024
        # A tick is one second; +1 so at least the full timeout passes before a cut.
        self.request_ticks = math.ceil(limits.header_timeout_s) + 1
        self.idle_ticks = math.ceil(limits.idle_timeout_s) + 1
        self.tick = 0
        self.connections: set[TrackProtocol] = set()
        self.connections_total = 0
        self.refusals: Counter[str] = Counter()
        self.draining = False
        self.started_at = time.time()
        self.gc_stats = GcStats()
        self.health = HealthTracker()
        self.preflight_headers = PREFLIGHT_HEADERS
        # Per flavor index: None (any origin) or the allowed origins.
        self._origins: list[frozenset[bytes] | None] = [
            None if "*" in f.allowed_origins else frozenset(o.encode() for o in f.allowed_origins)
            for f in cfg.flavors
        ]
        self._rid_prefix = os.urandom(3).hex()
        self._rid = 0

    # connections

    def connection_opened(self, conn: TrackProtocol) -> bool:
        if len(self.connections) >= self.cfg.limits.max_connections:
            self.refusals["connections"] += 1
            return False
        self.connections.add(conn)
        self.connections_total += 1
        return True

    def connection_closed(self, conn: TrackProtocol) -> None:
        self.connections.discard(conn)

    def count_refusal(self, reason: str) -> None:
        self.refusals[reason] += 1

    # CORS

    def origin_allowed(self, flavor: int | None, origin: bytes) -> bool:
        if flavor is None:
            return False
        allowed = self._origins[flavor]
        if allowed is None:
            return bool(self.cfg.flavors[flavor].allowed_origins)
        return origin in allowed

    @staticmethod
    def cors_headers(origin: bytes) -> bytes:
        # The origin is echoed rather than `*`: sendBeacon sends credentials, and browsers
        # refuse `*` with credentials.
        return (
            b"Access-Control-Allow-Origin: " + origin + b"\r\n"
            b"Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
        )

    # errors

    def next_request_id(self) -> str:
        self._rid += 1
        return f"{self._rid_prefix}{self._rid:06x}"

    def request_failed(self, exc: BaseException) -> str:
        rid = self.next_request_id()
        self.refusals["errors"] += 1
        log.error("request %s failed: %r", rid, exc, exc_info=exc)
        return rid

    # housekeeping

    def _tick(self) -> None:
        self.tick += 1
        self.responses.refresh()
        for conn in list(self.connections):
            conn.check_timeouts(self.tick, self.request_ticks, self.idle_ticks)
        asyncio.get_running_loop().call_later(1.0, self._tick)

    def start_ticking(self) -> None:
        asyncio.get_running_loop().call_later(1.0, self._tick)


class _Signals:
    """First SIGTERM/SIGINT: drain. Second: hurry (skip waits, spool what is left).
    Signals within a second of the first are the same request (a terminal's Ctrl-C and a
    supervisor's forward, or systemd signalling the whole cgroup)."""

    DEBOUNCE_S = 1.0

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()
        self.first_at = 0.0
        # Called on the second signal, also while a blocking stop step runs in a thread.
        self.on_hurry: list[Callable[[], None]] = []

    def __call__(self) -> None:
        now = time.monotonic()
        if not self.stop.is_set():
            self.first_at = now
            self.stop.set()
        elif now - self.first_at >= self.DEBOUNCE_S and not self.hurry.is_set():
            log.warning("second stop signal: exiting now, spooling what is in memory")
            self.hurry.set()
            for callback in self.on_hurry:
                callback()


async def _wait_or_hurry(signals: _Signals, seconds: float) -> None:
    if seconds > 0 and not signals.hurry.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signals.hurry.wait(), seconds)


async def _drain(server: Server, public: list[asyncio.Server], signals: _Signals) -> None:
    """Health turns 503 for `pre_stop_s`, the listeners close, requests in flight finish
    and keep-alive connections close after their current response."""
    server.draining = True
    notify("STOPPING=1")
    log.info("draining: /healthz is 503 for %.1fs", server.cfg.shutdown.pre_stop_s)
    await _wait_or_hurry(signals, server.cfg.shutdown.pre_stop_s)
    for srv in public:
        srv.close()
    for conn in list(server.connections):
        conn.close_when_idle()
    deadline = time.monotonic() + max(server.cfg.shutdown.timeout_s, 1.0)
    while server.connections and time.monotonic() < deadline and not signals.hurry.is_set():
        await asyncio.sleep(0.05)
    for conn in list(server.connections):
        if conn._transport is not None:
            conn._transport.close()


def _raise_fd_limit() -> None:
    """Connections are file descriptors: take the hard limit (10,000 idle keep-alives
    must not hit a soft limit of 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _main(cfg: Config) -> None:
    _raise_fd_limit()
    if cfg.debug.tracemalloc:
        tracemalloc.start()
    ingest = build_ingest(cfg)
    ingest.start()
    if cfg.debug.panic_target:
        ingest.set_panic_target(cfg.debug.panic_target.encode())
    feeder = None
    sink = ingest.kafka_sink()
    if sink is not None:
        from beacon.backends.kafka.feeder import KafkaFeeder

        feeder = KafkaFeeder(cfg, sink)
        feeder.start()
    server = Server(cfg, ingest)
    loop = asyncio.get_running_loop()
    signals = _Signals()
    if feeder is not None:
        signals.on_hurry.append(feeder.hurry)
    # Handlers first: a listener serves as soon as it exists, and a SIGTERM from then on
    # must drain, not kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals)
    loop.add_signal_handler(signal.SIGHUP, ingest.reopen)
    try:
        socks = activated_sockets() or [bind(cfg.listen, BACKLOG, reuse_port=cfg.workers > 1)]
        public = []
        for sock in socks:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # backlog: with `sock=` uvloop re-listens with its default of 100, which under a
            # burst of connects drops SYNs and costs clients a 1 s retransmit each.
            public.append(
                await loop.create_server(lambda: TrackProtocol(server), sock=sock, backlog=BACKLOG)
            )
        admin = await loop.create_server(
            lambda: AdminProtocol(server), host=cfg.admin_listen.host, port=cfg.admin_listen.port
        )
        server.start_ticking()
        on = [n for n, b in (("file", cfg.file), ("kafka", cfg.kafka)) if b.enabled]
        log.info(
            "%slistening on %s (admin %s), backends: %s",
            f"worker {cfg.worker_index}: " if cfg.workers > 1 else "",
            ", ".join(describe(s) for s in socks),
            cfg.admin_listen,
            ", ".join(on) or "none",
        )
        notify("READY=1")
        # Everything allocated so far lives for the whole run: keep it out of the GC's way.
        gc.collect()
        gc.freeze()
        # The request path allocates no GC-tracked objects; what does (new connections, admin
        # scrapes) is collected in smaller batches: shorter pauses, the same total work.
        gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])
        server.gc_stats.install()  # after start-up: count the pauses serving causes
        await signals.stop.wait()
        await _drain(server, public, signals)
        admin.close()
    finally:
        await loop.run_in_executor(None, ingest.shutdown)
        if feeder is not None:
            timeout = 0.0 if signals.hurry.is_set() else cfg.shutdown.timeout_s
            await loop.run_in_executor(None, feeder.stop, timeout)
        server.gc_stats.uninstall()
        log.info("stopped; every accepted event is with its backend or its spool")


def notify(state: str) -> None:
    """sd_notify(3) when run by systemd with Type=notify; a no-op otherwise."""
    from beacon.sdnotify import notify as sd_notify

    sd_notify(state)


def run(cfg: Config) -> None:
    uvloop.run(_main(cfg))
