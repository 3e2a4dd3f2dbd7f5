"""The admin listener's HTTP protocol and routes. One request per connection: scrapers,
health checkers and the dashboard's once-a-second poll open a connection each time, and
nothing here is hot."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable, Sequence
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httptools

from beacon import __version__
from beacon._beacon import EXTRA_COUNTERS, __build_epoch__, __git_sha__
from beacon.admin import dashboard, metrics, stats
from beacon.http.responses import REASONS

if TYPE_CHECKING:
    from beacon.admin.view import AdminView

log = logging.getLogger("beacon.admin")

Route = Callable[["AdminView"], tuple[int, str, bytes]]


def _json(obj: Any) -> tuple[int, str, bytes]:
    # Compact: json's C encoder (indent= falls back to Python closures that leave cycles).
    return 200, "application/json", json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def health(view: AdminView, doc: dict[str, Any]) -> tuple[int, str]:
    """/healthz's status and text: 503 while draining or while a backend loses events; a
    backend that is down but spooling keeps 200 with a `degraded` note (beacon.health)."""
    if view.draining:
        return 503, "draining"
    failing, degraded = view.health.check(doc)
    if failing:
        return 503, f"backend failing: {', '.join(failing)}"
    if degraded:
        return 200, f"ok (degraded: {', '.join(degraded)})"
    return 200, "ok"


def healthz(view: AdminView) -> tuple[int, str, bytes]:
    status, text = health(view, stats.collect(view))
    return status, "text/plain", f"{text}\n".encode()


def stats_route(view: AdminView) -> tuple[int, str, bytes]:
    return _json(stats.collect(view))


def stats_schema(view: AdminView) -> tuple[int, str, bytes]:
    """What each backend figure is (rust/src/sinks/stats.rs): the dashboard draws counters as
    rates and gauges as they are, without a list of its own; and which keys of a flavor's
    counts are not request outcomes (it does not add them up as requests)."""

    def rows(schema: Sequence[tuple[str, str, str, str, str | None]]) -> list[dict[str, Any]]:
        return [
            {"key": key, "metric": metric, "kind": kind, "help": help_, "only": only}
            for key, metric, kind, help_, only in schema
        ]

    return _json(
        {
            "backend": rows(metrics.BACKEND_STATS),
            "backend_flavor": rows(metrics.BACKEND_FLAVOR_STATS),
            "flavor_counters": list(EXTRA_COUNTERS),
        }
    )


def metrics_route(view: AdminView) -> tuple[int, str, bytes]:
    doc = stats.collect(view)
    healthy = health(view, doc)[0] == 200
    return 200, metrics.CONTENT_TYPE, metrics.render(doc, view.gc_stats.histogram(), healthy)


def _asset(ctype: str, body: bytes) -> Route:
    return lambda view: (200, ctype, body)


def _human(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def info(view: AdminView) -> tuple[int, str, bytes]:
    now = time.time()
    return _json(
        {
            "version": __version__,
            "git_sha": __git_sha__,
            "build_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(__build_epoch__)),
            "build_epoch": __build_epoch__,
            "python": sys.version.split()[0],
            "start_time": view.started_at,
            "server_time": now,
            "uptime_s": round(now - view.started_at, 3),
            "uptime": _human(now - view.started_at),
            "config": stats.config_in_force(view),
        }
    )


def debug_stacks(view: AdminView) -> tuple[int, str, bytes]:
    names = {t.ident: t.name for t in threading.enumerate()}
    out = []
    native = {t.native_id for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        out.append(f"--- thread {names.get(ident, '?')} ({ident})")
        out.extend(line.rstrip("\n") for line in traceback.format_stack(frame))
    # Threads Python does not run (the Rust file writer, librdkafka): name and tid only.
    out.append("--- native threads (no Python stack)")
    for task in sorted(Path("/proc/self/task").iterdir(), key=lambda p: int(p.name)):
        if int(task.name) not in native:
            with contextlib.suppress(OSError):
                out.append(f"{(task / 'comm').read_text().strip()} (tid {task.name})")
    return 200, "text/plain", ("\n".join(out) + "\n").encode()


def debug_gc(view: AdminView) -> tuple[int, str, bytes]:
    doc: dict[str, Any] = {
        "pauses": view.gc_stats.snapshot(),
        "counts": gc.get_count(),
        "thresholds": gc.get_threshold(),
        "stats": gc.get_stats(),
        "tracemalloc": tracemalloc.is_tracing(),
    }
    if tracemalloc.is_tracing():
        top = tracemalloc.take_snapshot().statistics("lineno")[:25]
        doc["top_allocations"] = [
            {"site": str(s.traceback[0]), "size_bytes": s.size, "count": s.count} for s in top
        ]
    return _json(doc)


ROUTES: dict[bytes, Route] = {
    b"/healthz": healthz,
    b"/stats": stats_route,
    b"/stats/schema": stats_schema,
    b"/metrics": metrics_route,
    b"/info": info,
    # The dashboard: `/` and its scripts and styles (beacon/admin/dashboard/).
    **{path: _asset(ctype, body) for path, (ctype, body) in dashboard.ASSETS.items()},
}
DEBUG_ROUTES: dict[bytes, Route] = {b"/debug/stacks": debug_stacks, b"/debug/gc": debug_gc}


class AdminProtocol(asyncio.Protocol):
    def __init__(self, view: AdminView) -> None:
        self.view = view
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        # Break the parser <-> protocol cycle: freed now, not by the GC.
        self.parser = None  # type: ignore[assignment]
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.reply(400, "text/plain", b"bad request\n")
        if self.received > 65536:
            self.reply(431, "text/plain", b"too large\n")

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path = httptools.parse_url(self.url).path
        route = ROUTES.get(path)
        if route is None and self.view.cfg.debug.enabled:
            route = DEBUG_ROUTES.get(path)
        if self.parser.get_method() not in (b"GET", b"HEAD"):
            self.reply(405, "text/plain", b"GET only\n")
        elif route is None:
            self.reply(404, "text/plain", b"not found\n")
        else:
            # A /stats document is a few hundred short-lived containers: with the collector
            # paused they are freed before they count towards a collection, so scrapes do not
            # cause GC pauses on the request path. (Allocations minus frees trigger gen0.)
            gc.disable()
            try:
                self.reply(*route(self.view))
            except Exception:
                log.exception("%s failed", path.decode(errors="replace"))
                self.reply(500, "text/plain", b"internal error\n")
            finally:
                gc.enable()

    def reply(self, status: int, ctype: str, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nServer: beacon\r\n"
            f"Date: {formatdate(usegmt=True)}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        if self.parser.get_method() == b"HEAD":
            body = b""
        self.transport.write(head.encode() + body)
        self.transport.close()
