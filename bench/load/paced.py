"""A fixed-rate (open-loop) HTTP load generator: the 1,000 req/s latency run.

Request i is *due* at t0 + i/rate whatever happened to earlier requests (wrk2-style), so a
slow response cannot hold back the load (no coordinated omission). Given several servers, it
sends each one `rate` req/s on one interleaved schedule, so a moment of the machine's noise
delays each server's requests alike and their latencies compare in the same conditions.
One thread drives a pool of keep-alive connections per server with epoll, spinning for the
last 2 ms before a due time so a send leaves within microseconds of its schedule (at 1,000
req/s that means the client busy-polls its CPU).
Each response's latency is recorded twice: `latency_us` from the due time (includes any wait
for a free connection and the client's own lateness: the number that matters) and
`service_latency_us` from the actual send; `send_lag_us` is how late requests left (the client
descheduled, or every connection waiting on a slow server), so either shows up as such.

    python -m bench.load.paced --port 8080 --rate 1000 --duration 20 --target '/track?a=1'
    python -m bench.load.paced --port 8080 --request-file req.http   # exact bytes to send
    python -m bench.load.paced --port 8080 --request-file a.http --port 8081 --request-file b.http

It prints a JSON list: one result per --port, in order.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    due: float = 0.0
    sent: float = 0.0
    busy: bool = False


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(p / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize_us(latencies_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in microseconds."""
    v = sorted(latencies_s)
    out = {f"p{p:g}": percentile(v, p) * 1e6 for p in PERCENTILES}
    out["max"] = (v[-1] if v else 0.0) * 1e6
    out["mean"] = (sum(v) / len(v) if v else 0.0) * 1e6
    return out


def _response_end(buf: bytearray) -> int:
    """Length of the first complete response in buf, or 0."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return 0
    head = bytes(buf[:head_end]).lower()
    length = 0
    pos = head.find(b"content-length:")
    if pos >= 0:
        line_end = head.find(b"\r\n", pos)
        length = int(head[pos + 15 : line_end if line_end >= 0 else None].strip())
    total = head_end + 4 + length
    return total if len(buf) >= total else 0


@dataclass
class _Target:
    """One server of a run: its request, its connections and what it answered."""

    port: int
    request: bytes
    idle: deque[_Conn] = field(default_factory=deque)
    backlog: deque[float] = field(default_factory=deque)  # due times waiting for a connection
    corrected: list[float] = field(default_factory=list)
    dues: list[float] = field(default_factory=list)  # each answered request's due time
    service: list[float] = field(default_factory=list)
    send_lag: list[float] = field(default_factory=list)  # sent - due
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    sent: int = 0

    def send(self, c: _Conn, due: float) -> None:
        c.due, c.sent, c.busy = due, time.perf_counter(), True
        self.sent += 1
        try:
            c.sock.sendall(self.request)
        except OSError:
            self.errors += 1
            c.busy = False

    def answered(self, c: _Conn, end: int) -> None:
        done = time.perf_counter()
        status = bytes(c.buf[9:12]).decode()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        del c.buf[:end]
        self.corrected.append(done - c.due)
        self.dues.append(c.due)
        self.service.append(done - c.sent)
        self.send_lag.append(c.sent - c.due)
        c.busy = False
        if self.backlog:
            self.send(c, self.backlog.popleft())
        else:
            self.idle.append(c)

    def result(
        self, rate: float, duration_s: float, connections: int, elapsed: float
    ) -> dict[str, object]:
        return {
            "port": self.port,
            "rate": rate,
            "duration_s": duration_s,
            "connections": connections,
            "sent": self.sent,
            "answered": len(self.corrected),
            "achieved_rate": len(self.corrected) / elapsed if elapsed > 0 else 0.0,
            "errors": self.errors,
            "statuses": self.statuses,
            "latency_us": summarize_us(self.corrected),
            "service_latency_us": summarize_us(self.service),
            "send_lag_us": summarize_us(self.send_lag),
        }

    def samples(self, t0: float) -> list[tuple[float, float]]:
        """(due time from the run's start, latency), both in s, per answered request."""
        return [(due - t0, lat) for due, lat in zip(self.dues, self.corrected, strict=True)]


def run(
    servers: list[tuple[int, bytes]],
    rate: float,
    duration_s: float,
    connections: int = 32,
    host: str = "127.0.0.1",
    spin_s: float = 0.002,
    samples: bool = False,
) -> list[dict[str, object]]:
    """Sends `rate` req/s for `duration_s` to each of `servers` ((port, request bytes)),
    interleaved on one schedule (request i to server i % len(servers)), so that whatever
    slows the machine at a moment slows each server's requests alike; returns counts and
    latency summaries (µs) per server, in order, and with `samples` every request's
    (due time, latency) under "samples"."""
    sel = selectors.DefaultSelector()
    targets = [_Target(port, request) for port, request in servers]
    for t in targets:
        for _ in range(connections):
            s = socket.create_connection((host, t.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            conn = _Conn(s)
            sel.register(s, selectors.EVENT_READ, (t, conn))
            t.idle.append(conn)

    interval = 1.0 / (rate * len(targets))
    total = int(rate * duration_s) * len(targets)
    t0 = time.perf_counter() + 0.05
    issued = 0
    deadline = t0 + duration_s + 10.0  # stragglers get 10 s, then count as errors

    def finished() -> int:
        return sum(len(t.corrected) + t.errors for t in targets)

    try:
        while finished() < total:
            now = time.perf_counter()
            if now > deadline:
                for t in targets:
                    t.errors += t.sent - len(t.corrected) - t.errors + len(t.backlog)
                break
            while issued < total and t0 + issued * interval <= now:
                due = t0 + issued * interval
                t = targets[issued % len(targets)]
                issued += 1
                if t.idle:
                    t.send(t.idle.popleft(), due)
                else:
                    t.backlog.append(due)
            next_due = t0 + issued * interval if issued < total else now + 0.01
            wait = next_due - time.perf_counter()
            timeout = 0.0 if wait < spin_s else wait - spin_s
            for key, _ in sel.select(timeout):
                t, c = key.data
                try:
                    chunk = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    raise RuntimeError(f"port {t.port} closed a keep-alive connection")
                c.buf += chunk
                end = _response_end(c.buf)
                if end and c.busy:
                    t.answered(c, end)
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()
    elapsed = time.perf_counter() - t0
    out = [t.result(rate, duration_s, connections, elapsed) for t in targets]
    if samples:
        for r, t in zip(out, targets, strict=True):
            r["samples"] = t.samples(t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, action="append", required=True, help="once per server")
    ap.add_argument("--target", default="/track?ev=view&id=42")
    ap.add_argument(
        "--request-file", action="append", help="send these bytes (a whole request), per --port"
    )
    ap.add_argument("--rate", type=float, default=1000.0, help="req/s to each server")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=32, help="per server")
    ap.add_argument(
        "--spin-ms",
        type=float,
        default=2.0,
        help="busy-poll this long before each due time (epoll timeouts are whole ms)",
    )
    args = ap.parse_args()
    files = args.request_file or []
    if files and len(files) != len(args.port):
        ap.error("one --request-file per --port")
    requests = [Path(f).read_bytes() for f in files] or [
        f"GET {args.target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for port in args.port
    ]
    r = run(
        list(zip(args.port, requests, strict=True)),
        args.rate,
        args.duration,
        args.connections,
        spin_s=args.spin_ms / 1000,
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
