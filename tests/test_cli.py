"""The `beacon` command: version, check-config, serve with defaults and flags, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from beacon import __version__
from support.beacon_server import free_port
from support.http_client import get


def beacon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "beacon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_version() -> None:
    r = beacon("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"beacon {__version__}"


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"flavors": [{"name": "a"}, {"name": "b", "hosts": ["b.x"]}]}))
    r = beacon("check-config", str(path))
    assert r.returncode == 0, r.stderr
    assert "ok (2 flavors)" in r.stdout


def test_check_config_reports_every_error_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    bad = {
        "listen": "nowhere",
        "ring_capacity": -1,
        "flavors": [{"name": "a", "timezone": "Mars/Base"}, {"name": "b", "query_format": "x"}],
        "backends": {"file": {"flush_interval_ms": "soon"}},
        "colour": "blue",
    }
    path.write_text(json.dumps(bad))
    r = beacon("check-config", str(path))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    for key in (
        "listen:",
        "ring_capacity:",
        "flavors[0].timezone: unknown time zone",
        "flavors[1].query_format:",
        "backends.file.flush_interval_ms:",
        "colour: unknown key",
    ):
        assert sum(key in ln for ln in lines) == 1, (key, lines)
    assert len(lines) == 6


@pytest.mark.parametrize(
    ("producer", "says"),
    [
        ({"linger.msec": 5}, "linger.msec"),  # no such librdkafka property
        ({"compression.type": "brotli"}, '"brotli"'),  # no such value
        ({"acks": "1"}, "idempotence"),  # conflicts with beacon's idempotent default
    ],
)
def test_check_config_asks_librdkafka_about_producer_settings(
    tmp_path: Path, producer: dict[str, object], says: str
) -> None:
    path = tmp_path / "c.json"
    kafka = {"enabled": True, "bootstrap_servers": "127.0.0.1:9", "producer": producer}
    path.write_text(json.dumps({"backends": {"kafka": kafka}}))
    r = beacon("check-config", str(path))
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("beacon: config: backends.kafka.producer: ")
    assert says in lines[0], lines
    # serve refuses the same file the same way, before listening.
    r = beacon("serve", "--config", str(path), "--listen", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == lines


def test_check_config_accepts_good_producer_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    producer = {"linger.ms": 20, "compression.type": "zstd", "client.id": "edge-1"}
    kafka = {"enabled": True, "bootstrap_servers": "127.0.0.1:9", "producer": producer}
    path.write_text(json.dumps({"backends": {"kafka": kafka}}))
    r = beacon("check-config", str(path))
    assert r.returncode == 0, r.stderr


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n  "listen": "127.0.0.1:80",\n  oops\n}')
    r = beacon("check-config", str(path))
    assert r.returncode == 2
    assert "line 3" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_missing_config_file(tmp_path: Path) -> None:
    r = beacon("serve", "--config", str(tmp_path / "absent.json"))
    assert r.returncode == 2
    assert "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [["serve", "--listen", "localhost"], ["serve", "--bogus"], ["frobnicate"], []],
)
def test_bad_flags_give_one_line_and_exit_2(args: list[str]) -> None:
    r = beacon(*args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def wait_listening(proc: subprocess.Popen[bytes], port: int) -> None:
    for _ in range(300):
        assert proc.poll() is None, "server exited early"
        try:
            get(port, "/healthcheck-probe")
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_with_no_config_writes_under_cwd_data_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port, admin = free_port(), free_port()
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
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(proc, port)
        page = get(admin, "/")  # where the start-up line says the dashboard is
        assert page.status == 200 and b"<html" in page.body.lower()
        for i in range(500):
            assert get(port, f"/track?ev=view&id={i}").status == 200
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    today = datetime.now(UTC).date().isoformat()
    lines = (tmp_path / "data" / "default" / f"{today}.jsonl").read_text().splitlines()
    assert [json.loads(ln)["params"] for ln in lines] == [
        {"ev": "view", "id": str(i)} for i in range(500)
    ]
    assert b"listening on 127.0.0.1:" in err
    assert f"dashboard at http://127.0.0.1:{admin}/".encode() in err


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"listen": "127.0.0.1:1", "data_dir": str(tmp_path / "from-file")}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "beacon",
            "serve",
            "--config",
            str(cfg),
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path / "from-flag"),
            "--admin-listen",
            f"127.0.0.1:{free_port()}",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(proc, port)
        assert get(port, "/track?x=1").status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    assert list((tmp_path / "from-flag" / "default").glob("*.jsonl"))
    assert not (tmp_path / "from-file").exists()


def test_the_packaged_example_config_is_valid() -> None:
    example = Path(__file__).parents[1] / "packaging" / "config.example.json"
    r = beacon("check-config", str(example))
    assert r.returncode == 0, r.stderr
