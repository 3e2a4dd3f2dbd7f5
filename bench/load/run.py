"""The load benchmark (`make bench-load`): beacon side by side with nginx and a hand-written
pure-Python server, one after another on this machine, loaded by wrk with three request
shapes (shapes.py): wrk's bare GET, a browser's <img> GET, a sendBeacon POST.

Rows: beacon (file backend), beacon (file + Kafka on a real local broker), nginx empty_gif +
buffered JSON access_log (1 worker: the "physical limit"), and the uvloop + httptools +
parse_qsl + json.dumps reference ("what you'd write by hand"); pinned, the server to CPU 0
and wrk to CPU 1. Then the multi-core pair, beacon --workers 2 and nginx with 2 workers,
unpinned with wrk sharing the cores. Every (shape, row) pair runs on a fresh server: a probe
request, a warm-up that is not recorded, the measured run; within a shape, rounds alternate
rows and the tables show medians and ratios to nginx on the same shape. Then a fixed-rate run
(1,000 req/s, open loop) per shape and a 10,000-idle-connection RSS run against beacon (file)
and nginx. Written: bench/results/<date>[-quick].json (raw, host facts), .txt (the tables),
.png (the chart).

    python -m bench.load.run                # full: 3 rounds, 20 s bare GET, 10 s the others
    BENCH_QUICK=1 python -m bench.load.run  # quick: 1 round, 5 s / 3 s
    python -m bench.load.run --help         # every knob (also settable by BENCH_* env vars)
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.load.host import LoadSampler, host_facts
from bench.load.kafka import broker_dir, start_kafka, stop_kafka
from bench.load.procs import Reaper
from bench.load.report import fmt_us, report
from bench.load.results import new_stem, save
from bench.load.runs import fixed_rate_run, idle_run, throughput_run
from bench.load.servers import BROKER_WARMUP_S, CONTROL, REPO, Nginx, Server, Unavailable, make_rows
from bench.load.settings import ROWS, Settings, parse_args
from bench.load.shapes import ORIGIN, QUERY, SHAPES, Shape
from bench.load.summary import summarize, summarize_fixed, targets

FAILURES = (Unavailable, RuntimeError, subprocess.TimeoutExpired)


def ensure_tools() -> None:
    """Installs nginx and wrk from Debian if they are missing (needs root)."""
    wanted = [("wrk", ["wrk"]), ("nginx-light", ["nginx-light", "nginx", "nginx-full"])]
    missing = []
    for install, any_of in wanted:
        have = any(
            subprocess.run(["dpkg", "-s", p], capture_output=True).returncode == 0 for p in any_of
        )
        if not have:
            missing.append(install)
    if missing:
        print(f"bench-load: installing {' '.join(missing)} from apt", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    for tool in ("wrk", "nginx", "taskset", "chrt"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise SystemExit(f"bench-load: {tool} not found")


def raise_nofile() -> int:
    """Children (servers, idle client) inherit the raised soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def shape_facts(shape: Shape) -> dict[str, Any]:
    host = "127.0.0.1:65535"  # the longest Host a run sends
    return {
        "label": shape.label,
        "what": shape.what,
        "post": shape.is_post,
        "bytes": len(shape.render(host)),
        "header_bytes": shape.header_bytes(host),
        "request": shape.path.read_text(),
    }


def say(msg: str) -> None:
    print(f"bench-load: {msg}", flush=True)


def throughput(
    s: Settings, servers: list[Server], shape: Shape, tmp: Path, dead: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Every row on one shape, `s.rounds` times, each round in a rotated order."""
    rows: dict[str, list[dict[str, Any]]] = {x.name: [] for x in servers}
    for rnd in range(s.rounds):
        for srv in servers:
            if srv.name in dead:
                rows[srv.name].append({"unavailable": dead[srv.name]})
        live = [x for x in servers if x.name not in dead]
        k = rnd % max(1, len(live))
        for srv in live[k:] + live[:k]:
            say(f"{shape.label}, round {rnd + 1}/{s.rounds}: {srv.label} ...")
            try:
                r = throughput_run(s, srv, shape, tmp / f"{shape.name}-{srv.name}-r{rnd}")
            except FAILURES as e:
                why = str(e)
                if srv.name.startswith("beacon-workers") and "--workers" in why:
                    why = f"the server rejects --workers: {why}"
                dead[srv.name] = why
                say(f"  {srv.label} unavailable: {why}")
                rows[srv.name].append({"unavailable": why})
                continue
            lines = "n/a" if r["lines_written"] is None else r["lines_written"]
            say(
                f"  {r['rps']:,.0f} req/s, p99 {fmt_us(r['latency_us']['p99'])}, RSS "
                f"{r['rss_max_mb']:.1f} MB, lines {lines}/{r['answered_ok']}"
            )
            rows[srv.name].append(r)
    return rows


def side_runs(s: Settings, side: list[Server], shapes: list[Shape], tmp: Path) -> dict[str, Any]:
    """The fixed-rate runs (per shape, `rounds` rounds of beacon (file), nginx and the
    control nginx side by side, medians) and the idle runs against beacon and nginx."""
    fixed: dict[str, dict[str, Any]] = {}
    idle: dict[str, Any] = {}
    for shape in shapes if s.fixed_rate else []:
        runs: dict[str, list[dict[str, Any]]] = {srv.name: [] for srv in side}
        for rnd in range(s.rounds):
            k = rnd % max(1, len(side))
            order = side[k:] + side[:k]  # who goes first on the schedule alternates too
            names = " + ".join(srv.label for srv in order)
            say(
                f"fixed rate {s.rate:,.0f} req/s each, {shape.label}, round {rnd + 1}/"
                f"{s.rounds}: {names}, side by side ..."
            )
            try:
                got = fixed_rate_run(s, order, shape, tmp / f"{shape.name}-rate-r{rnd}")
            except FAILURES as e:
                got = {srv.name: {"unavailable": str(e)} for srv in order}
            for name, r in got.items():
                runs[name].append(r)
        fixed[shape.name] = {name: summarize_fixed(rs) for name, rs in runs.items()}
    for srv in [x for x in side if x.name != CONTROL] if s.idle else []:
        say(f"{s.idle_connections:,} idle conns: {srv.label} ...")
        try:
            idle[srv.name] = idle_run(s, srv, tmp / f"{srv.name}-idle")
        except FAILURES as e:
            idle[srv.name] = {"unavailable": str(e)}
    return {"fixed_rate": fixed, "idle": idle}


def row_names(s: Settings) -> list[str]:
    skip = ({"beacon-kafka"} if not s.kafka else set()) | (
        {"beacon-workers2", "nginx-workers2"} if not s.workers2 else set()
    )
    return [n for n in ROWS if (not s.only or n in s.only) and n not in skip]


def bench(s: Settings, reaper: Reaper, tmp: Path, results: dict[str, Any]) -> None:
    names = row_names(s)
    dead: dict[str, str] = {}
    bootstrap = None
    if "beacon-kafka" in names:
        bootstrap, note = start_kafka(tmp, s.client_cpu)
        if bootstrap and not s.quick:
            note += f" Its first run warms up {BROKER_WARMUP_S} s longer (the broker's JIT)."
        results["kafka_note"] = note
        if bootstrap is None:
            dead["beacon-kafka"] = note
    servers = make_rows(reaper, names, bootstrap)
    results["rows"] = {x.name: x.label for x in servers}
    shapes = [SHAPES[n] for n in s.shapes]
    for shape in shapes:
        rows = throughput(s, servers, shape, tmp, {**dead})
        results["rounds"][shape.name] = rows
        results["summary"][shape.name] = {name: summarize(runs) for name, runs in rows.items()}
    side = [x for x in servers if x.name in ("beacon-file", "nginx")]
    if any(x.name == "nginx" for x in side):
        control = Nginx(reaper, control=True)
        side.append(control)
        results["rows"][control.name] = control.label
    results.update(side_runs(s, side, shapes, tmp))
    for shape in shapes:
        cells = results["summary"][shape.name]
        results["targets"][shape.name] = targets(cells, results["fixed_rate"].get(shape.name, {}))


def new_results(s: Settings) -> dict[str, Any]:
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "complete": s.complete and not s.quick,
        "host": host_facts(),
        "settings": asdict(s),
        "query": QUERY,
        "origin": ORIGIN,
        "shapes": {n: shape_facts(SHAPES[n]) for n in s.shapes},
        "rows": {},
        "kafka_note": "",
        "rounds": {},
        "summary": {},
        "targets": {},
        "fixed_rate": {},
        "idle": {},
    }


def write_out(results: dict[str, Any], quick: bool) -> None:
    text = report(results)
    print("\n" + text, end="", flush=True)
    stem = new_stem(quick)
    path = save(results, text, stem)
    say(f"results in {path.relative_to(REPO)} and {path.with_suffix('.txt').relative_to(REPO)}")
    try:
        from bench.load.chart import draw

        png = draw(results, path.with_suffix(".png"))
        say(f"chart in {png.relative_to(REPO)}")
    except ImportError as e:
        say(f"no chart ({e}; pip install matplotlib)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    s = parse_args(argv, __doc__)
    ensure_tools()
    nofile = raise_nofile()
    if nofile < s.idle_connections + 1024:
        say(f"RLIMIT_NOFILE is {nofile}; idle run may fail")
    signal.signal(signal.SIGTERM, _interrupt)  # cleaned up like Ctrl-C
    reaper = Reaper()
    tmp = Path(tempfile.mkdtemp(prefix="beacon-bench-"))
    t0 = time.monotonic()
    load = LoadSampler().start()
    try:
        results = new_results(s)
        bench(s, reaper, tmp, results)
        results["host"]["loadavg_1min"] = load.stop()
        results["elapsed_s"] = round(time.monotonic() - t0)
        write_out(results, s.quick)
        say(f"took {results['elapsed_s'] // 60} min {results['elapsed_s'] % 60} s")
    except KeyboardInterrupt:
        print("\nbench-load: interrupted; cleaning up", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        reaper.kill_all()
        if broker_dir(tmp).exists():
            stop_kafka(tmp)
        if not s.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"temp dirs kept in {tmp}")


if __name__ == "__main__":
    main()
