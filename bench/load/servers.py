"""The servers under test (the table's rows), each started fresh in its own temp dir for
every run: beacon (file; file + Kafka; --workers 2), nginx (1 or 2 workers) and the
hand-written Python reference."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.load.procs import Reaper
from bench.load.shapes import ORIGIN, Shape

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: Extra warm-up of the first file + Kafka run, for the broker (see Beacon.extra_warmup_s).
BROKER_WARMUP_S = 30
#: The fixed-rate run's control row: a second, identical nginx.
CONTROL = "nginx-aa"


class Unavailable(Exception):
    """A server row that cannot run here; the message says why."""


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


class Server:
    """One server under test. `pinned` rows run on the server CPU with wrk on the other;
    the others (several workers) run unpinned, wrk too, with one wrk thread per worker."""

    name = ""
    label = ""
    workers = 1

    def __init__(self, reaper: Reaper) -> None:
        self.reaper = reaper
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = Path()
        self.port = 0

    @property
    def pinned(self) -> bool:
        return self.workers == 1

    def argv(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Writes config files into self.workdir before start."""

    def env(self) -> dict[str, str] | None:
        return None

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
                env=self.env(),
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

    def stores(self, shape: Shape) -> bool:
        """Whether the server keeps this shape's events (the "kept up" check applies)."""
        return True

    def lines_written(self) -> int:
        raise NotImplementedError

    def admin_stats(self) -> dict[str, Any] | None:
        return None

    def extra_warmup_s(self, quick: bool) -> int:
        """Warm-up on top of the usual one for this run."""
        return 0


class Beacon(Server):
    def __init__(self, reaper: Reaper, *, bootstrap: str | None = None, workers: int = 1) -> None:
        super().__init__(reaper)
        self.bootstrap = bootstrap
        self.workers = workers
        self.admin_port = 0
        self.broker_warmed = False
        if workers > 1:
            self.name, self.label = f"beacon-workers{workers}", f"beacon file --workers {workers}"
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
            # The POST shape's Origin: allowed, so a POST takes the CORS path.
            "flavors": [{"name": "default", "allowed_origins": [ORIGIN]}],
        }
        if self.bootstrap is not None:
            cfg["backends"] = {"kafka": {"enabled": True, "bootstrap_servers": self.bootstrap}}
        (self.workdir / "beacon.json").write_text(json.dumps(cfg, indent=2))

    def extra_warmup_s(self, quick: bool) -> int:
        """The first file + Kafka run also warms the freshly started broker (its JIT): a
        cold broker lags, librdkafka buffers meanwhile, and round 1 would measure the JVM."""
        if self.bootstrap is None or self.broker_warmed:
            return 0
        self.broker_warmed = True
        return BROKER_WARMUP_S if not quick else 0

    def argv(self) -> list[str]:
        cmd = [sys.executable, "-m", "beacon", "serve", "--config", "beacon.json"]
        return [*cmd, "--workers", str(self.workers)] if self.workers > 1 else cmd

    def lines_written(self) -> int:
        return count_lines(sorted((self.workdir / "data").glob("*/*.jsonl")))

    def admin_stats(self) -> dict[str, Any] | None:
        """beacon's admin `/stats` JSON (None if the admin listener is not there yet); with
        several workers, worker 0's."""
        url = f"http://127.0.0.1:{self.admin_port}/stats"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as r:
                data = json.loads(r.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


class Nginx(Server):
    def __init__(self, reaper: Reaper, *, workers: int = 1, control: bool = False) -> None:
        """`control`: a second nginx beside the first in the fixed-rate run, the A/A pair
        whose p99 ratio is that run's noise floor (docs/performance.md, "The p99 target")."""
        super().__init__(reaper)
        self.workers = workers
        self.name = "nginx" if workers == 1 else f"nginx-workers{workers}"
        self.label = "nginx empty_gif" + (f" x{workers} workers" if workers > 1 else "")
        if control:
            self.name, self.label = CONTROL, "nginx again (A/A)"

    def prepare(self) -> None:
        (self.workdir / "tmp").mkdir()
        conf = (HERE / "nginx.conf.template").read_text()
        for key, value in {
            "@DIR@": str(self.workdir),
            "@PORT@": str(self.port),
            "@WORKERS@": str(self.workers),
            "@ORIGIN@": ORIGIN,
        }.items():
            conf = conf.replace(key, value)
        (self.workdir / "nginx.conf").write_text(conf)

    def argv(self) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", str(self.workdir), "-c", str(self.workdir / "nginx.conf")]

    def stop(self) -> int:
        assert self.proc is not None
        return self.reaper.stop(self.proc, signal.SIGQUIT, timeout_s=60.0)  # graceful: flushes

    def stores(self, shape: Shape) -> bool:
        """A POST is answered `return 204`: its access log line has `$args` only (empty), not
        the body."""
        return not shape.is_post

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
            "--allow-origin",
            ORIGIN,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO)}

    def lines_written(self) -> int:
        return count_lines([self.workdir / "events.jsonl"])


def make_rows(reaper: Reaper, names: list[str], bootstrap: str | None) -> list[Server]:
    """The servers for these row names, in the table's order; beacon-kafka uses `bootstrap`."""
    made: dict[str, Server] = {
        "beacon-file": Beacon(reaper),
        "beacon-kafka": Beacon(reaper, bootstrap=bootstrap or ""),
        "nginx": Nginx(reaper),
        "python-ref": PythonRef(reaper),
        "beacon-workers2": Beacon(reaper, workers=2),
        "nginx-workers2": Nginx(reaper, workers=2),
    }
    return [made[n] for n in made if n in names]
