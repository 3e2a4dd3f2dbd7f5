"""How far apart the fixed-rate p99 of two servers lands on this host (`make bench-noise`).

One long paced run (paced.py: 1,000 req/s open loop to each, one interleaved schedule) of
beacon (file), nginx and a second, identical nginx, side by side on the server CPU as in
`make bench-load`'s fixed-rate run; then each server's p99 over consecutive windows of 10 s
(the length of one bench-load round), 30 s and 60 s, and per window the ratios beacon / nginx
and nginx again / nginx. The second ratio is what two copies of one server differ by: the
noise a single round's p99 carries here. docs/performance.md, "The p99 target", has a run.

    python -m bench.load.noise                     # 300 s, the sendBeacon POST
    python -m bench.load.noise --shape bare --duration 120
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import cast

from bench.load import paced
from bench.load.procs import Reaper
from bench.load.report import fmt_us
from bench.load.runs import checked_probe
from bench.load.servers import CONTROL, Nginx, Server, make_rows
from bench.load.settings import Settings
from bench.load.shapes import SHAPES
from bench.load.summary import P99_RATIO

WINDOWS_S = (10, 30, 60)


def window_p99s(samples: list[tuple[float, float]], window_s: float, n: int) -> list[float]:
    """p99 latency (s) of each of `n` consecutive windows, by each request's due time."""
    buckets: list[list[float]] = [[] for _ in range(n)]
    for due, latency in samples:
        k = int(due // window_s)
        if k < n:
            buckets[k].append(latency)
    return [paced.percentile(sorted(b), 99.0) for b in buckets]


def spread_line(label: str, ratios: list[float]) -> str:
    """The ratios' range, how many fall outside the target's band, their geometric mean and
    the standard deviation of their logarithm (the spread, whatever the direction)."""
    logs = [math.log(r) for r in ratios]
    out = sum(1 for r in ratios if not 1 / P99_RATIO <= r <= P99_RATIO)
    geo = math.exp(statistics.mean(logs))
    return (
        f"  {label}: {min(ratios):.2f}-{max(ratios):.2f}x, {out} of {len(ratios)} outside "
        f"{1 / P99_RATIO:.2f}-{P99_RATIO:.2f}x, geometric mean {geo:.2f}x, "
        f"sd of log {statistics.pstdev(logs):.3f}"
    )


def report(names: list[str], samples: list[list[tuple[float, float]]], duration_s: float) -> None:
    beacon, nginx, again = samples
    for w in WINDOWS_S:
        n = int(duration_s // w)
        if n < 2:
            continue
        b, x, a = (window_p99s(s, w, n) for s in (beacon, nginx, again))
        print(f"{w} s windows ({n}):")
        print(spread_line(f"{names[0]} / {names[1]}", [p / q for p, q in zip(b, x, strict=True)]))
        print(spread_line(f"{names[2]} / {names[1]}", [p / q for p, q in zip(a, x, strict=True)]))
    whole = [paced.percentile(sorted(v for _, v in s), 99.0) * 1e6 for s in samples]
    print(
        f"whole run ({duration_s:.0f} s), p99: "
        + ", ".join(f"{name} {fmt_us(p)}" for name, p in zip(names, whole, strict=True))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shape", default="post", choices=list(SHAPES))
    ap.add_argument("--duration", type=float, default=300.0, help="seconds measured")
    args = ap.parse_args()
    s, shape = Settings(), SHAPES[args.shape]
    reaper = Reaper()
    servers: list[Server] = [*make_rows(reaper, ["beacon-file", "nginx"], None)]
    servers.append(Nginx(reaper, control=True))
    assert servers[-1].name == CONTROL
    try:
        with tempfile.TemporaryDirectory(prefix="beacon-noise-") as tmp:
            for srv in servers:
                srv.start(Path(tmp) / srv.name, s.server_cpu)
                checked_probe(srv, shape)  # a wrong answer is not measured as latency
            targets = [(srv.port, shape.render(f"127.0.0.1:{srv.port}")) for srv in servers]
            os.sched_setaffinity(0, {int(s.client_cpu)})  # the client on the other CPU
            print(f"bench-noise: {shape.label}, {s.rate:,.0f} req/s each, {args.duration:.0f} s")
            paced.run(targets, s.rate, 2.0)  # warm-up, not recorded
            got = paced.run(targets, s.rate, args.duration, samples=True)
            for srv in servers:
                srv.stop()
    finally:
        reaper.kill_all()
    for srv, r in zip(servers, got, strict=True):
        if r["errors"] or r["answered"] != r["sent"]:
            print(f"bench-noise: {srv.label}: {r['errors']} errors, {r['statuses']}")
    samples = [cast(list[tuple[float, float]], r["samples"]) for r in got]
    report([srv.label for srv in servers], samples, args.duration)


if __name__ == "__main__":
    main()
