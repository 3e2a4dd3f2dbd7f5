"""The load benchmark (`make bench-load`): beacon side by side with nginx and a hand-written
pure-Python server, one after another on this machine, loaded by wrk.

Rows: beacon (file backend), beacon (file + Kafka on a real local broker), nginx empty_gif +
buffered JSON access_log (1 worker: the "physical limit"), and the uvloop + httptools +
parse_qsl + json.dumps reference ("what you'd write by hand"); optionally beacon --workers 2.
The server is pinned to CPU 0, wrk to CPU 1; `wrk -t1 -c64 --latency`, a warm-up run that is
not recorded, then the measured run; rounds alternate servers and the table shows medians.
Then a fixed-rate run (1,000 req/s, open loop) and a 10,000-idle-connection RSS run against
beacon (file) and nginx. Raw results: bench/results/<date>.json, chart: <date>.png.

    python -m bench.load.run                # full: 10 s warm-up, 20 s measured, 3 rounds
    BENCH_QUICK=1 python -m bench.load.run  # quick: 2 s warm-up, 5 s measured, 1 round
    python -m bench.load.run --help         # every knob (also settable by BENCH_* env vars)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load.procs import Reaper, RssSampler, thread_cpu_s

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "bench" / "results"

# A realistic 311-byte pageview beacon (ids, URL-encoded page and referrer URLs, viewport,
# language...): the same query as REALISTIC in bench/test_encode_query.py.
QUERY = (
    "ev=pageview&uid=7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10&sid=9a8b7c6d&ts=1795508102123"
    "&url=https%3A%2F%2Fwww.example.gr%2Fsearch%3Fq%3Dlaptop%2B15%26page%3D2%26sort%3Dprice"
    "&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dfthina%2Blaptop&vw=1920&vh=1080"
    "&lang=el-GR&tz=Europe%2FAthens&cat=computers&price=749.90&pos=3"
)
TARGET = "/track?" + QUERY
#: Extra warm-up of the first file + Kafka run, for the broker (see Beacon.extra_warmup_s).
BROKER_WARMUP_S = 30


class Unavailable(Exception):
    """A server row that cannot run here; the message says why."""


def env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v else default


@dataclass
class Settings:
    warmup_s: int = 10
    duration_s: int = 20
    rounds: int = 3
    connections: int = 64
    threads: int = 1
    rate: float = 1000.0
    rate_duration_s: int = 20
    idle_connections: int = 10_000
    server_cpu: str = "0"
    client_cpu: str = "1"
    workers2: bool = False
    kafka: bool = True
    fixed_rate: bool = True
    idle: bool = True
    only: list[str] = field(default_factory=list)
    quick: bool = False
    keep_tmp: bool = False


def parse_args(argv: list[str] | None) -> Settings:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(
        prog="python -m bench.load.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", default=quick, help="BENCH_QUICK=1")
    ap.add_argument("--warmup", type=int, help="seconds (BENCH_WARMUP; 10, quick 2)")
    ap.add_argument("--duration", type=int, help="seconds measured (BENCH_DURATION; 20, quick 5)")
    ap.add_argument("--rounds", type=int, help="rounds (BENCH_ROUNDS; 3, quick 1)")
    ap.add_argument("--rate", type=float, help="fixed-rate req/s (BENCH_RATE; 1000)")
    ap.add_argument(
        "--rate-duration", type=int, help="fixed-rate seconds (BENCH_RATE_DURATION; 20, quick 5)"
    )
    ap.add_argument(
        "--idle-connections", type=int, help="idle run connections (BENCH_IDLE_CONNS; 10000)"
    )
    ap.add_argument(
        "--workers2",
        action="store_true",
        default=os.environ.get("BENCH_WORKERS2", "") not in ("", "0"),
        help="add a `beacon serve --workers 2` row, server and wrk unpinned (BENCH_WORKERS2=1)",
    )
    ap.add_argument("--no-kafka", action="store_true", help="skip the file + Kafka row")
    ap.add_argument("--no-fixed-rate", action="store_true", help="skip the 1,000 req/s run")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle-connection run")
    ap.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help="comma-separated rows: beacon-file,beacon-kafka,nginx,python-ref,beacon-workers2",
    )
    ap.add_argument("--keep-tmp", action="store_true", help="keep the servers' temp dirs")
    a = ap.parse_args(argv)
    q = a.quick
    return Settings(
        warmup_s=a.warmup or int(env_float("BENCH_WARMUP", 2 if q else 10)),
        duration_s=a.duration or int(env_float("BENCH_DURATION", 5 if q else 20)),
        rounds=a.rounds or int(env_float("BENCH_ROUNDS", 1 if q else 3)),
        rate=a.rate or env_float("BENCH_RATE", 1000.0),
        rate_duration_s=a.rate_duration or int(env_float("BENCH_RATE_DURATION", 5 if q else 20)),
        idle_connections=a.idle_connections or int(env_float("BENCH_IDLE_CONNS", 10_000)),
        workers2=a.workers2,
        kafka=not a.no_kafka,
        fixed_rate=not a.no_fixed_rate,
        idle=not a.no_idle,
        only=[s.strip() for s in a.only.split(",") if s.strip()],
        quick=q,
        keep_tmp=a.keep_tmp,
    )


# ------------------------------------------------------------------------------ setup


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
    for tool in ("wrk", "nginx", "taskset"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise SystemExit(f"bench-load: {tool} not found")


def raise_nofile() -> int:
    """Children (servers, idle client) inherit the raised soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            last = " | ".join(ln.strip() for ln in lines[-2:])
            raise Unavailable(f"exited with status {proc.returncode}: {last}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise Unavailable(f"not listening on port {port} after {timeout_s:.0f} s")


def pin(cpu: str | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if cpu is not None else argv


def count_lines(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        with p.open("rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):  # type: ignore[misc]
                n += chunk.count(b"\n")
    return n


# ---------------------------------------------------------------------------- servers


class Server:
    """One server under test, started fresh in its own temp dir for every run."""

    name = ""
    label = ""
    pinned = True

    def __init__(self, reaper: Reaper) -> None:
        self.reaper = reaper
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = Path()
        self.port = 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Writes config files into self.workdir before start."""

    def start(self, workdir: Path, cpu: str | None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True)
        self.port = free_port()
        self.prepare()
        log = workdir / "server.log"
        with log.open("ab") as out:
            self.proc = self.reaper.popen(
                pin(cpu if self.pinned else None, self.argv()),
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_listening(self.port, self.proc, log, timeout_s=60.0)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> int:
        assert self.proc is not None
        return self.reaper.stop(self.proc, signal.SIGTERM, timeout_s=60.0)

    def lines_written(self) -> int:
        raise NotImplementedError

    def admin_stats(self) -> dict[str, Any] | None:
        return None

    def extra_warmup_s(self, s: Settings) -> int:
        """Warm-up on top of `s.warmup_s` for this run."""
        return 0


class Beacon(Server):
    def __init__(
        self, reaper: Reaper, *, bootstrap: str | None = None, workers: int | None = None
    ) -> None:
        super().__init__(reaper)
        self.bootstrap = bootstrap
        self.workers = workers
        self.admin_port = 0
        self.broker_warmed = False
        if workers:
            self.name, self.label = f"beacon-workers{workers}", f"beacon file --workers {workers}"
            self.pinned = False
        elif bootstrap is not None:
            self.name, self.label = "beacon-kafka", "beacon file+kafka"
        else:
            self.name, self.label = "beacon-file", "beacon file"

    def prepare(self) -> None:
        self.admin_port = free_port()
        cfg: dict[str, Any] = {
            "listen": f"127.0.0.1:{self.port}",
            "admin_listen": f"127.0.0.1:{self.admin_port}",
            "data_dir": str(self.workdir / "data"),
            "log_level": "warning",
        }
        if self.bootstrap is not None:
            cfg["backends"] = {"kafka": {"enabled": True, "bootstrap_servers": self.bootstrap}}
        (self.workdir / "beacon.json").write_text(json.dumps(cfg, indent=2))

    def extra_warmup_s(self, s: Settings) -> int:
        """The first file + Kafka run also warms the freshly started broker (its JIT): a
        cold broker lags, librdkafka buffers meanwhile, and round 1 would measure the JVM."""
        if self.bootstrap is None or self.broker_warmed:
            return 0
        self.broker_warmed = True
        return BROKER_WARMUP_S if not s.quick else 0

    def argv(self) -> list[str]:
        cmd = [sys.executable, "-m", "beacon", "serve", "--config", "beacon.json"]
        return [*cmd, "--workers", str(self.workers)] if self.workers else cmd

    def lines_written(self) -> int:
        return count_lines(sorted((self.workdir / "data").glob("*/*.jsonl")))

    def admin_stats(self) -> dict[str, Any] | None:
        """beacon's admin `/stats` JSON (None if the admin listener is not there yet)."""
        url = f"http://127.0.0.1:{self.admin_port}/stats"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as r:
                data = json.loads(r.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


class Nginx(Server):
    name, label = "nginx", "nginx empty_gif"

    def prepare(self) -> None:
        (self.workdir / "tmp").mkdir()
        conf = (HERE / "nginx.conf.template").read_text()
        conf = conf.replace("@DIR@", str(self.workdir)).replace("@PORT@", str(self.port))
        (self.workdir / "nginx.conf").write_text(conf)

    def argv(self) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf")]

    def stop(self) -> int:
        assert self.proc is not None
        return self.reaper.stop(self.proc, signal.SIGQUIT, timeout_s=60.0)  # graceful: flushes

    def lines_written(self) -> int:
        return count_lines([self.workdir / "access.jsonl"])


class PythonRef(Server):
    name, label = "python-ref", "python uvloop+parse_qsl"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.load.reference_server",
            "--port",
            str(self.port),
            "--out",
            str(self.workdir / "events.jsonl"),
        ]

    def start(self, workdir: Path, cpu: str | None) -> None:
        os.environ["PYTHONPATH"] = str(REPO)
        super().start(workdir, cpu)

    def lines_written(self) -> int:
        return count_lines([self.workdir / "events.jsonl"])


# ---------------------------------------------------------------------------- clients


def wrk(s: Settings, port: int, seconds: int, pinned: bool) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{s.threads}",
        f"-c{s.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(HERE / "wrk_report.lua"),
        f"http://127.0.0.1:{port}{TARGET}",
    ]
    out = subprocess.run(
        pin(s.client_cpu if pinned else None, argv),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            r: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["ok"] = r["requests"] - r["errors"]["status"]
            return r
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}):\n{out.stdout}{out.stderr}")


def child_python(module: str, args: list[str], cpu: str | None, timeout_s: float) -> Any:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = pin(cpu, [sys.executable, "-m", module, *args])
    out = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- runs


def throughput_run(s: Settings, srv: Server, workdir: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    srv.start(workdir, s.server_cpu)
    try:
        warm = wrk(s, srv.port, s.warmup_s + srv.extra_warmup_s(s), srv.pinned)
        before = srv.admin_stats()
        cpu_before = thread_cpu_s(srv.pid)
        with RssSampler(srv.pid) as rss:
            r = wrk(s, srv.port, s.duration_s, srv.pinned)
        r["rss_max_mb"] = rss.max_kb / 1024
        cpu_after = thread_cpu_s(srv.pid)
        r["thread_cpu_s"] = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
        stats = srv.admin_stats()
        r.update(rates(before, stats, s.duration_s))
        r["admin_stats"] = stats
        r["gc"] = stats.get("gc") if stats else None
        kafka = ((stats or {}).get("backends") or {}).get("kafka")
        if isinstance(kafka, dict):
            r["kafka_backlog"] = kafka.get("buffered", 0) + kafka.get("spool_pending", 0)
    finally:
        r_exit = srv.stop()
    r["exit_status"] = r_exit
    r["answered_200"] = warm["ok"] + r["ok"]
    r["lines_written"] = srv.lines_written()
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


def feeder_us_per_message(r: dict[str, Any]) -> float | None:
    """CPU time of the Kafka feeder thread per message delivered over the measured run, in
    µs: what the Kafka backend costs the server's core. The feeder is the Python thread
    other than the main one that works (`python`: the executor's threads idle meanwhile)."""
    cpu = r.get("thread_cpu_s", {}).get("python")
    delivered = r.get("kafka_delivered_per_s")
    if cpu is None or not delivered:
        return None
    return float(cpu) / (delivered * r["duration_us"] / 1e6) * 1e6


def fixed_rate_run(s: Settings, srv: Server, workdir: Path) -> dict[str, Any]:
    srv.start(workdir, s.server_cpu)
    try:
        # A short unrecorded warm-up at the same rate, then the measured run.
        args = ["--port", str(srv.port), "--target", TARGET, "--rate", str(s.rate)]
        child_python("bench.load.paced", [*args, "--duration", "2"], s.client_cpu, 120)
        with RssSampler(srv.pid) as rss:
            r: dict[str, Any] = child_python(
                "bench.load.paced",
                [*args, "--duration", str(s.rate_duration_s)],
                s.client_cpu,
                s.rate_duration_s + 120,
            )
        r["rss_max_mb"] = rss.max_kb / 1024
    finally:
        srv.stop()
    return r


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


# ----------------------------------------------------------------------------- report


_UNITS = {"_ns": 1e-3, "_us": 1.0, "_ms": 1e3, "_seconds": 1e6, "_s": 1e6}


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def gc_summary(gc: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(avg, max) GC pause in µs from beacon's /stats `gc` object, found by name: a key (or
    nested key path) with avg/mean or max in it and a unit suffix (_ns, _us, _ms, _s)."""
    if not gc:
        return None, None
    avg = mx = None
    for path, v in _flatten(gc).items():
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        parts = path.lower().split(".")
        unit = next((f for part in parts for suf, f in _UNITS.items() if part.endswith(suf)), None)
        if unit is None or "window" in path or "last" in path:
            continue
        if any(w in part for part in parts for w in ("avg", "mean", "average")):
            avg = v * unit
        elif any("max" in part for part in parts):
            mx = v * unit
    return avg, mx


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, runs in rows.items():
        ok = [r for r in runs if "unavailable" not in r]
        if not ok:
            out[name] = {"unavailable": runs[0]["unavailable"] if runs else "not run"}
            continue
        gcs = [gc_summary(r.get("gc")) for r in ok]
        avgs = [a for a, _ in gcs if a is not None]
        maxes = [m for _, m in gcs if m is not None]
        out[name] = {
            "rps": med([r["rps"] for r in ok]),
            "rps_rounds": [r["rps"] for r in ok],
            "p50_us": med([r["latency_us"]["p50"] for r in ok]),
            "p90_us": med([r["latency_us"]["p90"] for r in ok]),
            "p99_us": med([r["latency_us"]["p99"] for r in ok]),
            "p999_us": med([r["latency_us"]["p99.9"] for r in ok]),
            "max_us": med([r["latency_us"]["max"] for r in ok]),
            "rss_mb": max(r["rss_max_mb"] for r in ok),
            "gc_avg_us": med(avgs) if avgs else None,
            "gc_max_us": max(maxes) if maxes else None,
            "errors": sum(sum(r["errors"].values()) for r in ok),
            "kept_up": all(r["lines_written"] >= r["answered_200"] for r in ok),
            "lines_vs_answered": [(r["lines_written"], r["answered_200"]) for r in ok],
            "kafka_backlog": [r["kafka_backlog"] for r in ok if "kafka_backlog" in r],
            "accepted_per_s": med([r["accepted_per_s"] for r in ok if "accepted_per_s" in r])
            if any("accepted_per_s" in r for r in ok)
            else None,
            "kafka_delivered_per_s": med(
                [r["kafka_delivered_per_s"] for r in ok if "kafka_delivered_per_s" in r]
            )
            if any("kafka_delivered_per_s" in r for r in ok)
            else None,
            "feeder_us_per_msg": [
                round(f, 2) for r in ok if (f := feeder_us_per_message(r)) is not None
            ],
            "loadavg_1min_max": max(max(r.get("loadavg_1min", [0.0])) for r in ok),
        }
    return out


def fmt_us(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1000:.2f}ms" if v >= 1000 else f"{v:.0f}µs"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def report(results: dict[str, Any], servers: dict[str, str]) -> None:
    st = results["settings"]
    summary = results["summary"]
    print()
    print(
        f"Throughput: wrk -t{st['threads']} -c{st['connections']} -d{st['duration_s']}s "
        f"--latency after {st['warmup_s']} s warm-up, {st['rounds']} round(s) alternating, "
        f"medians; server on CPU {st['server_cpu']}, wrk on CPU {st['client_cpu']}; "
        f"{len(QUERY)}-byte query."
    )
    nginx_rps = summary.get("nginx", {}).get("rps")
    rows = []
    for name, m in summary.items():
        label = servers[name]
        if "unavailable" in m:
            rows.append([label, "unavailable", "", "", "", "", "", "", ""])
            continue
        ratio = f"{m['rps'] / nginx_rps:.2f}x" if nginx_rps else "n/a"
        gc = (
            f"{fmt_us(m['gc_avg_us'])}/{fmt_us(m['gc_max_us'])}"
            if name.startswith("beacon")
            else ""
        )
        rows.append(
            [
                label,
                f"{m['rps']:,.0f}",
                ratio,
                fmt_us(m["p50_us"]),
                fmt_us(m["p99_us"]),
                fmt_us(m["max_us"]),
                f"{m['rss_mb']:.1f}",
                gc,
                ("yes" if m["kept_up"] else "NO")
                + f" {sum(lw for lw, _ in m['lines_vs_answered'])}"
                + f"/{sum(a for _, a in m['lines_vs_answered'])}",
            ]
        )
    print_table(
        ["server", "req/s", "vs nginx", "p50", "p99", "max", "RSS MB", "GC avg/max", "kept up"],
        rows,
    )
    for name, m in summary.items():
        if "unavailable" in m:
            print(f"  {servers[name]}: unavailable: {m['unavailable']}")
    loads = [m["loadavg_1min_max"] for m in summary.values() if "loadavg_1min_max" in m]
    if loads:
        print(
            f"  1-min load average up to {max(loads):.1f} during the runs on "
            f"{os.cpu_count()} CPUs (the benchmark itself accounts for ~2; more means other "
            "work shared the machine and the figures are noisy)."
        )
    print(
        "  kept up: lines the server wrote (beacon: data dir after shutdown; nginx: access log)"
        " / requests answered 200 (warm-up + measured), summed over rounds."
    )
    if "unavailable" not in summary.get("beacon-workers2", {"unavailable": ""}):
        print("  beacon --workers 2: server and wrk unpinned, sharing both cores.")
    if "unavailable" not in summary.get("beacon-kafka", {"unavailable": ""}):
        backlog = summary["beacon-kafka"]["kafka_backlog"]
        seen = ", ".join(map(str, backlog)) if backlog else "n/a (no admin /stats)"
        print(f"  {results['kafka_note']} Kafka backlog at the end of each run: {seen}.")
        k = summary["beacon-kafka"]
        if k.get("accepted_per_s") is not None and k.get("kafka_delivered_per_s") is not None:
            keeps_up = k["kafka_delivered_per_s"] >= 0.99 * k["accepted_per_s"]
            print(
                f"  Kafka keeps up: accepted {k['accepted_per_s']:,.0f}/s, delivered "
                f"{k['kafka_delivered_per_s']:,.0f}/s over the measured run (median): "
                f"{'yes' if keeps_up else 'NO'}"
            )
        if k.get("feeder_us_per_msg"):
            per_round = ", ".join(f"{f:.2f}" for f in k["feeder_us_per_msg"])
            print(f"  Kafka feeder thread CPU per delivered message, each round: {per_round} µs")

    if results["fixed_rate"]:
        print()
        print(
            f"Fixed rate: {st['rate']:,.0f} req/s open loop for {st['rate_duration_s']} s "
            "(latency from each request's scheduled send time: no coordinated omission)."
        )
        rows = []
        for name, r in results["fixed_rate"].items():
            if "unavailable" in r:
                rows.append([servers[name], "unavailable", "", "", "", "", "", ""])
                continue
            lat, svc = r["latency_us"], r["service_latency_us"]
            rows.append(
                [
                    servers[name],
                    f"{r['achieved_rate']:,.0f}",
                    fmt_us(lat["p50"]),
                    fmt_us(lat["p99"]),
                    fmt_us(lat["max"]),
                    fmt_us(svc["p99"]),
                    fmt_us(r["send_lag_us"]["p99"]),
                    str(r["errors"]),
                ]
            )
        print_table(
            ["server", "req/s", "p50", "p99", "max", "p99 from send", "send delay p99", "errors"],
            rows,
        )
    if results["idle"]:
        print()
        print(f"Idle: {st['idle_connections']:,} keep-alive connections open, one request each.")
        rows = []
        for name, r in results["idle"].items():
            if "unavailable" in r:
                rows.append([servers[name], "unavailable", "", ""])
                continue
            rows.append(
                [
                    servers[name],
                    f"{r['rss_before_mb']:.1f}",
                    f"{r['rss_idle_mb']:.1f}",
                    f"{r['kb_per_connection']:.1f}",
                ]
            )
        print_table(["server", "RSS MB before", "RSS MB idle", "KB/conn"], rows)


# ------------------------------------------------------------------------------- main


def start_kafka(reaper: Reaper, tmp: Path, cpu: str | None) -> tuple[str | None, str]:
    """Starts the local broker for the file + Kafka row; (bootstrap, note). With `cpu`, all
    the broker's threads are pinned there: the broker stands in for a Kafka cluster on other
    machines, so it shares wrk's core rather than taking time from the server's."""
    probe = subprocess.run(
        [sys.executable, "-c", "import beacon.backends.kafka"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        err = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"beacon.backends.kafka cannot be imported here ({err})"
    print("bench-load: starting the Kafka broker (scripts/kafka) ...", flush=True)
    out = subprocess.run(
        [str(REPO / "scripts" / "kafka"), "start", "--dir", str(tmp / "kafka")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("bootstrap="):
            return line.removeprefix("bootstrap="), pin_broker(tmp / "kafka", cpu)
    return None, f"scripts/kafka start failed: {(out.stdout + out.stderr).strip()[-500:]}"


def pin_broker(run_dir: Path, cpu: str | None) -> str:
    """Pins every thread of the running broker to `cpu`; returns a note for the report."""
    if cpu is None:
        return "Kafka broker (JVM) unpinned on this machine."
    try:
        pid = (run_dir / "kafka.pid").read_text().strip()
    except OSError as e:
        return f"Kafka broker unpinned (no pid file: {e})."
    out = subprocess.run(["taskset", "-a", "-p", "-c", cpu, pid], capture_output=True, text=True)
    if out.returncode != 0:
        return f"Kafka broker unpinned (taskset: {out.stderr.strip()})."
    return f"Kafka broker (JVM, all threads) pinned to CPU {cpu} with wrk."


def stop_kafka(tmp: Path) -> None:
    subprocess.run(
        [str(REPO / "scripts" / "kafka"), "stop", "--dir", str(tmp / "kafka")],
        capture_output=True,
        timeout=180,
        check=False,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    s = parse_args(argv)
    ensure_tools()
    nofile = raise_nofile()
    if nofile < s.idle_connections + 1024:
        print(f"bench-load: RLIMIT_NOFILE is {nofile}; idle run may fail", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # cleaned up like Ctrl-C
    reaper = Reaper()
    tmp = Path(tempfile.mkdtemp(prefix="beacon-bench-"))
    kafka_started = False  # the file + Kafka row runs only with a broker
    results: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "uname": " ".join(platform.uname()),
            "python": sys.version.split()[0],
        },
        "settings": asdict(s),
        "query": QUERY,
        "kafka_note": "",
        "rounds": {},
        "fixed_rate": {},
        "idle": {},
    }
    try:
        servers: list[Server] = [Beacon(reaper)]
        if s.kafka and (not s.only or "beacon-kafka" in s.only):
            bootstrap, note = start_kafka(reaper, tmp, s.client_cpu)
            if not s.quick:
                note += f" Its first run warms up {BROKER_WARMUP_S} s longer (the broker's JIT)."
            kafka_started = bootstrap is not None
            results["kafka_note"] = note
            servers.append(Beacon(reaper, bootstrap=bootstrap or ""))
        servers += [Nginx(reaper), PythonRef(reaper)]
        if s.workers2:
            servers.append(Beacon(reaper, workers=2))
        if s.only:
            servers = [x for x in servers if x.name in s.only]
        labels = {x.name: x.label for x in servers}
        rows: dict[str, list[dict[str, Any]]] = {x.name: [] for x in servers}
        dead: dict[str, str] = {}
        if "beacon-kafka" in rows and not kafka_started:
            dead["beacon-kafka"] = results["kafka_note"]
        for rnd in range(s.rounds):
            for srv in servers:
                if srv.name in dead:
                    rows[srv.name].append({"unavailable": dead[srv.name]})
            live = [x for x in servers if x.name not in dead]
            order = live[rnd % max(1, len(live)) :] + live[: rnd % max(1, len(live))]
            for srv in order:
                print(f"bench-load: round {rnd + 1}/{s.rounds}: {srv.label} ...", flush=True)
                try:
                    r = throughput_run(s, srv, tmp / f"{srv.name}-r{rnd}")
                except (Unavailable, RuntimeError, subprocess.TimeoutExpired) as e:
                    why = str(e)
                    if srv.name.startswith("beacon-workers") and "--workers" in why:
                        why = f"the server rejects --workers: {why}"
                    dead[srv.name] = why
                    print(f"bench-load:   {srv.label} unavailable: {why}", flush=True)
                    rows[srv.name].append({"unavailable": why})
                    continue
                print(
                    f"bench-load:   {r['rps']:,.0f} req/s, p99 {fmt_us(r['latency_us']['p99'])}"
                    f", RSS {r['rss_max_mb']:.1f} MB, lines {r['lines_written']}"
                    f"/{r['answered_200']}",
                    flush=True,
                )
                rows[srv.name].append(r)
        results["rounds"] = rows
        results["summary"] = summarize(rows)
        side = [x for x in servers if x.name in ("beacon-file", "nginx")]
        if s.fixed_rate:
            for srv in side:
                print(f"bench-load: fixed rate {s.rate:,.0f} req/s: {srv.label} ...", flush=True)
                try:
                    results["fixed_rate"][srv.name] = fixed_rate_run(
                        s, srv, tmp / f"{srv.name}-rate"
                    )
                except (Unavailable, RuntimeError, subprocess.TimeoutExpired) as e:
                    results["fixed_rate"][srv.name] = {"unavailable": str(e)}
        if s.idle:
            for srv in side:
                print(f"bench-load: {s.idle_connections:,} idle conns: {srv.label} ...", flush=True)
                try:
                    results["idle"][srv.name] = idle_run(s, srv, tmp / f"{srv.name}-idle")
                except (Unavailable, RuntimeError, subprocess.TimeoutExpired) as e:
                    results["idle"][srv.name] = {"unavailable": str(e)}
        report(results, labels)
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = dt.date.today().isoformat() + ("-quick" if s.quick else "")
        json_path = RESULTS / f"{stem}.json"
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nbench-load: raw results in {json_path.relative_to(REPO)}")
        try:
            from bench.load.chart import draw

            png = draw(results, labels, RESULTS / f"{stem}.png")
            print(f"bench-load: chart in {png.relative_to(REPO)}")
        except ImportError as e:
            print(f"bench-load: no chart ({e}; pip install matplotlib)")
    except KeyboardInterrupt:
        print("\nbench-load: interrupted; cleaning up", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        reaper.kill_all()
        if (tmp / "kafka").exists():
            stop_kafka(tmp)
        if not s.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"bench-load: temp dirs kept in {tmp}")


if __name__ == "__main__":
    main()
