"""Config reload on SIGHUP against the real server: under steady keep-alive load a new
flavor and new allowed origins take effect from one request to the next, with no request
failed and every answered request stored once (files; topics with the real broker); a
broken file changes nothing and is counted; restart-only keys are logged and kept; /info
shows the config's hash and load time; `--workers` forwards the signal."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from support.admin import admin_get, stats
from support.beacon_server import BeaconServer, free_port, free_port_pair
from support.http_client import SteadyClients, get

OLD_ORIGIN, NEW_ORIGIN = "https://old.test", "https://new.test"

#: Before: one flavor `a`, the default (so `b.test` lands in `a`), allowing OLD_ORIGIN.
BEFORE: dict[str, Any] = {
    "default_flavor": "a",
    "flavors": [{"name": "a", "hosts": ["a.test"], "allowed_origins": [OLD_ORIGIN]}],
}


def after(before: dict[str, Any] = BEFORE) -> dict[str, Any]:
    """A new flavor `b` for `b.test`, and NEW_ORIGIN allowed instead of OLD_ORIGIN."""
    a = {**before["flavors"][0], "allowed_origins": [NEW_ORIGIN]}
    b = {"name": "b", "hosts": ["b.test"], "allowed_origins": [NEW_ORIGIN]}
    return {**before, "flavors": [a, b]}


@dataclass
class Answer:
    n: int
    host: str
    status: int
    cors: bool


@dataclass
class Load:
    """Threads sending GETs without pause, each over its own keep-alive `requests`
    session, alternating `a.test` and `b.test`, every request from NEW_ORIGIN."""

    port: int
    threads: int = 4
    answers: list[list[Answer]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._next = iter(range(1, 10**9))
        self._lock = threading.Lock()
        self.answers = [[] for _ in range(self.threads)]
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]

    def _run(self, i: int) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                with self._lock:
                    n = next(self._next)
                host = "a.test" if n % 2 else "b.test"
                try:
                    r = session.get(
                        f"http://127.0.0.1:{self.port}/track?n={n}",
                        headers={"Host": host, "Origin": NEW_ORIGIN},
                        timeout=30,
                    )
                except requests.RequestException as e:
                    self.failures.append(f"n={n}: {e!r}")
                    continue
                cors = r.headers.get("Access-Control-Allow-Origin") == NEW_ORIGIN
                self.answers[i].append(Answer(n, host, r.status_code, cors))

    def start(self) -> Load:
        for t in self._workers:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(60)

    def count(self) -> int:
        return sum(len(a) for a in self.answers)

    def all(self) -> list[Answer]:
        return [a for answers in self.answers for a in answers]


def wait_for(what: str, cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def info(srv: BeaconServer) -> dict[str, Any]:
    status, body = admin_get(srv.admin_port, "/info")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc


def reload(srv: BeaconServer, config: dict[str, Any] | str) -> None:
    """Writes the server's config file (over the test's listeners and data dir) and sends
    SIGHUP; a string is written as it is."""
    text = config if isinstance(config, str) else json.dumps({**srv.config, **config}, indent=2)
    srv.config_path.write_text(text)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)


def reloads(srv: BeaconServer) -> dict[str, Any]:
    doc: dict[str, Any] = stats(srv.admin_port)["config"]
    return doc


def file_hash(srv: BeaconServer) -> str:
    return hashlib.sha256(srv.config_path.read_bytes()).hexdigest()


def reload_under_load(srv: BeaconServer, new: dict[str, Any]) -> tuple[Load, list[int]]:
    """Load before, during and after a reload to `new`; returns the load and how many
    answers had come when /info first showed the new config."""
    load = Load(srv.port).start()
    wait_for("load before the reload", lambda: load.count() > 400)
    old_hash = info(srv)["config"]["sha256"]
    reload(srv, new)
    wait_for("the reload", lambda: info(srv)["config"]["sha256"] != old_hash)
    in_force = [len(a) for a in load.answers]
    wait_for("load after the reload", lambda: load.count() > sum(in_force) + 400)
    load.stop()
    return load, in_force


def check_switch(load: Load, in_force: list[int], flavor_of: dict[int, str]) -> None:
    """Every request answered 200 and stored once. A request is under the new config iff
    it got CORS for NEW_ORIGIN, and then (only then) `b.test` is stored in `b`: no request
    saw part of each config. Per connection the old config's answers come first, and
    every request sent after /info showed the new config is under it."""
    assert load.failures == []
    answers = load.all()
    assert Counter(a.status for a in answers) == {200: len(answers)}
    assert sorted(flavor_of) == sorted(a.n for a in answers), "stored != answered"
    for seen, snapshot in zip(load.answers, in_force, strict=True):
        for a in seen:
            expected = "b" if a.host == "b.test" and a.cors else "a"
            assert flavor_of[a.n] == expected, f"n={a.n}: routed and answered by two configs"
        new = [a.cors for a in seen]
        switch = new.index(True) if True in new else len(new)
        assert new == [False] * switch + [True] * (len(new) - switch), "back to the old config"
        # Request `snapshot` may have been on its way while /info was read; the next not.
        assert switch <= snapshot + 1, "a request after the reload was under the old config"
    assert any(not a.cors for a in answers) and any(a.cors for a in answers)


def stored(srv: BeaconServer, *flavors: str) -> dict[int, str]:
    """Event number → the flavor whose daily file holds it (each exactly once)."""
    out: dict[int, str] = {}
    for f in flavors:
        for ev in srv.lines(f):
            n = int(ev["params"]["n"])
            assert n not in out, f"n={n} stored twice"
            assert ev["flavor"] == f
            out[n] = f
    return out


def test_a_new_flavor_and_origins_apply_from_the_next_request_under_load(
    tmp_path: Path,
) -> None:
    with BeaconServer(tmp_path, BEFORE) as srv:
        load, in_force = reload_under_load(srv, after())
        assert reloads(srv)["reloaded"] == 1 and reloads(srv)["reload_failed"] == 0
        flavors = stats(srv.admin_port)["flavors"]
        assert srv.stop() == 0
    by_n = stored(srv, "a", "b")
    check_switch(load, in_force, by_n)
    counts = Counter(by_n.values())
    assert counts["b"] > 0 and counts["a"] > counts["b"]
    # The per-flavor counters went on across the reload.
    assert flavors["a"]["accepted"] == counts["a"] and flavors["b"]["accepted"] == counts["b"]
    print(f"\nreload under load: {len(by_n)} requests, {dict(counts)} per flavor")


@pytest.mark.kafka
def test_a_new_flavor_gets_its_own_topic_and_a_renamed_topic_applies_from_the_next_request(
    kafka_broker: Any, tmp_path: Path
) -> None:
    from support.kafka_broker import consume_all

    tag = uuid.uuid4().hex[:8]
    kafka = {"enabled": True, "bootstrap_servers": kafka_broker.bootstrap}
    before = {**BEFORE, "backends": {"kafka": kafka}}
    before["flavors"] = [{**BEFORE["flavors"][0], "kafka_topic": f"a1-{tag}"}]
    new = after(before)
    new["flavors"][0]["kafka_topic"] = f"a2-{tag}"
    new["flavors"][1]["kafka_topic"] = f"b-{tag}"
    with BeaconServer(tmp_path, before) as srv:
        load, in_force = reload_under_load(srv, new)
        assert srv.stop() == 0
    by_n = stored(srv, "a", "b")
    check_switch(load, in_force, by_n)
    topic_of: dict[int, str] = {}
    for topic in ("a1", "a2", "b"):
        for m in consume_all(kafka_broker.bootstrap, f"{topic}-{tag}", None, 120.0):
            ev = json.loads(m.value())
            n = int(ev["params"]["n"])
            assert n not in topic_of, f"n={n} in {topic_of.get(n)} and {topic}"
            topic_of[n] = topic
    assert sorted(topic_of) == sorted(by_n), "Kafka holds other events than the files"
    cors = {a.n: a.cors for a in load.all()}
    for n, topic in topic_of.items():
        # Under the old config: a1; under the new one, a's events a2 and b's b.
        expected = "a1" if not cors[n] else ("a2" if by_n[n] == "a" else "b")
        assert topic == expected, f"n={n}"
    print(f"\nreload with Kafka: {dict(Counter(topic_of.values()))} per topic")


def test_a_broken_file_changes_nothing_and_is_counted(tmp_path: Path) -> None:
    with BeaconServer(tmp_path, BEFORE) as srv:
        loaded = info(srv)["config"]
        clients = SteadyClients(srv.port, threads=2, host="a.test").start()
        reload(srv, '{"flavors": [{"name": "a",}]')
        wait_for("the refusal", lambda: reloads(srv)["reload_failed"] == 1)
        bad = dict(after())
        bad["flavors"] = [*bad["flavors"], {"name": "c", "timezone": "Mars/Base"}]
        bad["limits"] = {"max_params": 0}
        reload(srv, bad)
        wait_for("the second refusal", lambda: reloads(srv)["reload_failed"] == 2)
        time.sleep(0.5)
        clients.stop()
        assert clients.failures == [] and len(clients.sent_ok) > 0
        # The old config is still in force: b.test goes to `a`, NEW_ORIGIN gets no CORS.
        r = get(srv.port, "/track?n=0", host="b.test", extra=f"Origin: {NEW_ORIGIN}\r\n")
        assert r.status == 200 and "access-control-allow-origin" not in r.headers
        r = get(srv.port, "/track?n=0", host="a.test", extra=f"Origin: {OLD_ORIGIN}\r\n")
        assert r.headers["access-control-allow-origin"] == OLD_ORIGIN
        assert info(srv)["config"] == loaded
        assert reloads(srv)["reloaded"] == 0
        status, metrics = admin_get(srv.admin_port, "/metrics")
        assert status == 200
        assert "beacon_config_reload_failed_total 2.0" in metrics.splitlines()
        assert srv.stop() == 0
    log = srv.log()
    assert "config reload refused: " in log and ": invalid JSON at line 1 column" in log
    for problem in (
        'flavors[2].timezone: unknown time zone "Mars/Base"',
        "limits.max_params: expected a positive integer, got 0",
    ):
        assert f"config reload refused: {problem}" in log, problem
    assert not (srv.data_dir / "b").exists()


def test_a_restart_only_change_is_logged_and_kept_and_the_rest_applies(tmp_path: Path) -> None:
    with BeaconServer(tmp_path, BEFORE) as srv:
        other = free_port()
        new = {**after(), "listen": f"127.0.0.1:{other}", "ring_capacity": 1024}
        old_hash = info(srv)["config"]["sha256"]
        reload(srv, new)
        wait_for("the reload", lambda: info(srv)["config"]["sha256"] != old_hash)
        counts = reloads(srv)
        assert (counts["reloaded"], counts["reload_failed"]) == (1, 0)
        r = get(srv.port, "/track?n=1", host="b.test", extra=f"Origin: {NEW_ORIGIN}\r\n")
        assert r.status == 200 and r.headers["access-control-allow-origin"] == NEW_ORIGIN
        with pytest.raises(ConnectionRefusedError):
            get(other, "/track?n=2")
        assert srv.stop() == 0
    log = srv.log()
    assert "config reload: needs a restart: listen" in log
    assert "config reload: needs a restart: ring_capacity" in log
    assert "needs a restart: admin_listen" not in log
    assert [ev["params"]["n"] for ev in srv.lines("b")] == ["1"]


def test_info_shows_the_config_hash_and_load_time_changed_by_good_reloads_only(
    tmp_path: Path,
) -> None:
    with BeaconServer(tmp_path, BEFORE) as srv:
        first = info(srv)["config"]
        assert first["sha256"] == file_hash(srv)
        loaded_at = first["loaded_at"]
        assert loaded_at.endswith("Z") and time.strptime(loaded_at[:19], "%Y-%m-%dT%H:%M:%S")
        assert stats(srv.admin_port)["config"]["sha256"] == first["sha256"]
        reload(srv, "[")
        wait_for("the refusal", lambda: reloads(srv)["reload_failed"] == 1)
        assert info(srv)["config"] == first
        reload(srv, after())
        wait_for("the reload", lambda: reloads(srv)["reloaded"] == 1)
        second = info(srv)["config"]
        assert second["sha256"] == file_hash(srv) != first["sha256"]
        assert second["loaded_at"] > first["loaded_at"]
        assert srv.stop() == 0


def test_the_supervisor_forwards_sighup_and_every_worker_reloads(tmp_path: Path) -> None:
    admin, port = free_port_pair(), free_port()
    config = tmp_path / "beacon.json"
    base = {"listen": f"127.0.0.1:{port}", "admin_listen": f"127.0.0.1:{admin}"}
    config.write_text(json.dumps({**base, **BEFORE, "data_dir": str(tmp_path / "data")}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "beacon", "serve", "--config", str(config), "--workers", "2"],
        stderr=subprocess.PIPE,
    )

    def hashes() -> list[str | None]:
        out = []
        for p in (admin, admin + 1):
            try:
                out.append(json.loads(admin_get(p, "/info")[1])["config"]["sha256"])
            except OSError:
                out.append(None)
        return out

    try:
        first = hashlib.sha256(config.read_bytes()).hexdigest()
        wait_for("both workers", lambda: hashes() == [first, first])
        config.write_text(json.dumps({**base, **after(), "data_dir": str(tmp_path / "data")}))
        second = hashlib.sha256(config.read_bytes()).hexdigest()
        proc.send_signal(signal.SIGHUP)
        wait_for("both workers reload", lambda: hashes() == [second, second])
        for _ in range(8):  # the kernel spreads connections over the workers
            assert get(port, "/track?n=1", host="b.test").status == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    files = (tmp_path / "data/b").glob("*.jsonl")
    assert sum(len(f.read_text().splitlines()) for f in files) == 8
