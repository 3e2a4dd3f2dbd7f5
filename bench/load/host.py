"""Facts about the machine a run was made on (saved with every result), and the load
average sampled through the run (others' work on a shared machine shows there)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.load.servers import REPO


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def os_release() -> str:
    fields = dict(
        line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line
    )
    name = fields.get("PRETTY_NAME", "").strip('"') or platform.system()
    debian = _read("/etc/debian_version").strip()
    return f"{name} ({debian})" if debian else name


def _first_line(argv: list[str]) -> str:
    """The first line a tool prints about itself (nginx -v writes to stderr)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    return ((out.stdout + out.stderr).strip().splitlines() or ["unknown"])[0].strip()


def git_sha() -> str:
    sha = _first_line(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return sha + ("+dirty" if dirty else "")


def mem_total_gb() -> float:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def httptools_build() -> str:
    """httptools' version and whether its llhttp was built with SSE4.2
    (scripts/httptools-sse42), which moves the parser's cost per request."""
    try:
        from importlib.metadata import version

        import httptools.parser.parser as parser

        out = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(parser.__file__)],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (ImportError, OSError, subprocess.SubprocessError):
        return "httptools ?"
    return f"httptools {version('httptools')} ({'SSE4.2' if 'pcmpestri' in out else 'baseline'})"


def host_facts() -> dict[str, Any]:
    cores = os.cpu_count() or 0
    facts: dict[str, Any] = {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cores": cores,
        "mem_gb": round(mem_total_gb(), 1),
        "kernel": platform.release(),
        "os": os_release(),
        "python": sys.version.split()[0],
        "nginx": _first_line(["nginx", "-v"]).removeprefix("nginx version: "),
        "wrk": _first_line(["wrk", "-v"]).split(" Copyright")[0],
        "httptools": httptools_build(),
        "beacon_version": _first_line([sys.executable, "-m", "beacon", "--version"]),
        "beacon_git": git_sha(),
    }
    facts["summary"] = (
        f"{facts['cpu_model']}, {cores} CPUs, {facts['mem_gb']} GB; Linux {facts['kernel']};"
        f" {facts['os']}; Python {facts['python']}; {facts['httptools']}; {facts['nginx']};"
        f" {facts['wrk']}"
    )
    return facts


class LoadSampler:
    """Samples the 1-minute load average every `interval_s` in a thread, for the run's
    min/median/max."""

    def __init__(self, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.interval_s)

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        s = self.samples or [os.getloadavg()[0]]
        return {
            "start": s[0],
            "min": min(s),
            "median": statistics.median(s),
            "max": max(s),
            "end": os.getloadavg()[0],
            "samples": len(s),
        }


#: /proc/stat's columns after the CPU's name, in order; guest time is counted in user already.
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(cpu: str | None, stat: str = "/proc/stat") -> dict[str, int]:
    """`cpu`'s times in clock ticks from /proc/stat (all CPUs' sum for None)."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    for line in _read(stat).splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return dict(zip(STAT_FIELDS, map(int, fields[1:]), strict=False))
    return {}


def steal_pct(before: dict[str, int], after: dict[str, int]) -> float | None:
    """The share of a CPU's time the hypervisor gave to other guests between two
    `cpu_times`: time the server (or nginx) was ready to run and could not."""
    total = sum(after.get(k, 0) - before.get(k, 0) for k in STAT_FIELDS)
    if total <= 0 or "steal" not in after:
        return None
    return 100 * (after["steal"] - before.get("steal", 0)) / total
