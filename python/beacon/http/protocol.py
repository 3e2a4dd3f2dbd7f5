"""The public listener's protocol: httptools parses, one Rust call per request
(`Ingest.handle`) does the rest, and a prebuilt response goes back.

Hot-path rules (DESIGN.md): no per-request dicts, no logging, no formatting. Responses
produced while parsing one `data_received` chunk (pipelining) leave in one write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httptools

from beacon.http.responses import ResponseTable

if TYPE_CHECKING:
    from beacon.server import Server

log = logging.getLogger("beacon.http")

_GET = b"GET"


class _TooLarge(Exception):
    """Raised from a parser callback to abort a request over a size limit."""

    def __init__(self, status: int) -> None:
        self.status = status


_HEAD = b"HEAD"


class TrackProtocol(asyncio.Protocol):
    __slots__ = (
        "_closing",
        "_header_bytes",
        "_host",
        "_out",
        "_parser",
        "_pending_bytes",
        "_responses",
        "_server",
        "_transport",
        "_url",
    )

    def __init__(self, server: Server) -> None:
        self._server = server
        self._responses: ResponseTable = server.responses
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._host: bytes | None = None
        self._out: list[bytes] = []
        self._closing = False
        self._pending_bytes = 0
        self._header_bytes = 0

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        self._server.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connection_closed(self)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._pending_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            if isinstance(e.__context__, _TooLarge):
                self._refuse(e.__context__.status, "too_large")
            else:
                log.exception("http: error handling a request")
                self._refuse(500, "errors")
        except httptools.HttpParserUpgrade:
            self._refuse(400, "upgrade")
        except httptools.HttpParserError:
            self._refuse(400, "bad_http")
        except Exception:
            log.exception("http: error handling a request")
            self._refuse(500, "errors")
        if self._pending_bytes > self._server.max_request_bytes:
            self._refuse(431, "too_large")
        self._flush()

    # httptools callbacks, in the order the parser calls them

    def on_message_begin(self) -> None:
        self._url = b""
        self._host = None
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        # httptools may deliver the target in pieces when it spans reads.
        self._url += url
        if len(self._url) > self._server.max_url_bytes:
            raise _TooLarge(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > self._server.max_header_bytes:
            raise _TooLarge(431)
        if len(name) == 4 and (name == b"Host" or name.lower() == b"host"):
            self._host = value

    def on_message_complete(self) -> None:
        self._pending_bytes = 0
        parser = self._parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive() and not self._server.draining
        if method == _GET:
            status = self._server.ingest.handle(self._url, self._host)
            self._out.append(self._responses.by_mode[keep_alive * 2][status])
        elif method == _HEAD:
            status = self._server.ingest.handle(self._url, self._host)
            self._out.append(self._responses.by_mode[keep_alive * 2 + 1][status])
        else:
            self._server.count_refusal("method")
            self._out.append(self._responses.by_mode[keep_alive * 2][405])
        if not keep_alive:
            self._closing = True

    # helpers

    def _refuse(self, status: int, reason: str) -> None:
        """Answers a request the parser could not finish, then closes: the stream's
        framing can no longer be trusted."""
        self._server.count_refusal(reason)
        self._out.append(self._responses.get(status, keep_alive=False))
        self._closing = True

    def _flush(self) -> None:
        out = self._out
        transport = self._transport
        if transport is None:
            out.clear()
            return
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if self._closing:
            transport.close()

    def close_when_idle(self) -> None:
        """Drain: close now if no request is half-read; otherwise the server's `draining`
        flag turns off keep-alive and the connection closes after that response."""
        if self._pending_bytes == 0 and self._transport is not None and not self._out:
            self._transport.close()
