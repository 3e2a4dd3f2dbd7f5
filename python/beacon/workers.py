"""`beacon serve --workers N`: a supervisor that runs N worker processes, each a complete
beacon (its own ring, file writer and Kafka producer) on the same address through
SO_REUSEPORT. Signals are forwarded; a worker that dies unexpectedly is restarted."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from beacon.config import Config
from beacon.sdnotify import notify

log = logging.getLogger("beacon.workers")
RESTART_DELAY_S = 1.0


class Supervisor:
    def __init__(self, cfg: Config, argv: list[str], workers: int) -> None:
        self.cfg = cfg
        self.argv = argv
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.stopping = False
        # Sockets passed by systemd are inherited by every worker.
        self.listen_fds = int(os.environ.pop("LISTEN_FDS", "0") or 0)
        os.environ.pop("LISTEN_PID", None)

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        fds = self.listen_fds

        def child_setup() -> None:
            if fds:
                os.environ["LISTEN_FDS"] = str(fds)
                os.environ["LISTEN_PID"] = str(os.getpid())

        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        args = [*self.argv, "--worker-index", str(index), "--workers", str(self.workers)]
        return subprocess.Popen(
            [sys.executable, "-m", "beacon", *args],
            env=env,
            pass_fds=tuple(range(3, 3 + fds)),
            preexec_fn=child_setup,
            # Own session: a terminal's Ctrl-C reaches the supervisor, which forwards it.
            start_new_session=True,
        )

    def forward(self, sig: int) -> Callable[[int, object], None]:
        def handler(_signum: int, _frame: object) -> None:
            if sig in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
                self.stopping = True
                notify("STOPPING=1")
            for p in self.procs:
                if p is not None and p.poll() is None:
                    p.send_signal(sig)

        return handler

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        admin = self.cfg.admin_listen
        deadline = time.monotonic() + timeout_s
        for i in range(self.workers):
            while time.monotonic() < deadline and not self.stopping:
                try:
                    socket.create_connection((admin.host, admin.port + i), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.forward(sig))
        self.procs = [self.spawn(i) for i in range(self.workers)]
        self.wait_ready()
        log.info("%d workers up", self.workers)
        notify("READY=1")
        codes: dict[int, int] = {}
        while len(codes) < self.workers:
            for i, p in enumerate(self.procs):
                if i in codes or p is None or p.poll() is None:
                    continue
                if self.stopping:
                    codes[i] = p.returncode
                else:
                    log.error("worker %d exited %d; restarting", i, p.returncode)
                    time.sleep(RESTART_DELAY_S)
                    self.procs[i] = self.spawn(i)
            time.sleep(0.05)
        bad = {i: c for i, c in codes.items() if c != 0}
        if bad:
            log.error("workers exited with errors: %s", bad)
        return 1 if bad else 0
