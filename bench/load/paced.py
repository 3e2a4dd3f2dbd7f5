"""A fixed-rate (open-loop) HTTP load generator: the 1,000 req/s latency run.

Request i is *due* at t0 + i/rate whatever happened to earlier requests (wrk2-style), so a
slow response cannot hold back the load (no coordinated omission). One thread drives a pool of
keep-alive connections with epoll, spinning for the last 2 ms before a due time so a send leaves
within microseconds of its schedule (at 1,000 req/s that means the client busy-polls its CPU).
Each response's latency is recorded twice: `latency_us` from the due time (includes any wait
for a free connection and the client's own lateness: the number that matters) and
`service_latency_us` from the actual send; `send_lag_us` is how late requests left (the client
descheduled, or every connection waiting on a slow server), so either shows up as such.

    python -m bench.load.paced --port 8080 --rate 1000 --duration 20 --target '/track?a=1'
    python -m bench.load.paced --port 8080 --request-file req.http   # exact bytes to send
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


def run(
    port: int,
    target: str,
    rate: float,
    duration_s: float,
    connections: int = 32,
    host: str = "127.0.0.1",
    spin_s: float = 0.002,
    request: bytes = b"",
) -> dict[str, object]:
    """Sends `rate` req/s for `duration_s` (`request` as is, else a GET of `target`); returns
    counts and latency summaries (µs)."""
    request = request or f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    idle: deque[_Conn] = deque()
    for _ in range(connections):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conn = _Conn(s)
        sel.register(s, selectors.EVENT_READ, conn)
        idle.append(conn)

    corrected: list[float] = []
    service: list[float] = []
    send_lag: list[float] = []  # sent - due
    statuses: dict[str, int] = {}
    errors = 0
    backlog: deque[float] = deque()  # due times of requests waiting for a free connection
    interval = 1.0 / rate
    total = int(rate * duration_s)
    t0 = time.perf_counter() + 0.05
    issued = 0
    deadline = t0 + duration_s + 10.0  # stragglers get 10 s, then count as errors

    def send(c: _Conn, due: float) -> None:
        nonlocal errors
        c.due, c.sent, c.busy = due, time.perf_counter(), True
        try:
            c.sock.sendall(request)
        except OSError:
            errors += 1
            c.busy = False

    try:
        while len(corrected) + errors < total:
            now = time.perf_counter()
            if now > deadline:
                errors += total - len(corrected) - errors
                break
            while issued < total and t0 + issued * interval <= now:
                due = t0 + issued * interval
                issued += 1
                if idle:
                    send(idle.popleft(), due)
                else:
                    backlog.append(due)
            next_due = t0 + issued * interval if issued < total else now + 0.01
            wait = next_due - time.perf_counter()
            timeout = 0.0 if wait < spin_s else wait - spin_s
            for key, _ in sel.select(timeout):
                c: _Conn = key.data
                try:
                    chunk = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    raise RuntimeError("server closed a keep-alive connection")
                c.buf += chunk
                end = _response_end(c.buf)
                if not end or not c.busy:
                    continue
                done = time.perf_counter()
                status = bytes(c.buf[9:12]).decode()
                statuses[status] = statuses.get(status, 0) + 1
                del c.buf[:end]
                corrected.append(done - c.due)
                service.append(done - c.sent)
                send_lag.append(c.sent - c.due)
                c.busy = False
                if backlog:
                    send(c, backlog.popleft())
                else:
                    idle.append(c)
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()
    elapsed = time.perf_counter() - t0
    return {
        "rate": rate,
        "duration_s": duration_s,
        "connections": connections,
        "sent": issued,
        "answered": len(corrected),
        "achieved_rate": len(corrected) / elapsed if elapsed > 0 else 0.0,
        "errors": errors,
        "statuses": statuses,
        "latency_us": summarize_us(corrected),
        "service_latency_us": summarize_us(service),
        "send_lag_us": summarize_us(send_lag),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", default="/track?ev=view&id=42")
    ap.add_argument("--request-file", help="send these bytes (a whole request) instead")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--spin-ms",
        type=float,
        default=2.0,
        help="busy-poll this long before each due time (epoll timeouts are whole ms)",
    )
    args = ap.parse_args()
    r = run(
        args.port,
        args.target,
        args.rate,
        args.duration,
        args.connections,
        spin_s=args.spin_ms / 1000,
        request=Path(args.request_file).read_bytes() if args.request_file else b"",
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
