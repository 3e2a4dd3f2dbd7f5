"""Drain and die, and systemd socket activation, against the real server under load."""

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

from support.admin import admin_get
from support.beacon_server import BeaconServer, free_port
from support.http_client import SteadyClients, get


def numbers(data_dir: Path) -> list[int]:
    out = []
    for path in sorted((data_dir / "default").glob("*.jsonl")):
        out += [int(json.loads(ln)["params"]["n"]) for ln in path.read_text().splitlines()]
    return out


def test_sigterm_under_load_loses_nothing_and_exits_0(tmp_path: Path) -> None:
    srv = BeaconServer(tmp_path).start()
    clients = SteadyClients(srv.port, threads=6).start()
    time.sleep(2.0)
    code = srv.stop(signal.SIGTERM)
    clients.stop()
    assert code == 0, srv.log()
    answered = set(clients.sent_ok)
    stored = numbers(srv.data_dir)
    assert len(answered) > 500
    assert len(stored) == len(set(stored)), "an event was written twice"
    assert answered <= set(stored), f"lost {len(answered - set(stored))} answered events"
    # Failures may only be connections refused once the listener closed: no request was
    # cut off mid-answer.
    assert all("ConnectionRefusedError" in f for f in clients.failures), clients.failures[:5]
    print(
        f"\nSIGTERM under load: {len(answered)} answered, {len(stored)} stored, "
        f"{clients.retries} retried after keep-alive close, 0 lost"
    )


def test_health_turns_503_for_pre_stop_while_requests_are_served(tmp_path: Path) -> None:
    srv = BeaconServer(tmp_path, {"shutdown": {"pre_stop_s": 3}}).start()
    assert admin_get(srv.admin_port, "/healthz") == (200, "ok\n")
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert admin_get(srv.admin_port, "/healthz") == (503, "draining\n")
    assert get(srv.port, "/track?n=1").status == 200  # still serving during pre-stop
    assert srv.proc.wait(30) == 0
    assert numbers(srv.data_dir) == [1]


def spawn_with_socket(sock: socket.socket, cfg_path: Path, log: Path) -> subprocess.Popen[bytes]:
    """Starts beacon the way systemd does with a socket unit: the listening socket as
    fd 3, LISTEN_FDS=1 and LISTEN_PID set to the new process's own pid."""
    fd = sock.fileno()

    def child_setup() -> None:
        os.dup2(fd, 3)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    return subprocess.Popen(
        [sys.executable, "-m", "beacon", "serve", "--config", str(cfg_path)],
        pass_fds=(3,) if fd != 3 else (),
        preexec_fn=child_setup,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_admin(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError


def test_socket_activated_restart_under_load_refuses_nothing(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = listener.getsockname()[1]
    admin_port = free_port()
    cfg = {
        # `listen` would be a different port: the passed socket must win.
        "listen": f"127.0.0.1:{free_port()}",
        "admin_listen": f"127.0.0.1:{admin_port}",
        "data_dir": str(tmp_path / "data"),
    }
    cfg_path = tmp_path / "beacon.json"
    cfg_path.write_text(json.dumps(cfg))
    log = tmp_path / "beacon.log"
    first = spawn_with_socket(listener, cfg_path, log)
    wait_admin(admin_port)
    clients = SteadyClients(port, threads=6).start()
    time.sleep(1.5)
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0, log.read_text()
    # Between the two processes, connections wait in the socket's backlog.
    second = spawn_with_socket(listener, cfg_path, log)
    wait_admin(admin_port)
    time.sleep(1.5)
    clients.stop()
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, log.read_text()
    listener.close()
    stored = numbers(tmp_path / "data")
    answered = set(clients.sent_ok)
    assert clients.failures == [], clients.failures[:5]
    assert answered <= set(stored) and len(stored) == len(set(stored))
    assert len(answered) > 500
    print(
        f"\nsocket-activated restart: {len(answered)} answered across two processes, "
        f"{clients.retries} retried after keep-alive close, 0 refused, 0 lost"
    )


def test_systemd_socket_activate_passes_the_socket(tmp_path: Path) -> None:
    port, admin_port = free_port(), free_port()
    cfg_path = tmp_path / "beacon.json"
    cfg: dict[str, Any] = {
        "admin_listen": f"127.0.0.1:{admin_port}",
        "data_dir": str(tmp_path / "data"),
    }
    cfg_path.write_text(json.dumps(cfg))
    proc = subprocess.Popen(
        [
            "systemd-socket-activate",
            "-l",
            f"127.0.0.1:{port}",
            sys.executable,
            "-m",
            "beacon",
            "serve",
            "--config",
            str(cfg_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # systemd-socket-activate listens at once and starts beacon on the first connection.
        for _ in range(100):
            try:
                r = get(port, "/track?n=7")
                break
            except OSError:
                time.sleep(0.05)
        assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert numbers(tmp_path / "data") == [7]
    assert f"127.0.0.1:{port}".encode() in err


def spooled_lines(spool: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in spool.glob("*.spool"))


def test_second_sigterm_stops_waiting_for_kafka_and_spools(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens here: Kafka is unreachable
    cfg = {
        "backends": {"kafka": {"enabled": True, "bootstrap_servers": f"127.0.0.1:{dead}"}},
        # Without the second signal the drain would wait this long for Kafka.
        "shutdown": {"timeout_s": 600},
    }
    srv = BeaconServer(tmp_path, cfg).start()
    for n in range(100):
        assert get(srv.port, f"/track?n={n}").status == 200
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # past the debounce: this is a second, deliberate signal
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(60) == 0, srv.log()
    assert "second stop signal" in srv.log()
    assert sorted(numbers(srv.data_dir)) == list(range(100))
    assert spooled_lines(srv.data_dir / "spool" / "kafka") == 100
