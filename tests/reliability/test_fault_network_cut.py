"""The network to the broker cut without killing it: a proxy that the broker advertises and
beacon bootstraps through stops moving bytes for 30+ s (connections held open, silent), then
resumes. Every accepted event ends up in the files and in Kafka, none twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import FAST_RESTART_PROPS
from reliability.common import (
    RATE,
    Row,
    Sampler,
    accounting,
    beacon_config,
    check_exactly_once,
    memory_bound,
    requests,
    scan_files,
    scan_kafka,
    sleep_until,
    spool_segments,
    stop_and_collect,
    wait_spool_empty,
)
from support.admin import stats
from support.beacon_server import BeaconServer, free_port
from support.faults import BlackholeProxy, PacedClients
from support.kafka_broker import KafkaBroker
from support.load import BackgroundLoad

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CUT_S = 35.0
BEFORE_S = 8.0
AFTER_S = 12.0


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[KafkaBroker, BlackholeProxy]]:
    """A broker whose advertised listener is the proxy: clients that bootstrap through the
    proxy are told to connect to the proxy again, so nothing bypasses the cut."""
    broker_port, proxy_port = free_port(), free_port()
    proxy = BlackholeProxy(proxy_port, broker_port).start()
    broker = KafkaBroker(
        tmp_path / "kafka",
        port=broker_port,
        props={
            **FAST_RESTART_PROPS,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}",
        },
    )
    broker.start()
    try:
        yield broker, proxy
    finally:
        proxy.close()
        if broker.is_running():
            broker.stop()


def test_network_cut_to_broker_loses_nothing(
    proxied_broker: tuple[KafkaBroker, BlackholeProxy],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    _broker, proxy = proxied_broker
    bootstrap = f"127.0.0.1:{proxy.listen_port}"
    topic = f"rel-cut-{uuid.uuid4().hex[:8]}"
    srv = BeaconServer(tmp_path / "srv", beacon_config(topic, bootstrap)).start()
    sampler = Sampler(srv.admin_port).start()
    try:
        t0 = time.monotonic()
        load = BackgroundLoad("127.0.0.1", srv.port, requests(), connections=8, rate=RATE)
        load.start()
        sleep_until(t0 + BEFORE_S)
        conns_before = proxy.connections
        proxy.cut()
        t_cut = time.monotonic()
        sleep_until(t_cut + CUT_S)
        proxy.heal()
        cut_s = time.monotonic() - t_cut
        sleep_until(time.monotonic() + AFTER_S)
        out = stop_and_collect(srv, load, sampler, t0, (bootstrap, topic), spool="kafka")
    finally:
        sampler.stop()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    check_exactly_once(
        srv,
        out,
        f"network cut to broker {cut_s:.0f}s (blackhole proxy)",
        f"proxy connections {conns_before} before the cut, {proxy.connections} total; "
        f"kafka reported down: {sampler.kafka_down_seen}; /healthz seen {dict(sampler.health)}",
        record,
    )


#: A small queue, so that README's bound is small enough for the test to tell it apart from
#: what librdkafka holds.
SMALL_RING = 1024
CUT_BEFORE_KILL_S = 20.0


def test_beacon_sigkilled_during_network_cut(
    proxied_broker: tuple[KafkaBroker, BlackholeProxy],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    """SIGKILL while the broker is unreachable but not refusing: librdkafka keeps accepting
    messages into its own queue (up to `queue.buffering.max.messages`, for up to
    `message.timeout.ms`) and nothing reaches the spool, so everything queued during the
    partition is in memory. README's bound counts `ring_capacity` per queue, the file buffer
    and the spool buffer, not librdkafka's queue: this scenario measures the real loss and
    holds it to README's bound plus librdkafka's queue (the written reason for the relaxed
    bound; see the note of this row)."""
    _broker, proxy = proxied_broker
    bootstrap = f"127.0.0.1:{proxy.listen_port}"
    topic = f"rel-cutkill-{uuid.uuid4().hex[:8]}"
    config = beacon_config(topic, bootstrap, ring_capacity=SMALL_RING)
    srv = BeaconServer(tmp_path / "srv", config).start()
    clients = PacedClients(srv.port, threads=4, rate=RATE, host="localhost").start()
    t0 = time.monotonic()
    try:
        time.sleep(5)
        proxy.cut()
        time.sleep(CUT_BEFORE_KILL_S)
        up_before_kill = stats(srv.admin_port)["backends"]["kafka"]
        spooled_before_kill = len(spool_segments(srv, "kafka"))
        assert srv.proc is not None
        srv.proc.kill()
        srv.proc.wait()
        killed_at_id = clients.next_id()
        proxy.heal()
        time.sleep(2)
        srv.start()
        time.sleep(8)
    finally:
        clients.stop()
    elapsed = time.monotonic() - t0
    answered = set(clients.sent_ok)
    try:
        left = wait_spool_empty(srv, "kafka") + wait_spool_empty(srv, "file")
        unaccounted = accounting(srv)
        code = srv.stop(signal.SIGTERM)
        in_kafka = scan_kafka(bootstrap, topic, None)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    files = scan_files([srv.data_dir])
    lost_files = answered - set(files.ids)
    lost_kafka = answered - set(in_kafka)
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    readme_bound = memory_bound(RATE, ring_capacity=SMALL_RING)
    librdkafka_queue = 100_000  # beacon's default queue.buffering.max.messages
    record(
        Row(
            fault=f"beacon SIGKILL after {CUT_BEFORE_KILL_S:.0f}s network cut (ring {SMALL_RING})",
            sent=clients.next_id() - 1,
            accepted=len(answered),
            in_files=len(set(files.ids) & answered),
            in_kafka=len(set(in_kafka) & answered),
            dup_kafka=dup_kafka,
            dup_files=files.duplicates,
            lost=len(lost_files) + len(lost_kafka),
            failed=len(clients.failures),
            seconds=round(elapsed, 1),
            lost_bound=readme_bound,
            unaccounted=sum(unaccounted.values()),
            notes=f"lost {len(lost_files)} in files, {len(lost_kafka)} in kafka; README bound "
            f"{readme_bound} per backend; kafka backend at the kill: {up_before_kill}, "
            f"{spooled_before_kill} kafka spool segments; killed at id ~{killed_at_id}",
        )
    )
    assert code == 0, srv.log()[-3000:]
    assert not any(unaccounted.values()), unaccounted  # the restarted instance's figures
    assert files.torn == [] and files.duplicates == 0, files.torn[:5]
    assert left == []
    assert dup_kafka == 0
    assert len(lost_files) <= readme_bound
    # Relaxed on purpose (see the docstring): README's bound does not cover librdkafka's queue.
    assert len(lost_kafka) <= readme_bound + librdkafka_queue
    assert all(n < killed_at_id for n in lost_files | lost_kafka)
