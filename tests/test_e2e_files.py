"""End to end, issue 2's acceptance test: 100,000 requests over many keep-alive
connections, exactly 100,000 lines, each matching its request."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from support.beacon_server import BeaconServer
from support.http_client import SteadyClients

TOTAL = 100_000


def target(n: int) -> str:
    # Percent-encoding, `+`, a repeated name and non-ASCII, so matching proves the decoding.
    return f"/track?n={n}&ev=view&u=https%3A%2F%2Fex.com%2Fp%3Fi%3D{n}&q=a+b&t=x&t={n % 7}&c=%CE%B1"


def expected(n: int) -> dict[str, object]:
    return {
        "n": str(n),
        "ev": "view",
        "u": f"https://ex.com/p?i={n}",
        "q": "a b",
        "t": ["x", str(n % 7)],
        "c": "\u03b1",
    }


def test_100k_requests_make_exactly_100k_matching_lines(tmp_path: Path) -> None:
    srv = BeaconServer(tmp_path).start()
    clients = SteadyClients(srv.port, threads=16, total=TOTAL, target=target).start()
    clients.join()
    assert srv.stop(signal.SIGTERM) == 0
    assert clients.failures == []
    assert len(clients.sent_ok) == TOTAL
    lines = [
        json.loads(ln)
        for f in sorted((srv.data_dir / "default").glob("*.jsonl"))
        for ln in f.read_text().splitlines()
    ]
    assert len(lines) == TOTAL
    by_n = {int(e["params"]["n"]): e for e in lines}
    assert sorted(by_n) == list(range(1, TOTAL + 1))
    for n, e in by_n.items():
        assert e["params"] == expected(n), n
        assert e["flavor"] == "default"
        assert e["ts"].endswith("+00:00")
