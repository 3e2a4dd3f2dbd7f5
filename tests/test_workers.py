"""`beacon serve --workers N`: N processes on one port, each with its own files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.admin import admin_get
from support.beacon_server import free_port, free_port_pair
from support.http_client import SteadyClients


def test_two_workers_share_the_port_and_write_their_own_files(tmp_path: Path) -> None:
    admin = free_port_pair()
    port = free_port()
    assert port not in (admin, admin + 1)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "beacon",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--admin-listen",
            f"127.0.0.1:{admin}",
            "--data-dir",
            str(tmp_path / "data"),
            "--workers",
            "2",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            if admin_get_ok(admin) and admin_get_ok(admin + 1):
                break
            time.sleep(0.05)
        clients = SteadyClients(port, threads=8).start()
        time.sleep(2)
        clients.stop()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert clients.failures == []
    files = sorted((tmp_path / "data" / "default").glob("*.jsonl"))
    assert [f.name.split(".")[1] for f in files] == ["w0", "w1"]
    per_file = [
        [int(json.loads(ln)["params"]["n"]) for ln in f.read_text().splitlines()] for f in files
    ]
    assert all(len(ns) > 0 for ns in per_file), "the kernel gave one worker nothing"
    stored = [n for ns in per_file for n in ns]
    assert sorted(stored) == sorted(set(stored))
    assert set(clients.sent_ok) <= set(stored)
    assert b"second stop signal" not in err
    print(f"\n2 workers: {[len(ns) for ns in per_file]} events per worker")


def admin_get_ok(port: int) -> bool:
    try:
        return admin_get(port, "/healthz")[0] == 200
    except OSError:
        return False
