"""The public listener's protocol: httptools parses, one Rust call per request
(`Ingest.handle`) does the rest, and a prebuilt response goes back.

Hot-path rules (DESIGN.md): no per-request dicts, no logging, no formatting. The headers
that matter are kept in a fixed list reset by slice assignment; responses produced while
parsing one `data_received` chunk (pipelining) leave in one write.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httptools

from beacon.http.responses import ResponseTable, with_headers

if TYPE_CHECKING:
    from beacon.server import Server

# Slots of `TrackProtocol._h`, the headers the request path reads.
H_HOST, H_UA, H_REFERER, H_XFF, H_DNT, H_GPC, H_ORIGIN, H_CTYPE, H_CLEN = range(9)
_NAMES = {
    b"Host": H_HOST,
    b"User-Agent": H_UA,
    b"Referer": H_REFERER,
    b"X-Forwarded-For": H_XFF,
    b"DNT": H_DNT,
    b"Sec-GPC": H_GPC,
    b"Origin": H_ORIGIN,
    b"Content-Type": H_CTYPE,
    b"Content-Length": H_CLEN,
}
# Canonical spellings hit on the first lookup; other casings are lowered only when the
# length could match, so unrelated headers cost one dict miss.
_WANTED = {**_NAMES, **{k.lower(): v for k, v in _NAMES.items()}}
_WANTED_LENGTHS = frozenset(len(k) for k in _NAMES)
_NO_HEADERS: list[bytes | None] = [None] * len(_NAMES)

_GET, _HEAD, _POST, _OPTIONS = b"GET", b"HEAD", b"POST", b"OPTIONS"
# Ingest.handle body kinds.
_FORM, _JSON, _TEXT = 0, 1, 2


class _TooLarge(Exception):
    """Raised from a parser callback to abort a request over a size limit."""

    def __init__(self, status: int) -> None:
        self.status = status


def body_kind(content_type: bytes | None) -> int | None:
    """Ingest body kind for a Content-Type; None: unsupported."""
    if content_type is None:
        return _TEXT  # sendBeacon with a string body sends text/plain; be lenient
    mime = content_type.split(b";", 1)[0].strip().lower()
    if mime == b"application/x-www-form-urlencoded":
        return _FORM
    if mime == b"text/plain":
        return _TEXT
    if mime == b"application/json":
        return _JSON
    return None


class TrackProtocol(asyncio.Protocol):
    __slots__ = (
        "_begin_tick",
        "_body",
        "_by_mode",
        "_closing",
        "_h",
        "_handle",
        "_header_bytes",
        "_in_request",
        "_last_tick",
        "_out",
        "_parser",
        "_peer",
        "_pending_bytes",
        "_responses",
        "_server",
        "_transport",
        "_url",
    )

    def __init__(self, server: Server) -> None:
        self._server = server
        self._responses: ResponseTable = server.responses
        # Cached once per connection: `ingest.handle` would build a bound method object on
        # every request, and the response table is updated in place.
        self._handle = server.ingest.handle
        self._by_mode = server.responses.by_mode
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._h: list[bytes | None] = list(_NO_HEADERS)
        self._body: bytes | None = None
        self._peer: bytes | None = None
        self._out: list[bytes] = []
        self._closing = False
        # A new connection owes us a request: silence counts against the header timeout.
        self._in_request = True
        self._pending_bytes = 0
        self._header_bytes = 0
        self._begin_tick = self._last_tick = server.tick

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        if not self._server.connection_opened(self):
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._peer = str(peer[0]).encode()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connection_closed(self)
        self._transport = None
        # The parser holds this protocol (its callbacks) and this protocol the parser: break
        # the cycle so the pair is freed now, by reference counting, not by a GC pause.
        self._parser = None  # type: ignore[assignment]

    def pause_writing(self) -> None:
        # The client is not reading its answers (a pipelining flood): stop reading its
        # requests until the write buffer drains, so memory stays bounded.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._last_tick = self._server.tick
        self._pending_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            if isinstance(e.__context__, _TooLarge):
                self._refuse(e.__context__.status, "too_large")
            else:
                self._error(e.__context__ or e, close=True)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "upgrade")
        except httptools.HttpParserError:
            self._refuse(400, "bad_http")
        if self._pending_bytes > self._server.max_request_bytes:
            self._refuse(431, "too_large")
        # _flush(), inlined: this runs once per read.
        out = self._out
        if out:
            transport = self._transport
            if transport is not None:
                transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if self._closing and self._transport is not None:
            self._transport.close()

    # httptools callbacks, in the order the parser calls them

    # No on_message_begin: one Python call less per request. Per-request state is reset
    # at the end of on_message_complete instead, and a request's start is its first URL byte.

    def on_url(self, url: bytes) -> None:
        if not self._url:
            self._in_request = True
            self._begin_tick = self._server.tick
        # httptools may deliver the target in pieces when it spans reads.
        self._url += url
        if len(self._url) > self._server.max_url_bytes:
            raise _TooLarge(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        n = self._header_bytes + len(name) + len(value)
        self._header_bytes = n
        if n > self._server.max_header_bytes:
            raise _TooLarge(431)
        slot = _WANTED.get(name)
        if slot is None:
            if len(name) not in _WANTED_LENGTHS:
                return
            slot = _WANTED.get(name.lower())
            if slot is None:
                return
        self._h[slot] = value
        if slot == H_CLEN and value.isdigit() and int(value) > self._server.max_body_bytes:
            raise _TooLarge(413)

    def on_body(self, body: bytes) -> None:
        self._body = body if self._body is None else self._body + body
        if len(self._body) > self._server.max_body_bytes:
            raise _TooLarge(413)

    def on_message_complete(self) -> None:
        self._pending_bytes = 0
        self._in_request = False
        parser = self._parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive() and not self._server.draining
        if method == _GET:
            self._track(None, _FORM, False, keep_alive)
        elif method == _HEAD:
            self._track(None, _FORM, True, keep_alive)
        elif method == _POST:
            kind = body_kind(self._h[H_CTYPE])
            if kind is None:
                self._respond(415, False, keep_alive, "unsupported_media_type")
            else:
                self._track(self._body or b"", kind, False, keep_alive)
        elif method == _OPTIONS:
            self._preflight(keep_alive)
        else:
            self._respond(405, False, keep_alive, "method")
        if not keep_alive:
            self._closing = True
        # Ready for the next request on this connection.
        self._url = b""
        self._h[:] = _NO_HEADERS
        self._body = None
        self._header_bytes = 0

    # request handling

    def _track(self, body: bytes | None, kind: int, head: bool, keep_alive: bool) -> None:
        h = self._h
        try:
            status = self._handle(
                self._url,
                h[H_HOST],
                body,
                kind,
                self._peer,
                h[H_XFF],
                h[H_UA],
                h[H_REFERER],
                h[H_DNT] == b"1" or h[H_GPC] == b"1",
            )
        except Exception as e:
            self._error(e, close=not keep_alive)
            return
        except BaseException as e:  # a Rust panic arrives as pyo3's PanicException
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            self._error(e, close=not keep_alive)
            return
        if body is not None and status == 200:
            status = 204  # sendBeacon: nothing to send back
        if h[H_ORIGIN] is None and status < 400:
            self._out.append(self._by_mode[keep_alive * 2 + head][status])
        else:
            self._respond(status, head, keep_alive, None)

    def _preflight(self, keep_alive: bool) -> None:
        origin = self._h[H_ORIGIN]
        flavor = self._server.ingest.flavor_for(self._h[H_HOST])
        if origin is None or not self._server.origin_allowed(flavor, origin):
            self._respond(403, False, keep_alive, "cors_denied")
            return
        extra = self._server.cors_headers(origin) + self._server.preflight_headers
        self._out.append(with_headers(self._responses.get(204, keep_alive=keep_alive), extra))

    def _respond(self, status: int, head: bool, keep_alive: bool, reason: str | None) -> None:
        """The slow path: a refusal (counted under `reason`), a request id on errors,
        CORS headers for an allowed Origin."""
        if reason is not None:
            self._server.count_refusal(reason)
        extra = b""
        if status >= 400:
            extra += b"X-Request-Id: " + self._server.next_request_id().encode() + b"\r\n"
        origin = self._h[H_ORIGIN]
        if origin is not None and self._server.origin_allowed(
            self._server.ingest.last_flavor, origin
        ):
            extra += self._server.cors_headers(origin)
        response = self._responses.get(status, head=head, keep_alive=keep_alive)
        self._out.append(with_headers(response, extra) if extra else response)

    def _error(self, exc: BaseException, *, close: bool) -> None:
        """A bug while handling one request: 500 with a request id, logged, counted."""
        rid = self._server.request_failed(exc)
        response = self._responses.get(500, keep_alive=not close)
        self._out.append(with_headers(response, b"X-Request-Id: " + rid.encode() + b"\r\n"))
        if close:
            self._closing = True

    def _refuse(self, status: int, reason: str) -> None:
        """Answers a request the parser could not finish, then closes: the stream's
        framing can no longer be trusted."""
        self._respond(status, False, False, reason)
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

    # called by the server

    def check_timeouts(self, tick: int, request_ticks: int, idle_ticks: int) -> None:
        """Once a second: a request still incomplete after the header timeout (slowloris)
        gets 408 and is closed; a keep-alive connection idle too long is closed."""
        if self._transport is None or self._closing:
            return
        if self._in_request or self._pending_bytes:
            if tick - self._begin_tick >= request_ticks:
                self._refuse(408, "timeout")
                self._flush()
        elif tick - self._last_tick >= idle_ticks:
            self._server.count_refusal("idle_closed")
            self._transport.close()

    def close_when_idle(self) -> None:
        """Drain: close now if no request is half-read; otherwise the server's `draining`
        flag turns off keep-alive and the connection closes after that response."""
        if self._pending_bytes == 0 and self._transport is not None and not self._out:
            self._transport.close()
