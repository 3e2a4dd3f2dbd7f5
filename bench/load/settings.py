"""The load benchmark's knobs: command-line flags, each also settable by a BENCH_* variable."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from bench.load.shapes import SHAPES, Shape, pick

ROWS = ("beacon-file", "beacon-kafka", "nginx", "python-ref", "beacon-workers2", "nginx-workers2")


def env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v else default


def env_flag(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    return default if v is None or v == "" else v != "0"


@dataclass
class Settings:
    warmup_s: int = 5
    duration_s: int = 20  # measured, bare GET
    shape_duration_s: int = 10  # measured, the other shapes
    rounds: int = 3
    connections: int = 64
    threads: int = 1
    rate: float = 1000.0
    rate_duration_s: int = 10  # each of `rounds` fixed-rate runs per server and shape
    idle_connections: int = 10_000
    server_cpu: str = "0"
    client_cpu: str = "1"
    shapes: list[str] = field(default_factory=lambda: list(SHAPES))
    workers2: bool = True
    kafka: bool = True
    fixed_rate: bool = True
    idle: bool = True
    only: list[str] = field(default_factory=list)
    quick: bool = False
    keep_tmp: bool = False

    def measured_s(self, shape: Shape) -> int:
        return self.duration_s if shape.name == "bare" else self.shape_duration_s

    @property
    def complete(self) -> bool:
        """Every shape, row and part: a run (if not quick) the README's table may show."""
        every_part = self.workers2 and self.kafka and self.fixed_rate and self.idle
        return set(self.shapes) == set(SHAPES) and not self.only and every_part


def parse_args(argv: list[str] | None, doc: str | None = None) -> Settings:
    quick = env_flag("BENCH_QUICK", False)
    d = Settings()  # the defaults; --quick's own are below
    ap = argparse.ArgumentParser(
        prog="python -m bench.load.run",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", default=quick, help="BENCH_QUICK=1")
    ap.add_argument(
        "--warmup", type=int, help=f"seconds before each run (BENCH_WARMUP; {d.warmup_s}, quick 2)"
    )
    ap.add_argument(
        "--duration",
        type=int,
        help=f"seconds measured, bare GET (BENCH_DURATION; {d.duration_s}, quick 5)",
    )
    ap.add_argument(
        "--shape-duration",
        type=int,
        help=f"seconds measured, browser GET and POST (BENCH_SHAPE_DURATION; {d.shape_duration_s}, "
        "quick 3)",
    )
    ap.add_argument("--rounds", type=int, help=f"rounds (BENCH_ROUNDS; {d.rounds}, quick 1)")
    ap.add_argument("--rate", type=float, help=f"fixed-rate req/s (BENCH_RATE; {d.rate:.0f})")
    ap.add_argument(
        "--rate-duration",
        type=int,
        help=f"fixed-rate seconds per round (BENCH_RATE_DURATION; {d.rate_duration_s}, quick 4)",
    )
    ap.add_argument(
        "--idle-connections",
        type=int,
        help=f"idle run connections (BENCH_IDLE_CONNS; {d.idle_connections})",
    )
    ap.add_argument(
        "--shapes",
        default=os.environ.get("BENCH_SHAPES", ""),
        help=f"comma-separated request shapes (BENCH_SHAPES; all: {','.join(SHAPES)})",
    )
    ap.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help=f"comma-separated rows (BENCH_ONLY): {','.join(ROWS)}",
    )
    w2 = ap.add_mutually_exclusive_group()
    w2.add_argument(
        "--workers2",
        dest="workers2",
        action="store_true",
        default=env_flag("BENCH_WORKERS2", True),
        help="the 2-worker pair, beacon --workers 2 vs nginx with 2 workers (default; "
        "BENCH_WORKERS2=0 skips it)",
    )
    w2.add_argument("--no-workers2", dest="workers2", action="store_false")
    ap.add_argument("--no-kafka", action="store_true", help="skip the file + Kafka row")
    ap.add_argument("--no-fixed-rate", action="store_true", help="skip the 1,000 req/s runs")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle-connection run")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the servers' temp dirs")
    a = ap.parse_args(argv)
    only = [r.strip() for r in a.only.split(",") if r.strip()]
    if unknown := [r for r in only if r not in ROWS]:
        ap.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS)}")
    q = a.quick
    return Settings(
        warmup_s=a.warmup or int(env_float("BENCH_WARMUP", 2 if q else d.warmup_s)),
        duration_s=a.duration or int(env_float("BENCH_DURATION", 5 if q else d.duration_s)),
        shape_duration_s=a.shape_duration
        or int(env_float("BENCH_SHAPE_DURATION", 3 if q else d.shape_duration_s)),
        rounds=a.rounds or int(env_float("BENCH_ROUNDS", 1 if q else d.rounds)),
        rate=a.rate or env_float("BENCH_RATE", d.rate),
        rate_duration_s=a.rate_duration
        or int(env_float("BENCH_RATE_DURATION", 4 if q else d.rate_duration_s)),
        idle_connections=a.idle_connections
        or int(env_float("BENCH_IDLE_CONNS", d.idle_connections)),
        shapes=[s.name for s in pick(a.shapes)],
        workers2=a.workers2,
        kafka=not a.no_kafka,
        fixed_rate=not a.no_fixed_rate,
        idle=not a.no_idle,
        only=only,
        quick=q,
        keep_tmp=a.keep_tmp,
    )
