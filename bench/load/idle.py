"""Opens many idle keep-alive connections to a server and reports its RSS.

Each connection makes one request (so the server has seen traffic on it, as with a browser
that keeps its connection open after a beacon), then stays open and silent. The server's RSS
(VmRSS summed over the process and its children, e.g. nginx master + worker) is read before,
with every connection open, and the difference per connection is reported.

    python -m bench.load.idle --port 8080 --pid 1234 --connections 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import socket
import time

from bench.load.procs import tree_rss_kb


def raise_nofile(wanted: int) -> int:
    """Raises the soft RLIMIT_NOFILE towards `wanted` (up to the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def _open(port: int, n: int, request: bytes, timeout_s: float) -> list[socket.socket]:
    """Opens n connections in batches (not to overflow the listen backlog), one request each,
    and waits until every response has arrived."""
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    pending: dict[socket.socket, bytearray] = {}
    batch = 500
    deadline = time.monotonic() + timeout_s
    while len(socks) < n:
        for _ in range(min(batch, n - len(socks))):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(request)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = bytearray()
            socks.append(s)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                s = key.fileobj  # type: ignore[assignment]
                data = s.recv(4096)
                if not data:
                    raise RuntimeError("server closed an idle connection")
                pending[s] += data
                head_end = pending[s].find(b"\r\n\r\n")
                if head_end >= 0:
                    sel.unregister(s)
                    del pending[s]
        if pending:
            raise TimeoutError(f"{len(pending)} of {len(socks)} requests got no response")
    sel.close()
    return socks


def run(port: int, pid: int, connections: int = 10_000, settle_s: float = 3.0) -> dict[str, float]:
    """Returns RSS (MB) before and with `connections` idle connections, and KB per conn."""
    raise_nofile(connections + 1024)
    request = f"GET /track?ev=idle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    time.sleep(0.5)
    before_kb = tree_rss_kb(pid)
    t0 = time.monotonic()
    socks = _open(port, connections, request, timeout_s=120.0)
    open_s = time.monotonic() - t0
    time.sleep(settle_s)
    with_kb = tree_rss_kb(pid)
    for s in socks:
        s.close()
    return {
        "connections": connections,
        "open_s": open_s,
        "rss_before_mb": before_kb / 1024,
        "rss_idle_mb": with_kb / 1024,
        "kb_per_connection": (with_kb - before_kb) / connections,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="server process (children included)")
    ap.add_argument("--connections", type=int, default=10_000)
    args = ap.parse_args()
    print(json.dumps(run(args.port, args.pid, args.connections)))


if __name__ == "__main__":
    main()
