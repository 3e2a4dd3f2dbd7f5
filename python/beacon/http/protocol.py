"""The public listener's protocol: httptools parses, one Rust call per request decides
the rest, and a prebuilt response goes back (docs/architecture.md, "The request path").

Two parsers per connection, both httptools. A read that is exactly one whole request (what
browsers and SDKs send) goes through `_fast`, which has no header callbacks: httptools
checks it, and `Ingest.request_raw` reads the few headers it needs from the same bytes.
Any other read (a request split across reads, pipelining, an upgrade, bad HTTP) goes to
`_parser`, with a callback per header, and so does every later read of that connection.

Hot-path rules: no per-request dicts, no logging, no formatting. On the full parser the
headers that matter are kept in a fixed list reset by slice assignment; responses produced
while parsing one read (pipelining) leave in one write.

HTTP as clients speak it (Expect, keep-alive, Upgrade, HTTP/2): docs/architecture.md.
"""

from __future__ import annotations

import asyncio

import httptools

from beacon._beacon import CODE_CORS, CODE_HEAD
from beacon.http import answers
from beacon.http.parse_signals import Stop, TooLarge, WholeRequests
from beacon.http.request_tables import (
    CODE_BITS,
    H_CLEN,
    H_EXPECT,
    H_ORIGIN,
    METHOD_CODES,
    NO_HEADERS,
    OTHER_METHOD,
    POST,
    WANTED,
    WANTED_LENGTHS,
)
from beacon.http.responses import CONTINUE, H2_PREFACE, H2_REFUSAL, ResponseTable
from beacon.state import ServerState


class TrackProtocol(asyncio.Protocol):
    __slots__ = (
        "_begin_tick",
        "_body",
        "_by_mode",
        "_chunk",
        "_closing",
        "_cors",
        "_fast",
        "_h",
        "_header_bytes",
        "_in_request",
        "_last_tick",
        "_out",
        "_parser",
        "_peer",
        "_pending_bytes",
        "_raw_request",
        "_request",
        "_responses",
        "_state",
        "_transport",
        "_url",
    )

    def __init__(self, state: ServerState, responses: ResponseTable) -> None:
        self._state = state
        self._responses = responses
        # Cached once per connection: `ingest.request` would build a bound method object
        # on every request, and the response table is updated in place.
        self._request = state.ingest.request
        self._raw_request = state.ingest.request_raw
        self._by_mode = responses.by_mode
        self._cors = responses.cors
        self._parser = httptools.HttpRequestParser(self)
        self._fast: httptools.HttpRequestParser | None = httptools.HttpRequestParser(
            WholeRequests(self._whole_request)
        )
        # The read `_fast` is parsing; None once it is answered.
        self._chunk: bytes | None = None
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._h: list[bytes | None] = list(NO_HEADERS)
        self._body: bytes | None = None
        self._peer: bytes | None = None
        self._out: list[bytes] = []
        self._closing = False
        # A new connection owes us a request: silence counts against the header timeout.
        self._in_request = True
        self._pending_bytes = 0
        self._header_bytes = 0
        self._begin_tick = self._last_tick = state.tick

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        if not self._state.connection_opened(self):
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._peer = str(peer[0]).encode()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connection_closed(self)
        self._transport = None
        # The parser holds this protocol (its callbacks) and this protocol the parser: break
        # the cycle so the pair is freed now, by reference counting, not by a GC pause.
        self._parser = None  # type: ignore[assignment]
        self._fast = None

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
        self._last_tick = self._state.tick
        whole = False
        if self._fast is not None and not self._pending_bytes:
            # The fast path, inlined (a Python frame is a measurable share of a request):
            # `_whole_request` answers `data` if it is one whole request and clears `_chunk`.
            self._chunk = data
            try:
                self._fast.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._fast = None  # answered in HTTP/1.1 if whole; this parser is spent
            except httptools.HttpParserError:
                pass  # `Stop` from `_whole_request`, or bytes for the full parser to judge
            whole = self._chunk is None
            if not whole:
                self._chunk = None
                self._fast = None
        if not whole:
            self._pending_bytes += len(data)
            self._feed(data)
            if self._pending_bytes > self._state.max_request_bytes and not self._closing:
                self._refuse(431, "too_large")
        if self._out or self._closing:  # the fast path's answer is written already
            self._flush()

    def _whole_request(self) -> None:
        """`_fast`'s end of a message: the read holds it whole (or `request_raw` says -1
        and the full parser takes the read)."""
        chunk: bytes = self._chunk  # type: ignore[assignment]  # set by `data_received`
        try:
            code = self._raw_request(chunk, self._peer)
        except BaseException as e:  # a Rust panic arrives as pyo3's PanicException
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            self._chunk = None
            self._error(e, close=not self._fast.should_keep_alive())  # type: ignore[union-attr]
            return
        if code < 0:
            raise Stop
        self._chunk = None
        self._in_request = False
        # `_respond`, inlined for the plain 200/204 (no flags). The one answer of a whole
        # read is written at once: nothing waits in `_out` on the fast path.
        keep_alive = self._fast.should_keep_alive() and not self._state.draining  # type: ignore[union-attr]
        if code < 400:
            self._transport.write(self._by_mode[keep_alive * 2][code])  # type: ignore[union-attr]
        elif code & CODE_CORS:
            # The scan trimmed the Origin value: echoed as is. `code` is a multi-digit int
            # (bits up to 59): each operation on it allocates, so its low bits are taken once.
            start = code >> 20
            origin = chunk[start & 0xFFFFF : (start & 0xFFFFF) + (start >> 20)]
            code &= CODE_BITS
            if code & 0xFFFF < 400:  # a sendBeacon's 204: no request id, `_answer` skipped
                m = keep_alive * 2 + (code & CODE_HEAD != 0)
                response = self._cors.get((code, m, origin))
                if response is None:
                    response = self._responses.with_cors(code, m, origin)
                self._transport.write(response)  # type: ignore[union-attr]
            else:
                self._answer(code, keep_alive, origin)
        else:
            self._answer(code, keep_alive, None)
        if not keep_alive:
            self._closing = True

    def _feed(self, data: bytes) -> None:
        while True:
            try:
                self._parser.feed_data(data)
                return
            except httptools.HttpParserCallbackError as e:
                cause = e.__context__
                if isinstance(cause, TooLarge):
                    self._refuse(cause.status, "too_large")
                elif not isinstance(cause, Stop):
                    self._error(cause or e, close=True)
                return
            except httptools.HttpParserUpgrade as e:
                # The request asking for it was answered in HTTP/1.1 (RFC 9110 §7.8 lets a
                # server ignore Upgrade); what follows it is parsed afresh.
                data = data[e.args[0] :]
                self._parser = httptools.HttpRequestParser(self)
                if not data:
                    return
            except httptools.HttpParserError:
                if self._closing:
                    return  # llhttp refuses data after `Connection: close`: not answered
                if data.startswith(H2_PREFACE):
                    self._state.count_refusal("http2")
                    self._out.append(H2_REFUSAL)
                    self._closing = True
                else:
                    self._refuse(400, "bad_http")
                return

    # httptools callbacks, in the order the parser calls them

    # No on_message_begin: one Python call less per request. Per-request state is reset
    # at the end of on_message_complete instead, and a request's start is its first URL byte.

    def on_url(self, url: bytes) -> None:
        if not self._url:
            self._in_request = True
            self._begin_tick = self._state.tick
        # httptools may deliver the target in pieces when it spans reads.
        self._url += url
        if len(self._url) > self._state.max_url_bytes:
            raise TooLarge(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        n = self._header_bytes + len(name) + len(value)
        self._header_bytes = n
        if n > self._state.max_header_bytes:
            raise TooLarge(431)
        slot = WANTED.get(name)
        if slot is None:
            if len(name) not in WANTED_LENGTHS:
                return
            slot = WANTED.get(name.lower())
            if slot is None:
                return
        self._h[slot] = value
        if slot == H_CLEN and value.isdigit() and int(value) > self._state.max_body_bytes:
            raise TooLarge(413)

    def on_headers_complete(self) -> None:
        if self._h[H_EXPECT] is not None:
            self._expect()

    def on_body(self, body: bytes) -> None:
        self._body = body if self._body is None else self._body + body
        if len(self._body) > self._state.max_body_bytes:
            raise TooLarge(413)

    def on_message_complete(self) -> None:
        if self._closing:
            raise Stop  # pipelined after a closing answer: not ours to answer
        self._pending_bytes = 0
        self._in_request = False
        parser = self._parser
        method = METHOD_CODES.get(parser.get_method(), OTHER_METHOD)
        h = self._h
        try:
            code = self._request(method, self._url, h, self._body, self._peer)
        except BaseException as e:  # a Rust panic arrives as pyo3's PanicException
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            self._error(e, close=not parser.should_keep_alive())
        else:
            self._respond(code, parser.should_keep_alive(), h[H_ORIGIN])
        # Ready for the next request on this connection.
        self._url = b""
        h[:] = NO_HEADERS
        self._body = None
        self._header_bytes = 0

    # request handling

    def _expect(self) -> None:
        """`Expect: 100-continue`: `100 Continue` if the headers are acceptable, else the
        final answer now, and the connection closes without reading the body."""
        if self._h[H_EXPECT].lower() != b"100-continue":  # type: ignore[union-attr]
            return  # RFC 9110 §10.1.1: a server may ignore other expectations
        parser = self._parser
        if parser.get_http_version() == "1.0":
            return  # §10.1.1: ignored in HTTP/1.0 requests
        method = METHOD_CODES.get(parser.get_method(), OTHER_METHOD)
        length = self._h[H_CLEN]
        if length == b"0" or (length is None and method != POST):
            return  # no content is coming: nothing to wait for (§10.1.1)
        code = self._state.ingest.check_expect(method, self._url, self._h)
        if code == 0:
            self._out.append(CONTINUE)
            return
        self._answer(code, False, self._h[H_ORIGIN])
        self._closing = True
        raise Stop

    def _respond(self, code: int, keep_alive: bool, origin: bytes | None) -> None:
        """The answer for an `Ingest` code; after it, a connection not kept alive closes."""
        keep_alive = keep_alive and not self._state.draining
        if code < 400:  # a plain 200 or 204: no flags
            self._out.append(self._by_mode[keep_alive * 2][code])
        else:
            self._answer(code, keep_alive, origin)
        if not keep_alive:
            self._closing = True

    def _answer(self, code: int, keep_alive: bool, origin: bytes | None) -> None:
        self._out.append(answers.flagged(self._responses, self._state, code, keep_alive, origin))

    def _error(self, exc: BaseException, *, close: bool) -> None:
        self._out.append(answers.failure(self._responses, self._state, exc, close=close))
        if close:
            self._closing = True

    def _refuse(self, status: int, reason: str) -> None:
        """Closes after the answer: the stream's framing can no longer be trusted."""
        self._out.append(
            answers.refusal(self._responses, self._state, status, reason, self._url, self._h)
        )
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
            # Close after the answers: FIN now, the socket at the next tick. Closing at once
            # with unread bytes from the client (a body sent after an Expect refusal, an
            # HTTP/2 client's next frames) would reset the connection, and a reset can
            # destroy the answer before the client reads it; meanwhile arrivals are ignored.
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    # called by the server

    def check_timeouts(self, tick: int, request_ticks: int, idle_ticks: int) -> None:
        """Once a second: a request still incomplete after the header timeout (slowloris)
        gets 408 and is closed; a keep-alive connection idle too long is closed."""
        if self._transport is None:
            return
        if self._closing:
            self._transport.close()  # the end of a gentle close (`_flush`)
            return
        if self._in_request or self._pending_bytes:
            if tick - self._begin_tick >= request_ticks:
                self._refuse(408, "timeout")
                self._flush()
        elif tick - self._last_tick >= idle_ticks:
            self._state.count_refusal("idle_closed")
            self._transport.close()

    def close_when_idle(self) -> None:
        """Drain: close now if no request is half-read; otherwise the server's `draining`
        flag turns off keep-alive and the connection closes after that response."""
        if self._pending_bytes == 0 and self._transport is not None and not self._out:
            self._transport.close()

    def close(self) -> None:
        """Closes the connection now (the end of a drain)."""
        if self._transport is not None:
            self._transport.close()
