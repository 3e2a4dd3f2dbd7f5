"""Two beacon instances behind HAProxy (packaging/haproxy.cfg.example), under steady load
through HAProxy: a rolling SIGTERM of one (with `shutdown.pre_stop_s`, so HAProxy's /healthz
check takes it out first) fails no request; then the other is SIGKILLed and restarted: the
requests that failed are counted and the events lost stay within the documented bound."""

from __future__ import annotations

import csv
import io
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reliability.common import (
    RATE,
    Row,
    accounting,
    beacon_config,
    memory_bound,
    scan_files,
    scan_kafka,
    wait_spool_empty,
)
from support.admin import admin_get
from support.beacon_server import BeaconServer, free_port
from support.faults import BlackholeProxy, HAProxy, PacedClients, haproxy_config
from support.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

PRE_STOP_S = 5.0
OUTAGE_S = 15.0


def server_states(stats_port: int) -> dict[str, str]:
    """HAProxy's view of each server (`UP`, `DOWN`, `UP 1/2`...), from its stats CSV."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/;csv", timeout=5) as r:
        text = r.read().decode().lstrip("# ")
    return {
        row["svname"]: row["status"]
        for row in csv.DictReader(io.StringIO(text))
        if row["pxname"] == "beacon" and row["svname"].startswith("beacon")
    }


def wait_state(stats_port: int, server: str, state: str, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server_states(stats_port).get(server) == state:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[BeaconServer], HAProxy, int, int]]:
    config = beacon_config(None, None, shutdown={"pre_stop_s": PRE_STOP_S})
    servers = [BeaconServer(tmp_path / f"beacon{i}", config) for i in (1, 2)]
    port, stats_port = free_port(), free_port()
    cfg = haproxy_config(port, [(s.port, s.admin_port) for s in servers], stats_port)
    proxy = HAProxy(tmp_path / "haproxy", cfg)
    try:
        for s in servers:
            s.start()
        proxy.start(port)
        yield servers, proxy, port, stats_port
    finally:
        proxy.stop()
        for s in servers:
            if s.proc is not None and s.proc.poll() is None:
                s.stop()


def test_rolling_sigterm_then_sigkill_behind_haproxy(
    cluster: tuple[list[BeaconServer], HAProxy, int, int], record: Callable[[Row], None]
) -> None:
    (a, b), _proxy, port, stats_port = cluster
    assert wait_state(stats_port, "beacon1", "UP") and wait_state(stats_port, "beacon2", "UP")
    clients = PacedClients(port, threads=8, rate=RATE * 0.8, host="localhost").start()
    t0 = time.monotonic()
    try:
        time.sleep(5)
        # Phase 1: SIGTERM beacon1 (a rolling restart): HAProxy sees 503, drains it first.
        f_term0 = len(clients.failures)
        assert a.stop(signal.SIGTERM) == 0, a.log()[-3000:]
        a_down_seen = server_states(stats_port).get("beacon1", "?")
        time.sleep(1)
        f_term1 = len(clients.failures)
        a.start()
        assert wait_state(stats_port, "beacon1", "UP"), server_states(stats_port)
        time.sleep(3)
        # Phase 2: SIGKILL beacon2, restart it on the same data and spool directories.
        f_kill0 = len(clients.failures)
        assert b.proc is not None
        b.proc.kill()
        b.proc.wait()
        time.sleep(3)
        b.start()
        assert wait_state(stats_port, "beacon2", "UP"), server_states(stats_port)
        time.sleep(3)
    finally:
        clients.stop()
    elapsed = time.monotonic() - t0
    f_kill1 = len(clients.failures)
    # a: restarted after its SIGTERM in the first phase; b: after its SIGKILL.
    unaccounted = accounting(a, b)
    assert a.stop(signal.SIGTERM) == 0 and b.stop(signal.SIGTERM) == 0
    files = scan_files([a.data_dir, b.data_dir])
    answered = set(clients.sent_ok)
    lost_ids = answered - set(files.ids)
    bound = memory_bound(RATE)
    term_failures = clients.failures[f_term0:f_term1]
    kill_failures = clients.failures[f_kill0:f_kill1]
    sent = clients.next_id() - 1
    kinds = sorted({f.split(": ", 1)[1] for f in kill_failures})[:3]
    print(
        f"\nHAProxy: sent {sent}, 200 {len(answered)}, retried by clients {clients.retries}; "
        f"SIGTERM phase failures {len(term_failures)} {term_failures[:3]}; "
        f"SIGKILL phase failures {len(kill_failures)} {kill_failures[:3]}; "
        f"beacon1 state after its exit: {a_down_seen}"
    )
    record(
        Row(
            fault="2 beacons behind HAProxy: SIGTERM one, SIGKILL+restart other",
            sent=sent,
            accepted=len(answered),
            in_files=len(files.ids),
            in_kafka=None,
            dup_kafka=None,
            dup_files=files.duplicates,
            lost=len(lost_ids),
            failed=len(clients.failures),
            seconds=round(elapsed, 1),
            lost_bound=bound,
            unaccounted=sum(unaccounted.values()),
            notes=f"failed at client: {len(term_failures)} in the SIGTERM phase, "
            f"{len(kill_failures)} in the SIGKILL phase ({kinds}); "
            f"client keep-alive retries {clients.retries}",
        )
    )
    assert not any(unaccounted.values()), unaccounted
    assert files.torn == [], files.torn[:5]
    assert files.duplicates == 0
    assert term_failures == [], term_failures[:5]
    assert clients.failures == kill_failures, clients.failures[:5]
    assert len(lost_ids) <= bound


def test_kafka_unreachable_behind_haproxy(
    tmp_path: Path, kafka_broker: KafkaBroker, record: Callable[[Row], None]
) -> None:
    """Kafka unreachable while two beacons sit behind HAProxy with the example's health check.

    Each beacon keeps answering 200 and spools. Its /healthz stays 200 ("ok (degraded: kafka
    down, spooling)"): a shared Kafka outage must not take every instance out of HAProxy at
    once (a 503 there once made HAProxy answer 503 itself). Nothing fails at the client, and
    what beacon accepted is all in files and Kafka once it is back."""
    gate_port = free_port()  # Kafka's bootstrap address: nothing listens there at first
    topic = f"rel-hpk-{uuid.uuid4().hex[:8]}"
    config = beacon_config(topic, f"127.0.0.1:{gate_port}")
    servers = [BeaconServer(tmp_path / f"beacon{i}", config) for i in (1, 2)]
    port, stats_port = free_port(), free_port()
    cfg = haproxy_config(port, [(s.port, s.admin_port) for s in servers], stats_port)
    proxy = HAProxy(tmp_path / "haproxy", cfg)
    assert kafka_broker.port is not None
    gate = BlackholeProxy(gate_port, kafka_broker.port)
    try:
        for s in servers:
            s.start()
        proxy.start(port)
        clients = PacedClients(port, threads=4, rate=RATE * 0.4, host="localhost").start()
        t0 = time.monotonic()
        try:
            time.sleep(OUTAGE_S)
            states_in_outage = server_states(stats_port)
            failed_in_outage = len(clients.failures)
            gate.start()  # Kafka reachable again
            # Wait for both instances to be back in rotation (or 20 s: see the finding below).
            wait_state(stats_port, "beacon1", "UP", 20) and wait_state(
                stats_port, "beacon2", "UP", 20
            )
            states_after = server_states(stats_port)
            # Each instance sees Kafka again, even one that got no traffic meanwhile.
            deadline = time.monotonic() + 30
            while True:
                health_after = [admin_get(s.admin_port, "/healthz") for s in servers]
                if health_after == [(200, "ok\n")] * 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(2)
        finally:
            clients.stop()
        elapsed = time.monotonic() - t0
        answered = set(clients.sent_ok)
        left = [p for s in servers for p in wait_spool_empty(s, "kafka")]
        unaccounted = accounting(*servers)
        codes = [s.stop(signal.SIGTERM) for s in servers]
        in_kafka = scan_kafka(kafka_broker.bootstrap, topic, None)
    finally:
        proxy.stop()
        gate.close()
        for s in servers:
            if s.proc is not None and s.proc.poll() is None:
                s.stop()
    files = scan_files([s.data_dir for s in servers])
    lost = len(answered - set(files.ids)) + len(answered - set(in_kafka))
    kinds = sorted({f.split(": ", 1)[1] for f in clients.failures})[:3]
    record(
        Row(
            fault=f"kafka unreachable {OUTAGE_S:.0f}s, 2 beacons behind HAProxy",
            sent=clients.next_id() - 1,
            accepted=len(answered),
            in_files=len(set(files.ids) & answered),
            in_kafka=len(set(in_kafka) & answered),
            dup_kafka=sum(c - 1 for c in in_kafka.values()),
            dup_files=files.duplicates,
            lost=lost,
            failed=len(clients.failures),
            seconds=round(elapsed, 1),
            unaccounted=sum(unaccounted.values()),
            notes=f"HAProxy saw {states_in_outage} during the outage; {failed_in_outage} "
            f"requests failed at the client then ({kinds}); after Kafka came back: HAProxy "
            f"{states_after}, /healthz {health_after}",
        )
    )
    assert codes == [0, 0] and left == []
    assert not any(unaccounted.values()), unaccounted
    assert files.torn == [] and files.duplicates == 0
    assert lost == 0
    assert clients.failures == [], clients.failures[:5]
    assert states_after == {"beacon1": "UP", "beacon2": "UP"}, states_after
    assert health_after == [(200, "ok\n")] * 2, health_after
