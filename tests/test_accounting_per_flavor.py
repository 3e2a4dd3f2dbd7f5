"""Loss accounting per flavor and backend on a real server (file + a real Kafka broker):
one flavor's events are refused for good by Kafka (larger than its topic allows), the
other's are delivered; `/stats` (`backends.<name>.flavors.<flavor>`) and `/metrics`
(`beacon_backend_flavor_*{backend,flavor}`) show it flavor by flavor, and each flavor's
identity holds (rust/src/sinks/per_flavor.rs)."""

from __future__ import annotations

import json
import secrets
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from beacon._beacon import backend_flavor_stats
from support.accounting import wait_accounted
from support.admin import admin_get, stats
from support.beacon_server import BeaconServer
from support.http_client import get
from support.kafka_broker import KafkaBroker, consume_all

pytestmark = pytest.mark.kafka

N_OK = 30
N_BIG = 12


def _create_topic(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        future.result(30)


def flavor_metrics(text: str) -> dict[tuple[str, str, str], float]:
    """(backend, flavor, /stats key) -> value, from /metrics, through the per-flavor schema."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    out = {}
    for key, metric, _kind, _help, _only in backend_flavor_stats():
        for s in families[metric].samples if metric in families else []:
            if not s.name.endswith("_created"):
                out[(s.labels["backend"], s.labels["flavor"], key)] = s.value
    return out


def test_a_flavor_kafka_refuses_shows_in_its_own_figures(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = {"ok": f"ok-{tag}", "big": f"big-{tag}"}
    _create_topic(kafka_broker.bootstrap, topics["big"], {"max.message.bytes": "2000"})
    config = {
        "default_flavor": None,
        "flavors": [
            {"name": name, "hosts": [f"{name}.test"], "kafka_topic": topic}
            for name, topic in topics.items()
        ],
        "backends": {
            "file": {"enabled": True},
            "kafka": {"enabled": True, "bootstrap_servers": kafka_broker.bootstrap},
        },
    }
    # Random hex: compression cannot bring it under the topic's 2,000 bytes.
    sends = [("ok.test", f"/track?n={i}") for i in range(N_OK)]
    sends += [("big.test", f"/track?n={i}&pad={secrets.token_hex(1300)}") for i in range(N_BIG)]
    with BeaconServer(tmp_path / "srv", config) as srv:
        for host, target in sends:
            assert get(srv.port, target, host=host).status == 200
        kafka: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kafka = stats(srv.admin_port)["backends"]["kafka"]
            if kafka["rejected"] == N_BIG and kafka["delivered"] == N_OK:
                break
            time.sleep(0.2)
        left = wait_accounted(lambda: stats(srv.admin_port)["backends"])
        backends = stats(srv.admin_port)["backends"]
        status, text = admin_get(srv.admin_port, "/metrics")
        assert srv.stop(signal.SIGTERM) == 0, srv.log()[-3000:]
    assert not any(left.values()), left
    assert {"kafka/ok", "kafka/big", "file/ok", "file/big"} <= set(left), left

    ok, big = (backends["kafka"]["flavors"][f] for f in ("ok", "big"))
    assert (ok["accepted"], ok["delivered"], ok["rejected"]) == (N_OK, N_OK, 0), ok
    assert (big["accepted"], big["delivered"], big["rejected"]) == (N_BIG, 0, N_BIG), big
    for f in (ok, big):
        assert f["dropped"] == f["spooled"] == f["spool_pending"] == f["recovered"] == 0, f
    assert "(other)" not in backends["kafka"]["flavors"]
    written = {f: row["written"] for f, row in backends["file"]["flavors"].items()}
    # Both flavors; no request was refused, so the bad rows' row (`_bad`) is empty.
    assert written == {"ok": N_OK, "big": N_BIG, "_bad": 0}, "the file backend took both"

    assert status == 200
    scraped = flavor_metrics(text)
    assert scraped[("kafka", "big", "rejected")] == N_BIG
    assert scraped[("kafka", "ok", "delivered")] == N_OK
    assert scraped[("kafka", "ok", "rejected")] == 0
    # /metrics says what /stats said, figure for figure.
    from_stats = {
        (b, f, k): float(v)
        for b, figures in backends.items()
        for f, row in figures["flavors"].items()
        for k, v in row.items()
    }
    assert scraped == from_stats

    got = consume_all(kafka_broker.bootstrap, topics["ok"], N_OK, 60.0)
    assert sorted(int(json.loads(m.value() or b"{}")["params"]["n"]) for m in got) == list(
        range(N_OK)
    )
