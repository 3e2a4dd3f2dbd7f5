"""Process helpers: RSS of a process tree from /proc, a background RSS sampler, and a
registry that kills every process group the harness started, even on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct children of pid (every thread's children list)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def rss_kb(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (nginx's master and workers, say)."""
    tree, stack = [], [pid]
    while stack:
        p = stack.pop()
        tree.append(p)
        stack.extend(children(p))
    return tree


def tree_rss_kb(pid: int) -> int:
    """VmRSS of pid plus all its descendants, in KiB."""
    return sum(rss_kb(p) for p in process_tree(pid))


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds each thread of a process has used, summed by thread name (`comm`:
    `beacon-file`, `rdk:broker1`, ...; the main thread is `main`); from `schedstat` (ns),
    else `stat` (clock ticks). Python 3.11 leaves its threads' `comm` at `python`."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
                try:
                    cpu = int((task / "schedstat").read_text().split()[0]) / 1e9
                except OSError:
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    cpu = (int(fields[11]) + int(fields[12])) / tick
                out[name] = out.get(name, 0.0) + cpu
    return out


class RssSampler:
    """Samples a process tree's RSS every `interval_s` in a thread; `.max_kb` is the peak."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.max_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_kb = max(self.max_kb, tree_rss_kb(self.pid))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Reaper:
    """Every process group started through `popen` is SIGTERMed then SIGKILLed by
    `kill_all()` (called from the harness's `finally`)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def popen(self, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        p: subprocess.Popen[bytes] = subprocess.Popen(argv, start_new_session=True, **kw)  # type: ignore[call-overload]
        self.procs.append(p)
        return p

    def stop(
        self, p: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 30.0
    ) -> int:
        """Signals the process (not its group: a server drains on its own) and waits."""
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)
        try:
            return p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._kill_group(p)
            return p.wait()
        finally:
            self._kill_group(p)

    @staticmethod
    def _kill_group(p: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill_group(p)
                p.wait()
        self.procs.clear()
