"""Prebuilt response bytes. Nothing is formatted for an accepted request: the table is
rebuilt once a second (for the Date header) and requests index into it. Error and CORS
responses, off the hot path, splice extra header lines into a prebuilt one."""

from __future__ import annotations

from email.utils import formatdate

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


def build(status: int, *, head: bool, keep_alive: bool, date: str) -> bytes:
    """One complete response."""
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", "Server: beacon", f"Date: {date}"]
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
    if not keep_alive:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head_bytes if head else head_bytes + body


def with_headers(response: bytes, extra: bytes) -> bytes:
    """`response` with `extra` (complete `Name: value\\r\\n` lines) added to its head."""
    end = response.index(_END) + 2
    return response[:end] + extra + response[end:]


class ResponseTable:
    """`by_mode[keep_alive * 2 + head][status]` → bytes, indexed without building a key
    object per request; `refresh()` re-stamps the Date header in place."""

    def __init__(self) -> None:
        self.by_mode: list[dict[int, bytes]] = [{}, {}, {}, {}]
        self.refresh()

    def refresh(self) -> None:
        date = formatdate(usegmt=True)
        for keep_alive in (False, True):
            for head in (False, True):
                self.by_mode[keep_alive * 2 + head] = {
                    s: build(s, head=head, keep_alive=keep_alive, date=date) for s in STATUSES
                }

    def get(self, status: int, *, head: bool = False, keep_alive: bool = True) -> bytes:
        return self.by_mode[keep_alive * 2 + head][status]
