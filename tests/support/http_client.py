"""A tiny blocking HTTP/1.1 client over a raw socket, for tests that need exact bytes:
pipelining, broken requests, exact headers."""

from __future__ import annotations

import socket
from collections.abc import Callable
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


class SteadyClients:
    """Threads sending GETs in a closed loop over keep-alive connections, the way a
    well-behaved HTTP client does: a `Connection: close` answer means reconnect, and a
    request on a reused idle connection that the server closed before answering is
    retried (RFC 9112 9.3.1). Anything else counts as a failure: a refused connect, a
    reset mid-answer, a status other than 200."""

    def __init__(
        self,
        port: int,
        threads: int = 4,
        host: str = "localhost",
        *,
        total: int | None = None,
        target: Callable[[int], str] = lambda n: f"/track?n={n}",
    ) -> None:
        import threading

        self.port, self.host = port, host
        self.total, self.target = total, target
        self.sent_ok: list[int] = []  # ids of requests answered 200
        self.failures: list[str] = []
        self.retries = 0
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _take_id(self) -> int | None:
        with self._lock:
            if self.total is not None and self._next >= self.total:
                return None
            self._next += 1
            return self._next

    def _run(self) -> None:
        conn: Conn | None = None
        reused = False
        while not self._stop.is_set():
            n = self._take_id()
            if n is None:
                break
            while True:
                try:
                    if conn is None:
                        conn, reused = Conn(self.port, timeout=30), False
                    request = f"GET {self.target(n)} HTTP/1.1\r\nHost: {self.host}\r\n\r\n"
                    conn.send(request.encode())
                    r = conn.read_response()
                except OSError as e:
                    clean = conn is not None and not conn.buf
                    if conn is not None:
                        conn.close()
                    retry = reused and clean and isinstance(e, ConnectionError)
                    conn = None
                    if retry:
                        with self._lock:
                            self.retries += 1
                        continue
                    with self._lock:
                        self.failures.append(f"n={n}: {e!r}")
                    break
                reused = True
                with self._lock:
                    if r.status == 200:
                        self.sent_ok.append(n)
                    else:
                        self.failures.append(f"n={n}: status {r.status}")
                if r.headers.get("connection") == "close":
                    conn.close()
                    conn = None
                break
        if conn is not None:
            conn.close()

    def start(self) -> SteadyClients:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout_s: float = 300.0) -> None:
        for t in self._threads:
            t.join(timeout_s)
