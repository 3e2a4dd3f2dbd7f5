"""The scripts/kafka broker really works: produce, consume, stop/restart and kill/restart."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from support.kafka_broker import KafkaBroker, consume_all

pytestmark = pytest.mark.kafka

N_MESSAGES = 1000
BASE_TS_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z; message i has timestamp BASE_TS_MS + i


@dataclass(frozen=True)
class ProducedTopic:
    name: str
    keys: list[bytes]
    timestamps: list[int]


def produce(bootstrap: str, topic: str, keys: list[bytes], timestamps: list[int], tag: str) -> None:
    """Produce one message per key with an idempotent producer; fail on any delivery error."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    errors: list[KafkaError] = []
    delivered: list[Message] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(msg)

    for i, (key, ts) in enumerate(zip(keys, timestamps, strict=True)):
        producer.produce(
            topic,
            key=key,
            value=f'{{"tag": "{tag}", "i": {i}}}'.encode(),
            timestamp=ts,
            on_delivery=on_delivery,
        )
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages still in flight after 60 s"
    assert errors == []
    assert len(delivered) == len(keys)


def assert_messages(messages: list[Message], keys: list[bytes], timestamps: list[int]) -> None:
    assert len(messages) == len(keys)
    # num.partitions=1, so the topic is totally ordered.
    assert [m.key() for m in messages] == keys
    for msg, ts in zip(messages, timestamps, strict=True):
        assert msg.error() is None
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, ts)
    assert [m.offset() for m in messages] == list(range(len(keys)))


def port_accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    b = KafkaBroker(tmp_path_factory.mktemp("kafka") / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def produced(broker: KafkaBroker) -> ProducedTopic:
    topic = f"beacon-test-{uuid.uuid4().hex[:8]}"
    keys = [f"key-{i:04d}".encode() for i in range(N_MESSAGES)]
    timestamps = [BASE_TS_MS + i for i in range(N_MESSAGES)]
    produce(broker.bootstrap, topic, keys, timestamps, tag="first")
    return ProducedTopic(topic, keys, timestamps)


def test_broker_is_up(broker: KafkaBroker) -> None:
    assert broker.is_running()
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert list(md.brokers) == [1]


def test_produce_and_consume_1000(broker: KafkaBroker, produced: ProducedTopic) -> None:
    messages = consume_all(broker.bootstrap, produced.name, expected_count=N_MESSAGES)
    assert_messages(messages, produced.keys, produced.timestamps)
    assert messages[0].value() == b'{"tag": "first", "i": 0}'


def test_stop_restart_keeps_data(broker: KafkaBroker, produced: ProducedTopic) -> None:
    port = broker.port
    assert port is not None
    broker.stop()
    assert not broker.is_running()
    assert not port_accepts(port)

    broker.start()
    assert broker.port == port
    assert broker.bootstrap == f"127.0.0.1:{port}"
    messages = consume_all(broker.bootstrap, produced.name, expected_count=N_MESSAGES)
    assert_messages(messages, produced.keys, produced.timestamps)

    # Producing works again after the restart, and lands after the old data.
    more_keys = [f"after-restart-{i:03d}".encode() for i in range(100)]
    more_ts = [BASE_TS_MS + N_MESSAGES + i for i in range(100)]
    produce(broker.bootstrap, produced.name, more_keys, more_ts, tag="restart")
    messages = consume_all(broker.bootstrap, produced.name, expected_count=N_MESSAGES + 100)
    assert_messages(messages, produced.keys + more_keys, produced.timestamps + more_ts)


def test_kill_restart_keeps_data(broker: KafkaBroker, produced: ProducedTopic) -> None:
    """SIGKILL (crash) and restart: acknowledged data survives, the port is the same."""
    topic = f"beacon-kill-{uuid.uuid4().hex[:8]}"
    keys = [f"k-{i:04d}".encode() for i in range(N_MESSAGES)]
    timestamps = [BASE_TS_MS + i for i in range(N_MESSAGES)]
    produce(broker.bootstrap, topic, keys, timestamps, tag="kill")

    port = broker.port
    broker.kill()
    assert not broker.is_running()
    t0 = time.monotonic()
    broker.start()
    print(f"restart after SIGKILL took {time.monotonic() - t0:.1f}s")
    assert broker.port == port
    assert_messages(
        consume_all(broker.bootstrap, topic, expected_count=N_MESSAGES), keys, timestamps
    )
    assert len(consume_all(broker.bootstrap, produced.name, idle_s=3.0)) >= N_MESSAGES


def test_restart_method_same_port(broker: KafkaBroker, produced: ProducedTopic) -> None:
    port = broker.port
    assert broker.restart() == f"127.0.0.1:{port}"
    assert broker.is_running()
    produce(broker.bootstrap, produced.name, [b"last"], [BASE_TS_MS + 5000], tag="last")
    messages = consume_all(broker.bootstrap, produced.name, idle_s=3.0)
    assert messages[-1].key() == b"last"
    assert messages[-1].timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TS_MS + 5000)
