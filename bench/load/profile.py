"""Where a request's CPU goes, by library and by thread, on each request shape (issue 13's
"profile split"; docs/performance.md, "The split"; `make bench-profile`).

For each shape and server (beacon file, beacon file + Kafka, nginx), one after another with
the load benchmark's pinning (server on CPU 0; wrk and the broker, at idle priority, on CPU
1): a fresh server, `--warmup` s of wrk, then `--seconds` s of wrk with `perf record -F 999`
on the server's processes. Prints req/s, the server's CPU per request (all its threads, from
/proc, over the measured run), that CPU split by shared object (`perf report --sort dso`,
grouped below) and by thread, and the hypervisor's steal from the server's CPU meanwhile (a
row with more than a few % measured the host, not the server); keeps it, with the host, in
`bench/results/profile/<date>[-n].txt`. One run of each: read the split, not the req/s, and
compare servers within a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.load.clients import wrk
from bench.load.host import cpu_times, host_facts, steal_pct
from bench.load.kafka import WithBroker, with_broker
from bench.load.procs import process_tree, thread_cpu_s
from bench.load.results import RESULTS, new_stem
from bench.load.servers import REPO, Beacon, Nginx, Server
from bench.load.shapes import SHAPES, Shape, pick

#: perf's shared objects, grouped (first match wins), in the table's column order.
GROUPS: list[tuple[str, Callable[[str], bool]]] = [
    ("kernel", lambda d: d.startswith("[kernel")),
    ("CPython", lambda d: d.startswith(("libpython", "python"))),
    ("_beacon", lambda d: d.startswith("_beacon")),
    ("llhttp", lambda d: d.startswith(("parser.", "url_parser."))),
    ("uvloop", lambda d: d.startswith("loop.")),
    ("librdkafka", lambda d: d.startswith(("librdkafka", "cimpl."))),
    ("libc", lambda d: d.startswith(("libc.", "libc-", "ld-linux", "[vdso]"))),
    ("nginx", lambda d: d == "nginx"),
]
OTHER = "other"
#: Threads by `comm` (procs.thread_cpu_s). Python 3.11 leaves its threads' `comm` at the
#: process's (`python`): under load the only busy one besides the event loop is the Kafka
#: feeder.
THREADS: list[tuple[str, Callable[[str], bool]]] = [
    ("event loop", lambda t: t == "main"),
    ("file writer", lambda t: t == "beacon-file"),
    ("librdkafka", lambda t: t.startswith("rdk:")),
    ("feeder", lambda t: t.startswith("python")),
]
PROFILES = RESULTS / "profile"
DSO_LINE = re.compile(r"^\s*([\d.]+)%\s+(\S.*?)\s*$")


@dataclass
class Profile:
    """One server on one shape."""

    rps: float
    #: µs of CPU per request by thread group
    threads: dict[str, float]
    #: percent of perf's samples by library group
    dsos: dict[str, float]
    #: percent of the server's CPU the hypervisor gave to other guests meanwhile
    steal: float | None

    @property
    def total_us(self) -> float:
        return sum(self.threads.values())


def group_of(dso: str, groups: list[tuple[str, Callable[[str], bool]]]) -> str:
    return next((name for name, match in groups if match(dso)), OTHER)


def split_dsos(report: str) -> dict[str, float]:
    """`perf report --sort dso --stdio` text -> percent by group of GROUPS."""
    out: dict[str, float] = {}
    for m in map(DSO_LINE.match, report.splitlines()):
        if m:  # a share line; perf's `#` header lines never start with a number
            g = group_of(m.group(2), GROUPS)
            out[g] = out.get(g, 0.0) + float(m.group(1))
    return out


def dso_report(data: Path) -> str:
    """`perf report --sort dso` of a `perf record` file, as text."""
    argv = ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def tree_threads(pids: list[int]) -> dict[str, float]:
    """CPU seconds by thread group, summed over `pids`."""
    out: dict[str, float] = {}
    for pid in pids:
        for comm, s in thread_cpu_s(pid).items():
            g = group_of(comm, THREADS) if len(pids) == 1 else "processes"
            out[g] = out.get(g, 0.0) + s
    return out


def profile_one(srv: Server, shape: Shape, warmup_s: int, seconds: int, work: Path) -> Profile:
    """One server on one shape, `seconds` of wrk after `warmup_s`."""
    srv.start(work, "0")
    try:
        wrk(srv.port, shape, warmup_s, connections=64, threads=1, cpu="1")
        pids = process_tree(srv.pid)
        data = work / "perf.data"
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-F", "999", "-o", str(data), "-p", ",".join(map(str, pids))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.2)  # perf attached before the measured run
        before, cpu0 = tree_threads(pids), cpu_times("0")
        r = wrk(srv.port, shape, seconds, connections=64, threads=1, cpu="1")
        after, steal = tree_threads(pids), steal_pct(cpu0, cpu_times("0"))
        perf.send_signal(signal.SIGINT)  # perf writes its data and exits
        perf.wait(60)
    finally:
        srv.stop()
    n = max(1, int(r["requests"]))
    threads = {g: (after[g] - before.get(g, 0.0)) * 1e6 / n for g in after}
    return Profile(r["rps"], threads, split_dsos(dso_report(data)), steal)


def row(label: str, p: Profile, cols: list[str]) -> str:
    by_lib = [f"{p.total_us * p.dsos.get(c, 0.0) / 100:.2f}" for c in cols]
    by_thread = ", ".join(f"{g} {us:.2f}" for g, us in sorted(p.threads.items()) if us >= 0.01)
    steal = "?" if p.steal is None else f"{p.steal:.1f}"
    cells = [label, f"{p.rps:,.0f}", steal, f"{p.total_us:.2f}", *by_lib, by_thread]
    return "| " + " | ".join(cells) + " |"


def table(shape: Shape, results: dict[str, Profile]) -> str:
    """A markdown table: µs of CPU per request, all of it, by library, by thread."""
    cols = [name for name, _ in GROUPS] + [OTHER]
    head = ["µs CPU per request", "req/s", "steal %", "all", *cols, "by thread"]
    lines = [f"### {shape.label}", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += [row(label, p, cols) for label, p in results.items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--broker-warmup", type=int, default=20, help="first Kafka run, extra")
    ap.add_argument("--shapes", default="", help=f"comma-separated, of {', '.join(SHAPES)}")
    a = ap.parse_args()
    with with_broker("bench-profile") as w:
        saved = profile_all(w, a)
    print(f"\nbench-profile: written {saved.relative_to(REPO)}")


def profile_all(w: WithBroker, a: argparse.Namespace) -> Path:
    """Every shape, each server in turn; prints each shape's table, returns the file kept."""
    facts = host_facts()
    out = [
        f"bench-profile {dt.datetime.now():%Y-%m-%d %H:%M}, beacon {facts['beacon_git']}",
        f"host: {facts['summary']}",
        f"server on CPU 0, wrk -t1 -c64 on CPU 1, {a.seconds} s a row. {w.note}",
    ]
    print("\n".join(out), flush=True)
    broker_cold = True
    for shape in pick(a.shapes):
        results: dict[str, Profile] = {}
        for srv in (Beacon(w.reaper), Beacon(w.reaper, bootstrap=w.bootstrap), Nginx(w.reaper)):
            warmup = a.warmup
            if srv.name == "beacon-kafka" and broker_cold:  # the broker's JIT too
                warmup, broker_cold = warmup + a.broker_warmup, False
            work = w.tmp / f"{shape.name}-{srv.name}"
            results[srv.label] = profile_one(srv, shape, warmup, a.seconds, work)
        out.append("\n" + table(shape, results))
        print(out[-1], flush=True)
    PROFILES.mkdir(parents=True, exist_ok=True)
    saved = PROFILES / f"{new_stem(False, where=PROFILES)}.txt"
    saved.write_text("\n".join(out) + "\n")
    return saved


if __name__ == "__main__":
    main()
