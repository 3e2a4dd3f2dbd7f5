"""bench-noise (noise.py): the paced client's per-request samples from real servers, and the
windows and spreads it prints, on made-up figures (no timing: nothing here judges a latency)."""

from __future__ import annotations

import math
from pathlib import Path

from bench.load import paced
from bench.load.noise import spread_line, window_p99s
from bench.load.procs import Reaper
from bench.load.servers import CONTROL, Nginx
from bench.load.shapes import SHAPES


def test_the_paced_client_keeps_each_answered_requests_due_time_and_latency(
    tmp_path: Path,
) -> None:
    reaper = Reaper()
    servers = [Nginx(reaper), Nginx(reaper, control=True)]
    try:
        for srv in servers:
            srv.start(tmp_path / srv.name, None)
        shape = SHAPES["bare"]
        targets = [(s.port, shape.render(f"127.0.0.1:{s.port}")) for s in servers]
        got = paced.run(targets, rate=200.0, duration_s=1.0, connections=2, samples=True)
        plain = paced.run(targets, rate=200.0, duration_s=0.1, connections=2)
    finally:
        reaper.kill_all()
    assert [srv.name for srv in servers] == ["nginx", CONTROL]
    for r in got:
        samples = r["samples"]
        assert isinstance(samples, list)
        assert r["answered"] == len(samples) == 200
        dues = sorted(due for due, _ in samples)
        assert dues[0] >= 0.0 and dues[-1] < 1.0  # the schedule: 200 due times in 1 s
        assert all(latency > 0.0 for _, latency in samples)
    assert all("samples" not in r for r in plain)  # kept only when asked for


def test_window_p99s_split_by_due_time_and_drop_what_falls_past_the_last_window() -> None:
    first = [(0.5, 1.0)] * 299 + [(0.7, 9.0)]  # its worst 1% is one of the 1.0s
    samples = [*first, (1.2, 2.0), (1.9, 3.0), (2.5, 100.0)]
    assert window_p99s(samples, 1.0, 2) == [1.0, 3.0]


def test_spread_line_says_the_range_the_band_and_the_spread() -> None:
    line = spread_line("a / b", [0.5, 1.0, 2.0])
    assert "0.50-2.00x" in line
    assert "2 of 3 outside 0.83-1.20x" in line
    assert "geometric mean 1.00x" in line
    assert f"sd of log {math.sqrt(2 / 3) * math.log(2):.3f}" in line
