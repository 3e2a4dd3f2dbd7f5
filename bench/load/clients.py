"""The load generators: wrk (throughput, one request shape through wrk_shape.lua), the
Python fixed-rate and idle clients (child processes), and a one-request probe."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.load.servers import REPO, pin
from bench.load.shapes import Shape

HERE = Path(__file__).resolve().parent


def wrk(
    port: int,
    shape: Shape,
    seconds: int,
    *,
    connections: int,
    threads: int,
    cpu: str | None,
) -> dict[str, Any]:
    """One wrk run; wrk_report.lua's JSON plus `rps` and `ok` (answers below 400)."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(HERE / "wrk_shape.lua"),
        f"http://127.0.0.1:{port}/",
    ]
    out = subprocess.run(
        pin(cpu, argv),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        env={**os.environ, "BENCH_REQUEST": str(shape.path)},
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            r: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["ok"] = r["requests"] - r["errors"]["status"]  # wrk counts status >= 400
            return r
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}):\n{out.stdout}{out.stderr}")


def child_python(module: str, args: list[str], cpu: str | None, timeout_s: float) -> Any:
    """Runs `python -m module args` (pinned to `cpu`) and parses its last stdout line."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = pin(cpu, [sys.executable, "-m", module, *args])
    out = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe(port: int, shape: Shape) -> dict[str, Any]:
    """Sends the shape's request once; its answer's status and header fields (names in
    lower case). Checks, before any load, that the server answers this shape as meant."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(shape.render(f"127.0.0.1:{port}"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
    return {"status": status, "headers": {k.lower(): v.strip() for k, v in fields.items()}}
