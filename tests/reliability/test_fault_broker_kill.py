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
#: librdkafka queue small enough for a broker outage to overflow into beacon's spool.
SMALL_QUEUE = 1000


@pytest.mark.parametrize(
    "queue_max",
    [None, SMALL_QUEUE],
    ids=["librdkafka-defaults", f"librdkafka-queue-{SMALL_QUEUE}"],
)
def test_broker_sigkilled_and_restarted_under_load(
    queue_max: int | None,
    fresh_kafka_broker: KafkaBroker,
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    """With beacon's producer defaults librdkafka holds a ~12 s outage in its own queue
    (100,000 messages, 120 s timeout); with a small queue the outage overflows it and goes
    through the Kafka spool and its replay, the path where duplicates could appear."""
    broker = fresh_kafka_broker
    topic = f"rel-kill-{uuid.uuid4().hex[:8]}"
    duration = load_seconds() if queue_max is None else min(load_seconds(), 60.0)
    config = beacon_config(topic, broker.bootstrap)
    if queue_max is not None:
        config["backends"]["kafka"]["producer"] = {"queue.buffering.max.messages": queue_max}
    srv = BeaconServer(tmp_path / "srv", config).start()
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
            fault=f"kafka broker SIGKILL x{KILLS} ({duration:.0f}s load"
            + (f", librdkafka queue {queue_max})" if queue_max else ")"),
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
