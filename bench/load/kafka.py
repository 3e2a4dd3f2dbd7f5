"""The local Kafka broker of the file + Kafka row (scripts/kafka): it stands in for a remote
cluster, so all its threads are pinned to wrk's CPU and never take the server's core, and
run at idle priority (SCHED_IDLE) so that they take only the time wrk leaves, as a remote
cluster would take none of it (docs/performance.md, "The broker's priority")."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.load.procs import Reaper
from bench.load.servers import REPO


def broker_dir(tmp: Path) -> Path:
    """Where a run's broker lives (`scripts/kafka --dir`): its data, logs and pid file."""
    return tmp / "kafka"


def broker_pid(run_dir: Path) -> str:
    """The broker's JVM pid, from the pid file `scripts/kafka start` writes; OSError if none."""
    return (run_dir / "kafka.pid").read_text().strip()


def start_kafka(tmp: Path, cpu: str | None) -> tuple[str | None, str]:
    """Starts the broker; (bootstrap or None, a note for the report)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import beacon.backends.kafka"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        err = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"beacon.backends.kafka cannot be imported here ({err})"
    print("bench-load: starting the Kafka broker (scripts/kafka) ...", flush=True)
    out = subprocess.run(
        [str(REPO / "scripts" / "kafka"), "start", "--dir", str(broker_dir(tmp))],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("bootstrap="):
            return line.removeprefix("bootstrap="), pin_broker(broker_dir(tmp), cpu)
    return None, f"scripts/kafka start failed: {(out.stdout + out.stderr).strip()[-500:]}"


def pin_broker(run_dir: Path, cpu: str | None) -> str:
    """Pins every thread of the running broker to `cpu` at idle priority; returns a note for
    the report. Threads the JVM starts later inherit both."""
    if cpu is None:
        return "Kafka broker (JVM) unpinned on this machine."
    try:
        pid = broker_pid(run_dir)
    except OSError as e:
        return f"Kafka broker unpinned (no pid file: {e})."
    out = subprocess.run(["taskset", "-a", "-p", "-c", cpu, pid], capture_output=True, text=True)
    if out.returncode != 0:
        return f"Kafka broker unpinned (taskset: {out.stderr.strip()})."
    note = f"Kafka broker (JVM, all threads) pinned to CPU {cpu} with wrk"
    out = subprocess.run(["chrt", "-i", "-a", "-p", "0", pid], capture_output=True, text=True)
    if out.returncode != 0:
        return f"{note}, at normal priority (chrt: {out.stderr.strip()})."
    return f"{note}, at idle priority (SCHED_IDLE: it runs when wrk waits)."


def stop_kafka(tmp: Path) -> None:
    subprocess.run(
        [str(REPO / "scripts" / "kafka"), "stop", "--dir", str(broker_dir(tmp))],
        capture_output=True,
        timeout=180,
        check=False,
    )


@dataclass
class WithBroker:
    """What a one-off measurement beside a broker runs in (`with_broker`)."""

    tmp: Path
    reaper: Reaper
    bootstrap: str
    note: str


@contextlib.contextmanager
def with_broker(tool: str) -> Iterator[WithBroker]:
    """A temp dir, a broker pinned as in the load benchmark and a reaper, for a one-off
    measurement (bench-stall, bench-profile); at the end, the servers the reaper started are
    killed, then the broker is stopped. Exits with `tool`'s name if the broker cannot start."""
    reaper = Reaper()
    with tempfile.TemporaryDirectory(prefix=f"beacon-{tool}-") as d:
        tmp = Path(d)
        try:
            bootstrap, note = start_kafka(tmp, "1")
            if bootstrap is None:
                raise SystemExit(f"{tool}: {note}")
            yield WithBroker(tmp, reaper, bootstrap, note)
        finally:
            reaper.kill_all()
            stop_kafka(tmp)
