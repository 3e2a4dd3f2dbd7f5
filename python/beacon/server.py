"""The running server: listeners, signals, drain and shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections import Counter
from typing import TYPE_CHECKING

import uvloop

from beacon._beacon import Ingest
from beacon.config import Config
from beacon.http.protocol import TrackProtocol
from beacon.http.responses import ResponseTable
from beacon.pipeline import build_ingest

if TYPE_CHECKING:
    from beacon.backends.kafka import KafkaFeeder

log = logging.getLogger("beacon.http")


class Server:
    """State shared by every connection of the public listener."""

    def __init__(self, cfg: Config, ingest: Ingest) -> None:
        self.cfg = cfg
        self.ingest = ingest
        self.responses = ResponseTable()
        self.max_request_bytes = cfg.limits.max_request_bytes
        self.max_header_bytes = cfg.limits.max_header_bytes
        # The query limit plus room for the path: longer targets are 414 before parsing.
        self.max_url_bytes = cfg.limits.max_query_bytes + 1024
        self.connections: set[TrackProtocol] = set()
        self.connections_total = 0
        self.refusals: Counter[str] = Counter()
        self.draining = False
        self.kafka: KafkaFeeder | None = None

    def connection_opened(self, conn: TrackProtocol) -> None:
        self.connections.add(conn)
        self.connections_total += 1

    def connection_closed(self, conn: TrackProtocol) -> None:
        self.connections.discard(conn)

    def count_refusal(self, reason: str) -> None:
        self.refusals[reason] += 1

    def _refresh_date(self) -> None:
        self.responses.refresh()
        asyncio.get_running_loop().call_later(1.0, self._refresh_date)

    async def serve(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        listen = self.cfg.listen
        srv = await loop.create_server(
            lambda: TrackProtocol(self),
            host=listen.host,
            port=listen.port,
            reuse_address=True,
            backlog=4096,
        )
        for sock in srv.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._refresh_date()
        on = [n for n, b in (("file", self.cfg.file), ("kafka", self.cfg.kafka)) if b.enabled]
        backends = ", ".join(on) or "none"
        log.info("http: listening on %s, backends: %s", listen, backends)
        await stop.wait()
        await self._drain(srv)

    async def _drain(self, srv: asyncio.Server) -> None:
        """Stop accepting, let requests in flight finish, close idle keep-alives."""
        self.draining = True
        srv.close()
        for conn in list(self.connections):
            conn.close_when_idle()
        for _ in range(50):  # up to 5 s for half-read requests
            if not self.connections:
                break
            await asyncio.sleep(0.1)


async def _main(cfg: Config) -> None:
    ingest = build_ingest(cfg)
    ingest.start()
    feeder = None
    queue = ingest.kafka_queue()
    if queue is not None:
        from beacon.backends.kafka import KafkaFeeder

        feeder = KafkaFeeder(cfg, queue)
        feeder.start()
    server = Server(cfg, ingest)
    server.kafka = feeder
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, ingest.reopen)
    try:
        # Everything allocated so far lives for the whole run: keep it out of the GC's way.
        gc.collect()
        gc.freeze()
        await server.serve(stop)
    finally:
        ingest.shutdown()
        if feeder is not None:
            feeder.stop(timeout_s=10.0)
        log.info("http: stopped; every accepted event is with its backend")


def run(cfg: Config) -> None:
    uvloop.run(_main(cfg))
