"""A tiny blocking HTTP/1.1 client over a raw socket, for tests that need exact bytes:
pipelining, broken requests, exact headers."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Conn:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def read_response(self, head: bool = False) -> Response:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before a full response: {self.buf!r}")
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError("closed inside a body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Response(status, headers, body)

    def is_closed_by_peer(self) -> bool:
        """True when the server has closed the connection (after what is buffered)."""
        try:
            return not self.buf and self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get(port: int, target: str, host: str = "localhost", extra: str = "") -> Response:
    with Conn(port) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
        return c.read_response()
