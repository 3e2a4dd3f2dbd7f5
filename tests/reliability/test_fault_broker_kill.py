"""Kafka broker SIGKILLed and restarted several times during a steady paced load, with both
backends: every accepted event in the files and in Kafka, none twice."""

from __future__ import annotations

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
    check_exactly_once,
    load_seconds,
    requests,
    sleep_until,
    stop_and_collect,
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
        out = stop_and_collect(srv, load, sampler, t0, (broker.bootstrap, topic), spool="kafka")
    finally:
        sampler.stop()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    check_exactly_once(
        srv,
        out,
        f"kafka broker SIGKILL x{KILLS} ({duration:.0f}s load"
        + (f", librdkafka queue {queue_max})" if queue_max else ")"),
        f"broker restarts took {', '.join(f'{s:.1f}s' for s in restarts)}; "
        f"/healthz seen {dict(sampler.health)}",
        record,
    )
