"""Kafka broker SIGKILLed and restarted several times during a steady paced load, with both
backends: every accepted event in the files and in Kafka, none twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from reliability.common import (
    RATE,
    Row,
    Sampler,
    beacon_config,
    feeder_summary,
    load_seconds,
    requests,
    scan_files,
    scan_kafka,
    sleep_until,
    wait_spool_empty,
)
from support.beacon_server import BeaconServer
from support.kafka_broker import KafkaBroker
from support.load import BackgroundLoad

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KILLS = 3
DOWN_S = 3.0


def test_broker_sigkilled_and_restarted_under_load(
    fresh_kafka_broker: KafkaBroker, tmp_path: Path, record: Callable[[Row], None]
) -> None:
    broker = fresh_kafka_broker
    topic = f"rel-kill-{uuid.uuid4().hex[:8]}"
    duration = load_seconds()
    srv = BeaconServer(tmp_path / "srv", beacon_config(topic, broker.bootstrap)).start()
    sampler = Sampler(srv.admin_port).start()
    restarts: list[float] = []
    try:
        t0 = time.monotonic()
        load = BackgroundLoad("127.0.0.1", srv.port, requests(), connections=8, rate=RATE).start()
        for k in range(KILLS):
            sleep_until(t0 + (k + 1) * duration / (KILLS + 1))
            broker.kill()
            time.sleep(DOWN_S)
            t_start = time.monotonic()
            broker.start()
            restarts.append(time.monotonic() - t_start)
        sleep_until(t0 + duration)
        result = load.stop()
        elapsed = time.monotonic() - t0
        in_kafka = scan_kafka(broker.bootstrap, topic, result.sent)
        left = wait_spool_empty(srv, "kafka")
        sampler.stop()
        code = srv.stop(signal.SIGTERM)
    finally:
        sampler.stop()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    files = scan_files([srv.data_dir])
    accepted = result.statuses.get(200, 0)
    sent_ids = set(range(result.sent))
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    lost = len(sent_ids - set(files.ids)) + len(sent_ids - set(in_kafka))
    record(
        Row(
            fault=f"kafka broker SIGKILL x{KILLS} ({duration:.0f}s load)",
            sent=result.sent,
            accepted=accepted,
            in_files=len(files.ids),
            in_kafka=len(in_kafka),
            dup_kafka=dup_kafka,
            dup_files=files.duplicates,
            lost=lost,
            failed=result.sent - accepted,
            seconds=round(elapsed, 1),
            notes=f"broker restarts took {', '.join(f'{s:.1f}s' for s in restarts)}; "
            f"/healthz seen {dict(sampler.health)}; {feeder_summary(srv.log())}",
        )
    )
    assert code == 0, srv.log()[-3000:]
    assert result.errors == [] and result.unanswered == 0, result.errors[:5]
    assert result.statuses == {200: result.sent}
    assert left == [], f"kafka spool not drained: {left}"
    assert files.torn == [], files.torn[:5]
    assert set(files.ids) == sent_ids and files.duplicates == 0
    assert set(in_kafka) == sent_ids, f"missing in kafka: {sorted(sent_ids - set(in_kafka))[:20]}"
    assert dup_kafka == 0
