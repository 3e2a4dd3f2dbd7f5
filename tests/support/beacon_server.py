"""Starts the real beacon server in a subprocess on a free port and waits until it
answers, granian-style; stops it with a signal and reports the exit status."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """A port `p` with `p + 1` free too (worker i's admin listener is admin_listen + i)."""
    for _ in range(100):
        p = free_port()
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


class BeaconServer:
    """`with BeaconServer(tmp_path, config) as srv:` runs `beacon serve` on a free port.

    `config` is merged over a minimal one: a free `listen` port and `data_dir` under
    `workdir`."""

    def __init__(self, workdir: Path, config: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.port:  # the kernel may hand the same free port twice
            self.admin_port = free_port()
        self.data_dir = workdir / "data"
        self.config: dict[str, Any] = {
            "listen": f"127.0.0.1:{self.port}",
            "admin_listen": f"127.0.0.1:{self.admin_port}",
            "data_dir": str(self.data_dir),
            **(config or {}),
        }
        self.config_path = workdir / "beacon.json"
        self.log_path = workdir / "beacon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> BeaconServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config, indent=2))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "beacon", "serve", "--config", str(self.config_path)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"beacon exited {self.proc.returncode}:\n{self.log()}")
            try:
                for port in (self.port, self.admin_port):
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"beacon did not listen within {timeout_s}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.port}{target}"

    def lines(self, flavor: str = "default") -> list[dict[str, Any]]:
        """Every event in a flavor's daily files, oldest file first."""
        out: list[dict[str, Any]] = []
        for path in sorted((self.data_dir / flavor).glob("*.jsonl")):
            out.extend(json.loads(line) for line in path.read_text().splitlines())
        return out

    def __enter__(self) -> BeaconServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
