"""One run of each kind, every one against a fresh server: throughput (wrk at full load),
fixed rate (paced.py, open loop; beacon and nginx side by side) and idle connections
(idle.py)."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any

from bench.load.clients import child_python, probe, wrk
from bench.load.host import cpu_times, steal_pct
from bench.load.procs import RssSampler, thread_cpu_s
from bench.load.servers import Server, Unavailable
from bench.load.settings import Settings
from bench.load.shapes import ORIGIN, Shape


def checked_probe(srv: Server, shape: Shape) -> dict[str, Any]:
    """The shape's request once: a wrong status makes the run unavailable (a config mistake
    must not be measured as throughput); a POST's CORS header is recorded."""
    p = probe(srv.port, shape)
    if p["status"] != shape.status:
        raise Unavailable(f"answers {shape.label} with {p['status']}, not {shape.status}")
    return {
        "status": p["status"],
        "cors": p["headers"].get("access-control-allow-origin") == ORIGIN,
    }


def throughput_run(s: Settings, srv: Server, shape: Shape, workdir: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    cpu = s.client_cpu if srv.pinned else None
    load = functools.partial(
        wrk, connections=s.connections, threads=s.threads * srv.workers, cpu=cpu
    )
    srv.start(workdir, s.server_cpu)
    try:
        check = checked_probe(srv, shape)
        warm = load(srv.port, shape, s.warmup_s + srv.extra_warmup_s(s.quick))
        before = srv.admin_stats()
        cpu_before = thread_cpu_s(srv.pid)
        # The server's CPU (all of them, unpinned): a round the hypervisor took from shows.
        server_cpu = s.server_cpu if srv.pinned else None
        times_before = cpu_times(server_cpu)
        with RssSampler(srv.pid) as rss:
            r = load(srv.port, shape, s.measured_s(shape))
        r["steal_pct"] = steal_pct(times_before, cpu_times(server_cpu))
        r["rss_max_mb"] = rss.max_kb / 1024
        cpu_after = thread_cpu_s(srv.pid)
        r["thread_cpu_s"] = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
        stats = srv.admin_stats()
        r.update(rates(before, stats, s.measured_s(shape)))
        r["admin_stats"] = stats
        r["gc"] = stats.get("gc") if stats else None
        kafka = ((stats or {}).get("backends") or {}).get("kafka")
        if isinstance(kafka, dict):
            r["kafka_backlog"] = kafka.get("buffered", 0) + kafka.get("spool_pending", 0)
    finally:
        r_exit = srv.stop()
    r["probe"] = check
    r["exit_status"] = r_exit
    r["answered_ok"] = warm["ok"] + r["ok"] + 1  # + the probe
    r["lines_written"] = srv.lines_written() if srv.stores(shape) else None
    r["warmup_rps"] = warm["rps"]
    r["loadavg_1min"] = [load_before, os.getloadavg()[0]]  # others' work on the machine shows
    return r


def rates(
    before: dict[str, Any] | None, after: dict[str, Any] | None, seconds: float
) -> dict[str, float]:
    """Events accepted and delivered to Kafka per second over the measured run, from two
    /stats snapshots: the Kafka backend keeps up when delivered/s >= accepted/s."""
    if not before or not after:
        return {}
    out = {
        "accepted_per_s": (after["requests"]["accepted"] - before["requests"]["accepted"]) / seconds
    }
    kafka_b = before.get("backends", {}).get("kafka")
    kafka_a = after.get("backends", {}).get("kafka")
    if kafka_b and kafka_a:
        out["kafka_delivered_per_s"] = (kafka_a["delivered"] - kafka_b["delivered"]) / seconds
    return out


def fixed_rate_run(
    s: Settings, servers: list[Server], shape: Shape, workdir: Path
) -> dict[str, dict[str, Any]]:
    """The servers side by side, each pinned to the server CPU and sent `s.rate` req/s on
    one interleaved schedule (paced.py), so the machine's noise at any moment falls on both
    alike; results by server name."""
    started: list[Server] = []
    try:
        args = ["--rate", str(s.rate)]
        for srv in servers:
            srv.start(workdir / srv.name, s.server_cpu)
            started.append(srv)
            checked_probe(srv, shape)
            request = workdir / f"{srv.name}.request"
            request.write_bytes(shape.render(f"127.0.0.1:{srv.port}"))
            args += ["--port", str(srv.port), "--request-file", str(request)]
        # A short unrecorded warm-up at the same rate, then the measured run.
        child_python("bench.load.paced", [*args, "--duration", "2"], s.client_cpu, 120)
        with contextlib.ExitStack() as stack:
            rss = [stack.enter_context(RssSampler(srv.pid)) for srv in servers]
            out: list[dict[str, Any]] = child_python(
                "bench.load.paced",
                [*args, "--duration", str(s.rate_duration_s)],
                s.client_cpu,
                s.rate_duration_s + 120,
            )
        for r, sampler in zip(out, rss, strict=True):
            r["rss_max_mb"] = sampler.max_kb / 1024
    finally:
        for srv in started:
            srv.stop()
    return {srv.name: r for srv, r in zip(servers, out, strict=True)}


def idle_run(s: Settings, srv: Server, workdir: Path) -> dict[str, Any]:
    srv.start(workdir, s.server_cpu)
    try:
        args = ["--port", str(srv.port), "--pid", str(srv.pid)]
        r: dict[str, Any] = child_python(
            "bench.load.idle",
            [*args, "--connections", str(s.idle_connections)],
            s.client_cpu,
            600,
        )
    finally:
        srv.stop()
    return r
