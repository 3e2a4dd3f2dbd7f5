"""The running server: start-up, the listeners, the once-a-second tick, and the stop (see
`drain.py` and `signals.py`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import signal
import socket
import tracemalloc
from typing import Any

import uvloop

from beacon import datalock
from beacon._beacon import Ingest
from beacon.admin.routes import AdminProtocol
from beacon.config import Config
from beacon.config.source import ConfigSource, Loaded
from beacon.http.frontend import Frontend
from beacon.http.listeners import activated_sockets, bind, describe
from beacon.memory import TRIM_EVERY_S, malloc_trim
from beacon.runtime.drain import drain
from beacon.runtime.reload import Reloader
from beacon.runtime.signals import StopSignals
from beacon.sdnotify import notify
from beacon.state import ServerState

log = logging.getLogger("beacon.http")

BACKLOG = 4096  # capped by net.core.somaxconn
GC_THRESHOLD0 = 300


def _tick_every_second(frontend: Frontend) -> None:
    loop = asyncio.get_running_loop()
    trim = malloc_trim()

    def tick() -> None:
        frontend.tick()
        if trim is not None and frontend.state.tick % TRIM_EVERY_S == 0:
            trim()
        loop.call_later(1.0, tick)

    loop.call_later(1.0, tick)


def _raise_fd_limit() -> None:
    """Connections are file descriptors: take the hard limit (10,000 idle keep-alives
    must not hit a soft limit of 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _start_backends(cfg: Config) -> tuple[Ingest, Any]:
    """The native request path with its backends, and the Kafka feeder if Kafka is on."""
    ingest = Ingest(cfg)
    ingest.start()
    sink = ingest.kafka_sink()
    if sink is None:
        return ingest, None
    from beacon.backends.kafka.feeder import KafkaFeeder

    feeder = KafkaFeeder(cfg, sink)
    feeder.start()
    return ingest, feeder


async def _listen(frontend: Frontend) -> list[asyncio.Server]:
    cfg = frontend.state.cfg
    loop = asyncio.get_running_loop()
    socks = activated_sockets() or [bind(cfg.listen, BACKLOG, reuse_port=cfg.workers > 1)]
    public = []
    for sock in socks:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # backlog: with `sock=` uvloop re-listens with its default of 100, which under a
        # burst of connects drops SYNs and costs clients a 1 s retransmit each.
        public.append(await loop.create_server(frontend.protocol, sock=sock, backlog=BACKLOG))
    on = [n for n, b in (("file", cfg.file), ("kafka", cfg.kafka)) if b.enabled]
    log.info(
        "%slistening on %s, backends: %s; dashboard at http://%s/ (also /stats, /metrics, "
        "/healthz)",
        f"worker {cfg.worker_index}: " if cfg.workers > 1 else "",
        ", ".join(describe(s) for s in socks),
        ", ".join(on) or "none",
        cfg.admin_listen,
    )
    return public


def _settle_gc(state: ServerState) -> None:
    # Everything allocated so far lives for the whole run: keep it out of the GC's way.
    gc.collect()
    gc.freeze()
    # The request path allocates no GC-tracked objects; what does (new connections, admin
    # scrapes) is collected in smaller batches: shorter pauses, the same total work.
    gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])
    state.gc_stats.install()  # after start-up: count the pauses serving causes


async def _main(loaded: Loaded, source: ConfigSource) -> None:
    cfg = loaded.cfg
    _raise_fd_limit()
    if cfg.debug.tracemalloc:
        tracemalloc.start()
    ingest, feeder = _start_backends(cfg)
    state = ServerState(cfg, ingest, loaded.sha256)
    frontend = Frontend(state)
    loop = asyncio.get_running_loop()
    signals = StopSignals()
    if feeder is not None:
        signals.on_hurry.append(feeder.hurry)
    # Handlers first: a listener serves as soon as it exists, and a SIGTERM from then on
    # must drain, not kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals)
    # SIGHUP: reopen the daily files and reload the config file (runtime/reload.py).
    loop.add_signal_handler(signal.SIGHUP, Reloader(state, source))
    try:
        # The admin listener first: once the public one answers, so do /healthz and the
        # dashboard that the start-up line names.
        admin = await loop.create_server(
            lambda: AdminProtocol(state), host=cfg.admin_listen.host, port=cfg.admin_listen.port
        )
        public = await _listen(frontend)
        _tick_every_second(frontend)
        notify("READY=1")
        _settle_gc(state)
        await signals.stop.wait()
        await drain(frontend, public, signals)
        admin.close()
    finally:
        await loop.run_in_executor(None, ingest.shutdown)
        if feeder is not None:
            timeout = 0.0 if signals.hurry.is_set() else state.cfg.shutdown.timeout_s
            await loop.run_in_executor(None, feeder.stop, timeout)
        state.gc_stats.uninstall()
        log.info("stopped; every accepted event is with its backend or its spool")


def run(loaded: Loaded, source: ConfigSource) -> None:
    """Serves `loaded` (read from `source`, which a SIGHUP reads again) until stopped."""
    with datalock.serving(loaded.cfg.data_dir):
        uvloop.run(_main(loaded, source))
