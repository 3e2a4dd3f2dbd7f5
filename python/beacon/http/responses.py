"""Prebuilt response bytes. Nothing is formatted for an accepted request: the table is
rebuilt once a second (for the Date header) and requests index into it. Answers with
CORS headers are built once per origin and second (`ResponseTable.with_cors`); error
answers, off the hot path, splice a request id into a prebuilt one. A batch answer
(`CODE_BATCH`) is a prebuilt head and a short JSON body written per request
(`ResponseTable.batch`)."""

from __future__ import annotations

import struct
from email.utils import formatdate

from beacon._beacon import BATCH_ANSWERS, CODE_CORS, CODE_PREFLIGHT

# The 43-byte 1x1 transparent GIF (GIF89a, one transparent palette entry).
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
assert len(TRANSPARENT_GIF) == 43

REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
STATUSES = tuple(REASONS)
_END = b"\r\n\r\n"

#: The interim answer to `Expect: 100-continue` (RFC 9110 §15.2.1).
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _h2_frame(kind: int, stream: int, payload: bytes) -> bytes:
    # RFC 9113 §4.1: 24-bit length, type, flags, 31-bit stream id.
    return (
        struct.pack(">I", len(payload))[1:] + bytes([kind, 0]) + struct.pack(">I", stream) + payload
    )


#: The answer to an HTTP/2 connection preface (prior knowledge): the server's (empty)
#: SETTINGS, which must come first, then GOAWAY with HTTP_1_1_REQUIRED (RFC 9113 §5.4.1,
#: §7), so an HTTP/2 client fails at once with a clear error instead of waiting.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_REFUSAL = _h2_frame(0x4, 0, b"") + _h2_frame(0x7, 0, struct.pack(">II", 0, 0xD))

#: Added to a preflight's answer for an allowed origin.
PREFLIGHT_HEADERS = (
    b"Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
    b"Access-Control-Allow-Headers: Content-Type\r\n"
    b"Access-Control-Max-Age: 86400\r\n"
)
#: Answers with CORS headers kept per (code, mode, origin); past this many the cache starts
#: over (it is also emptied every second with the Date): a flood of random origins under
#: `allowed_origins: ["*"]` costs a rebuild each, never memory.
CORS_CACHE_MAX = 1024


#: Per batch answer (rust/src/ingest/batch.rs `BATCH_ANSWERS`): its error name and the key
#: of its number. A batch code holds the row in bits 52-59, the number + 1 in bits 20-51.
_BATCH_ANSWERS = tuple((name.encode(), key.encode()) for name, key in BATCH_ANSWERS)
_BACKPRESSURE = [name for name, _ in BATCH_ANSWERS].index("backpressure")


def batch_answer(code: int) -> tuple[bytes, bytes]:
    """A batch code's extra headers and JSON body: `{"accepted":n}`, or the error's name
    with its number (element index, limit, seconds) when it has one."""
    row = code >> 52 & 0xFF
    n = (code >> 20 & 0xFFFFFFFF) - 1
    name, key = _BATCH_ANSWERS[row]
    if row == 0:
        return b"", b'{"accepted":%d}' % n
    if n < 0:
        return b"", b'{"error":"%s"}' % name
    extra = b"Retry-After: %d\r\n" % n if row == _BACKPRESSURE else b""
    return extra, b'{"error":"%s","%s":%d}' % (name, key, n)


def cors_headers(origin: bytes) -> bytes:
    # The origin is echoed rather than `*`: sendBeacon sends credentials, and browsers
    # refuse `*` with credentials.
    return (
        b"Access-Control-Allow-Origin: " + origin + b"\r\n"
        b"Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
    )


def _status_lines(status: int, date: str) -> list[str]:
    return [f"HTTP/1.1 {status} {REASONS[status]}", "Server: beacon", f"Date: {date}"]


def _connection(keep_alive: bool) -> str:
    # Said either way: an HTTP/1.0 client keeps the connection only when told so, and an
    # HTTP/1.1 client that sent `Connection: close` must see it answered.
    return "Connection: keep-alive" if keep_alive else "Connection: close"


def build(status: int, *, head: bool, keep_alive: bool, date: str) -> bytes:
    """One complete response."""
    lines = _status_lines(status, date)
    if status == 204:
        body = b""
    else:
        if status == 200:
            body, ctype = TRANSPARENT_GIF, "image/gif"
        else:
            body, ctype = f"{status} {REASONS[status]}\n".encode(), "text/plain; charset=utf-8"
        lines += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    lines.append("Cache-Control: no-store")
    if status == 405:
        lines.append("Allow: GET, HEAD, POST, OPTIONS")
    lines.append(_connection(keep_alive))
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head_bytes if head else head_bytes + body


def build_batch_head(status: int, *, keep_alive: bool, date: str) -> bytes:
    """The head of a batch answer up to its Content-Length (left to the request)."""
    lines = _status_lines(status, date)
    lines += ["Content-Type: application/json", "Cache-Control: no-store"]
    if status == 405:
        lines.append("Allow: POST, OPTIONS")
    lines.append(_connection(keep_alive))
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def request_id_header(rid: str) -> bytes:
    """The header a refusal or an error carries, for a log line to be found by."""
    return b"X-Request-Id: " + rid.encode() + b"\r\n"


def with_headers(response: bytes, extra: bytes) -> bytes:
    """`response` with `extra` (complete `Name: value\\r\\n` lines) added to its head."""
    end = response.index(_END) + 2
    return response[:end] + extra + response[end:]


def mode(head: bool, keep_alive: bool) -> int:
    """Index into `ResponseTable.by_mode`."""
    return keep_alive * 2 + head


class ResponseTable:
    """`by_mode[keep_alive * 2 + head][status]` → bytes, indexed without building a key
    object per request; `refresh()` re-stamps the Date header in place."""

    def __init__(self) -> None:
        self.by_mode: list[dict[int, bytes]] = [{}, {}, {}, {}]
        self._batch_heads: list[dict[int, bytes]] = [{}, {}]
        #: Answers with CORS headers by (code, mode, origin), filled by `with_cors`; the
        #: protocol's fast path reads it first (a method call is a Python frame per request).
        #: Emptied in place, never replaced, so a reference held by a connection stays good.
        self.cors: dict[tuple[int, int, bytes], bytes] = {}
        self.refresh()

    def refresh(self) -> None:
        date = formatdate(usegmt=True)
        for keep_alive in (False, True):
            for head in (False, True):
                self.by_mode[mode(head, keep_alive)] = {
                    s: build(s, head=head, keep_alive=keep_alive, date=date) for s in STATUSES
                }
            self._batch_heads[keep_alive] = {
                s: build_batch_head(s, keep_alive=keep_alive, date=date) for s in STATUSES
            }
        self.cors.clear()

    def get(self, status: int, *, head: bool = False, keep_alive: bool = True) -> bytes:
        return self.by_mode[mode(head, keep_alive)][status]

    def batch(self, code: int, m: int, origin: bytes | None) -> bytes:
        """The answer for a batch code (`CODE_BATCH`) in mode `m`, echoing `origin` if
        given (the code says CORS)."""
        extra, body = batch_answer(code)
        if origin is not None:
            extra = cors_headers(origin) + extra
        head = self._batch_heads[m >> 1][code & 0xFFFF]
        response = head + extra + b"Content-Length: %d\r\n\r\n" % len(body)
        return response if m & 1 else response + body

    def with_cors(self, code: int, m: int, origin: bytes) -> bytes:
        """The answer for a request code (`Ingest.request`) with CORS flags, for `origin`."""
        key = (code, m, origin)
        response = self.cors.get(key)
        if response is None:
            extra = cors_headers(origin) if code & CODE_CORS else b""
            if code & CODE_PREFLIGHT:
                extra += PREFLIGHT_HEADERS
            response = with_headers(self.by_mode[m][code & 0xFFFF], extra)
            if len(self.cors) >= CORS_CACHE_MAX:
                self.cors.clear()
            self.cors[key] = response
        return response
