"""The Kafka backend end to end against a real broker: the server feeds every accepted
event to its flavor's topic exactly once, with the right key and timestamp; the in-process
feeder spools what it cannot deliver and replays it."""

from __future__ import annotations

import json
import secrets
import signal
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME
from confluent_kafka.admin import AdminClient, NewTopic

from beacon._beacon import Ingest, KafkaSink
from beacon.backends.kafka.delivery import refusal
from beacon.backends.kafka.feeder import KafkaFeeder
from beacon.config import Config, parse_config
from support.accounting import unaccounted, wait_accounted
from support.admin import stats
from support.beacon_server import BeaconServer, free_port
from support.kafka_broker import KafkaBroker, consume_all
from support.load import run_load
from support.producer import Recorder

pytestmark = pytest.mark.kafka

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def ts_ms(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(milliseconds=1)


def flavors(tag: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "alpha",
            "hosts": ["alpha.test"],
            "timezone": "UTC",
            "kafka_topic": f"alpha-{tag}",
            "kafka_key_param": "uid",
        },
        {
            "name": "beta",
            "hosts": ["beta.test"],
            "timezone": "Europe/Athens",
            "kafka_topic": f"beta-{tag}",
            "kafka_key_param": "uid",
        },
        {
            "name": "gamma",
            "hosts": ["gamma.test"],
            "timezone": "America/New_York",
            "kafka_topic": f"gamma-{tag}",
        },
    ]


N_REQUESTS = 200_000


def test_every_event_reaches_file_and_kafka_exactly_once(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    fl = flavors(tag)
    config = {
        "default_flavor": None,
        "flavors": fl,
        "backends": {
            "file": {"enabled": True},
            "kafka": {"enabled": True, "bootstrap_servers": kafka_broker.bootstrap},
        },
    }
    names = [f["name"] for f in fl]
    requests = (
        (f"{names[i % 3]}.test", f"/track?ev=view&uid=u{i % 101}&n={i}") for i in range(N_REQUESTS)
    )
    with BeaconServer(tmp_path / "srv", config) as srv:
        result = run_load("127.0.0.1", srv.port, requests, connections=64, pipeline=16)
        assert result.errors == []
        assert result.statuses == {200: N_REQUESTS}, result.refused[:5]
        # A burst beyond librdkafka's buffer (4 MiB) overflows to the spool, replayed at
        # REPLAY_RATE: let it drain (SIGTERM would keep it on disk for the next start).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            kafka = stats(srv.admin_port)["backends"]["kafka"]
            if kafka["spool_pending"] == 0 and kafka["buffered"] == 0:
                break
            time.sleep(0.5)
        print(f"\nkafka backend before stop: {kafka}")
        left = wait_accounted(lambda: stats(srv.admin_port)["backends"])
        assert not any(left.values()) and {"file", "kafka"} <= set(left), left
        code = srv.stop(signal.SIGTERM)
        assert code == 0, srv.log()[-3000:]
    stopped = [ln for ln in srv.log().splitlines() if "kafka: stopped:" in ln]
    print(f"\nload: {N_REQUESTS} requests in {result.elapsed_s:.1f}s ({result.rate:.0f}/s)")
    print(f"server: {stopped[-1].split('kafka: ')[-1] if stopped else 'no kafka stop line'}")

    for idx, f in enumerate(fl):
        expected = set(range(idx, N_REQUESTS, 3))
        lines = srv.lines(f["name"])
        by_n = {int(ev["params"]["n"]): ev for ev in lines}
        file_counts = Counter(int(ev["params"]["n"]) for ev in lines)
        assert len(lines) == len(expected)
        assert set(file_counts) == expected and max(file_counts.values()) == 1
        assert len({ev["id"] for ev in lines}) == len(lines)  # one id per event

        msgs = consume_all(kafka_broker.bootstrap, f["kafka_topic"], None, 180.0)
        seen: Counter[int] = Counter()
        for m in msgs:
            ev = json.loads(m.value())
            n = int(ev["params"]["n"])
            seen[n] += 1
            assert ev == by_n[n]
            assert ev["flavor"] == f["name"]
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts_ms(ev["ts"]))
            # The event id (a UUIDv7 of the receipt ms) also rides as the header `id`.
            event_id = uuid.UUID(ev["id"])
            assert event_id.version == 7 and event_id.int >> 80 == ts_ms(ev["ts"])
            assert m.headers() == [("id", ev["id"].encode())]
            if "kafka_key_param" in f:
                assert m.key() == ev["params"]["uid"].encode()
            else:
                assert m.key() is None
        dups = sum(c - 1 for c in seen.values())
        print(f"{f['name']}: file {len(lines)}, kafka {len(msgs)}, duplicates {dups}")
        assert set(seen) == expected, f"missing {len(expected - set(seen))}"
        assert dups == 0


def _config(tmp_path: Path, bootstrap: str, producer: dict[str, Any], tag: str) -> Config:
    return parse_config(
        {
            "data_dir": str(tmp_path / "data"),
            "default_flavor": None,
            "flavors": flavors(tag),
            "backends": {
                "file": {"enabled": False},
                "kafka": {"enabled": True, "bootstrap_servers": bootstrap, "producer": producer},
            },
        }
    )


def _start_feeder(cfg: Config) -> tuple[Ingest, KafkaSink, KafkaFeeder]:
    """An Ingest with the Kafka backend and a running feeder on its sink."""
    ingest = Ingest(cfg)
    ingest.start()
    sink = ingest.kafka_sink()
    assert sink is not None
    feeder = KafkaFeeder(cfg, sink)
    feeder.start()
    return ingest, sink, feeder


def _wait_for(sink: KafkaSink, counter: str, n: int, timeout_s: float = 60.0) -> None:
    """Waits until the backend's `counter` reaches `n` (the caller asserts on it)."""
    deadline = time.monotonic() + timeout_s
    while sink.stats()[counter] < n and time.monotonic() < deadline:
        time.sleep(0.1)


def test_undeliverable_messages_are_spooled_and_replayed(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Config overrides reach librdkafka (a 1.5 s message.timeout.ms against a port nobody
    listens on fails deliveries within seconds, where the default would wait 2 minutes); the
    failed messages land in the spool with key and timestamp, and a feeder with a reachable
    broker replays them exactly once."""
    tag = uuid.uuid4().hex[:8]
    dead = f"127.0.0.1:{free_port()}"
    cfg = _config(tmp_path, dead, {"message.timeout.ms": 1500}, tag)
    ingest, sink, feeder = _start_feeder(cfg)
    n = 3000
    base_ms = 1_780_000_000_000
    for i in range(n):
        ingest.set_clock(base_ms + i)
        host = f"{('alpha', 'beta', 'gamma')[i % 3]}.test".encode()
        assert ingest.handle(f"/track?ev=view&uid=u{i % 7}&n={i}".encode(), host) == 200
    # Deliveries fail within message.timeout.ms; wait for it, well before stop() would purge.
    _wait_for(sink, "failed", n)
    stats = sink.stats()
    assert stats["failed"] >= n and stats["delivered"] == 0 and not stats["up"]
    feeder.stop(timeout_s=1.0)
    assert sink.stats()["spool_pending"] == n and unaccounted(sink.stats()) == 0

    # A segment being replayed stays on disk until each of its messages is reported: a
    # crash now (another Ingest opening the same spool) would still find every message.
    held = Recorder()
    sink.attach(
        fast=Recorder(),
        reporter=held,
        on_fast=print,
        on_live=print,
        on_replay=print,
        refusal=refusal,
    )
    sink.brokers_reachable()  # as if Kafka were back: the replay runs at its rate
    assert sink.replay() == len(held.calls) > 0
    after_crash = Ingest(cfg)
    after_crash.start()
    other = after_crash.kafka_sink()
    assert other is not None and other.stats()["spool_pending"] == n
    del other, after_crash
    # As a feeder whose producer failed them: the rest and the handed ones go back.
    sink.end_replay()
    for topic, value, key, *_ in held.calls:
        sink.fail("replay", topic, value, key, -1, "Local: Message timed out")
    sink.settle(0)
    sink.detach()
    assert sink.stats()["spool_pending"] == n and unaccounted(sink.stats()) == 0

    # The same sink (and spool) with a broker that works.
    cfg_ok = _config(tmp_path, kafka_broker.bootstrap, {"client.id": "beacon-test"}, tag)
    feeder = KafkaFeeder(cfg_ok, sink)
    feeder.start()
    _wait_for(sink, "replayed", n)
    feeder.stop(timeout_s=10.0)
    stats = sink.stats()
    assert stats["replayed"] == n and stats["spool_pending"] == 0 and stats["up"]
    assert stats["spooled"] == n, "a message spooled again is counted once"
    assert stats == ingest.stats()["backends"]["kafka"] and unaccounted(stats) == 0
    ingest.shutdown()

    for idx, f in enumerate(flavors(tag)):
        msgs = consume_all(kafka_broker.bootstrap, f["kafka_topic"], n // 3, 60.0)
        got: Counter[int] = Counter()
        for m in msgs:
            ev = json.loads(m.value())
            i = int(ev["params"]["n"])
            got[i] += 1
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, base_ms + i) == (1, ts_ms(ev["ts"]))
            assert m.key() == (f"u{i % 7}".encode() if idx < 2 else None)
        assert set(got) == set(range(idx, n, 3)) and max(got.values()) == 1


def test_live_deliveries_are_counted_without_success_reports(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Live traffic goes through the producer that reports failures only; its deliveries
    are still counted (produced - failed - held), exactly once all are acknowledged, and
    every message is in its topic once."""
    tag = uuid.uuid4().hex[:8]
    cfg = _config(tmp_path, kafka_broker.bootstrap, {}, tag)
    ingest, sink, feeder = _start_feeder(cfg)
    n = 6000
    for i in range(n):
        host = f"{('alpha', 'beta', 'gamma')[i % 3]}.test".encode()
        assert ingest.handle(f"/track?uid=u{i % 7}&n={i}".encode(), host) == 200
    _wait_for(sink, "delivered", n)
    stats = sink.stats()
    assert stats["delivered"] == stats["accepted"] == n and stats["in_flight"] == 0, stats
    assert stats["failed"] == 0 and stats["replayed"] == 0 and stats["up"]
    feeder.stop(timeout_s=10.0)
    stats = sink.stats()
    assert stats["delivered"] == n and unaccounted(stats) == 0
    assert stats["buffered"] == 0 and stats["spool_pending"] == 0
    ingest.shutdown()
    for idx, f in enumerate(flavors(tag)):
        got = Counter(
            int(json.loads(m.value())["params"]["n"])
            for m in consume_all(kafka_broker.bootstrap, f["kafka_topic"], n // 3, 60.0)
        )
        assert set(got) == set(range(idx, n, 3)) and max(got.values()) == 1


def _create_topic(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        future.result(30)


def _rejected_lines(cfg: Config) -> list[dict[str, Any]]:
    files = sorted((cfg.spool_dir / "kafka-rejected").glob("*.jsonl"))
    return [json.loads(ln) for f in files for ln in f.read_text().splitlines()]


def test_messages_kafka_refuses_for_good_are_filed_not_retried(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """A message larger than the topic allows (the broker refuses it) and one larger than
    the producer's message.max.bytes (librdkafka refuses it) are written to the rejected
    file with topic, key, timestamp and error, and counted; neither is spooled for a retry
    that cannot succeed, the backend stays up, and the messages around them arrive."""
    tag = uuid.uuid4().hex[:8]
    _create_topic(kafka_broker.bootstrap, f"alpha-{tag}", {"max.message.bytes": "2000"})
    cfg = _config(
        tmp_path, kafka_broker.bootstrap, {"message.max.bytes": 5000, "linger.ms": 1}, tag
    )
    ingest, sink, feeder = _start_feeder(cfg)
    # Random hex: lz4 cannot shrink it below the limits (the broker judges compressed
    # batches); both stay within the 8 KiB query limit.
    noise = secrets.token_hex(1300)  # 2,600 characters: beyond the topic's 2,000 bytes
    huge = secrets.token_hex(3000)  # 6,000: beyond the producer's message.max.bytes
    # One at a time, each awaited: a message batched with a refused one would be refused
    # with it (the broker judges batches), and the first waits for the producer's id.
    steps = [
        ("/track?uid=u0&n=0", "delivered", 1),
        (f"/track?uid=u1&n=1&pad={noise}", "rejected", 1),  # by the broker
        ("/track?uid=u2&n=2", "delivered", 2),
        (f"/track?uid=u3&n=3&pad={huge}", "rejected", 2),  # by librdkafka
        ("/track?uid=u4&n=4", "delivered", 3),
    ]
    for target, counter, n in steps:
        assert ingest.handle(target.encode(), b"alpha.test") == 200
        _wait_for(sink, counter, n)
    stats = sink.stats()
    feeder.stop(timeout_s=10.0)
    ingest.shutdown()
    assert stats["rejected"] == 2 and stats["delivered"] == 3, stats
    assert stats["failed"] == 0 and stats["spooled"] == 0 and stats["spool_pending"] == 0
    assert stats["up"] and unaccounted(sink.stats()) == 0
    rejected = sorted(_rejected_lines(cfg), key=lambda r: r["key"])
    assert [r["key"] for r in rejected] == ["u1", "u3"]
    for r in rejected:
        assert r["topic"] == f"alpha-{tag}" and "too large" in r["error"].lower(), r
        event = json.loads(r["event"])
        assert r["ts_ms"] == ts_ms(event["ts"]) and event["params"]["uid"] == r["key"]
    got = consume_all(kafka_broker.bootstrap, f"alpha-{tag}", 3, 60.0)
    assert sorted(json.loads(m.value())["params"]["n"] for m in got) == ["0", "2", "4"]
