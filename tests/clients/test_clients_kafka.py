"""curl into a beacon with both backends on a real broker: what a pixel GET and a
sendBeacon-style POST store reaches Kafka as the very event the daily file holds, with its id
as the header `id` (the feeder lends each value to confluent-kafka without a copy:
rust/src/sinks/kafka/lent.rs)."""

from __future__ import annotations

import json
import uuid

import pytest

from support import clients
from support.beacon_server import BeaconServer
from support.clients.curl import curl, transfer
from support.kafka_broker import KafkaBroker, consume_all

pytestmark = pytest.mark.clients


def test_curl_events_reach_kafka_as_the_file_stores_them(
    kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    topic = f"clients-{uuid.uuid4().hex[:8]}"
    config = {
        "default_flavor": "web",
        "flavors": [{"name": "web", "kafka_topic": topic}],
        "backends": {
            "file": {"flush_interval_ms": 20},
            "kafka": {"enabled": True, "bootstrap_servers": kafka_broker.bootstrap},
        },
    }
    run = clients.tag()
    with BeaconServer(tmp_path_factory.mktemp("clients-kafka"), config) as srv:
        r = curl(
            transfer(srv.url(f"/track?ev=view&r={run}&q=caf%C3%A9")),
            transfer(
                srv.url("/track"),
                opts=("-H", "Content-Type: text/plain", "--data-binary", f"ev=buy&r={run}"),
            ),
        ).check()
        assert r.codes == ["200", "204"]
        msgs = consume_all(kafka_broker.bootstrap, topic, expected_count=2, timeout_s=60.0)
    stored = srv.lines("web")  # after the stop: every line is in the file
    assert [ev["params"] for ev in stored] == [
        {"ev": "view", "r": run, "q": "café"},
        {"ev": "buy", "r": run},
    ]
    assert [json.loads(m.value()) for m in msgs] == stored
    assert [m.headers() for m in msgs] == [[("id", ev["id"].encode())] for ev in stored]
