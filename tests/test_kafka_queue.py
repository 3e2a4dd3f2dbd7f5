"""`KafkaQueue.produce_batch` and the gather window of `pop_batch`, on a real Ingest (real
ring, real spool directory). The callable standing in for `Producer.produce` records its
arguments: these tests check the Rust side of the hand-over, not Kafka (tests/
test_kafka_backend.py does that against a real broker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from beacon._beacon import Ingest, KafkaQueue
from beacon.config import parse_config

BASE_MS = 1_780_000_000_000


def _ingest(tmp_path: Path) -> tuple[Ingest, KafkaQueue]:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path / "data"),
            "default_flavor": None,
            "flavors": [
                {
                    "name": "a",
                    "hosts": ["a.test"],
                    "kafka_topic": "topic-a",
                    "kafka_key_param": "k",
                },
                {"name": "b", "hosts": ["b.test"], "kafka_topic": "topic-b"},
            ],
            "backends": {
                "file": {"enabled": False},
                "kafka": {"enabled": True, "bootstrap_servers": "127.0.0.1:9"},
            },
        }
    )
    ingest = Ingest(cfg)
    ingest.start()
    queue = ingest.kafka_queue()
    assert queue is not None
    return ingest, queue


def _send(ingest: Ingest, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        ingest.set_clock(BASE_MS + i)
        host = b"a.test" if i % 2 == 0 else b"b.test"
        assert ingest.handle(f"/track?n={i}&k=key{i}".encode(), host) == 200


class Recorder:
    """Records `produce(topic, value, key, partition, callback, on_delivery, timestamp)`
    calls; raises `error` on call number `fail_at` (0-based) if given."""

    def __init__(self, fail_at: int | None = None, error: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_at = fail_at
        self.error = error

    def __call__(self, *args: Any) -> None:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            self.fail_at = None
            assert self.error is not None
            raise self.error
        self.calls.append(args)


def on_delivery(err: Any, msg: Any) -> None:
    raise AssertionError("produce_batch never calls on_delivery itself")


def test_produce_batch_hands_every_message_with_topic_key_and_timestamp(tmp_path: Path) -> None:
    ingest, queue = _ingest(tmp_path)
    _send(ingest, 10)
    produce = Recorder()
    handed, rest, error = queue.produce_batch(
        produce, ["topic-a", "topic-b"], "unknown", on_delivery, 100, 0
    )
    assert (handed, rest, error) == (10, [], None)
    assert len(produce.calls) == 10
    for i, (topic, value, key, partition, cb, dr, ts) in enumerate(produce.calls):
        ev = json.loads(value)
        assert int(ev["params"]["n"]) == i  # queue order
        assert topic == ("topic-a" if i % 2 == 0 else "topic-b")
        assert key == (f"key{i}".encode() if i % 2 == 0 else None)  # only flavor a keys
        assert (partition, cb, dr, ts) == (-1, on_delivery, None, BASE_MS + i)
        assert not value.endswith(b"\n")
    assert queue.buffered() == 0


def test_produce_batch_topic_past_the_list_is_the_unknown_topic(tmp_path: Path) -> None:
    ingest, queue = _ingest(tmp_path)
    _send(ingest, 2)
    produce = Recorder()
    assert queue.produce_batch(produce, ["topic-a"], "unknown", on_delivery, 100, 0)[0] == 2
    assert [c[0] for c in produce.calls] == ["topic-a", "unknown"]


@pytest.mark.parametrize("error", [BufferError("full"), ValueError("odd")])
def test_produce_batch_returns_the_rest_when_a_call_raises(
    tmp_path: Path, error: BaseException
) -> None:
    """Nothing popped is lost: the failing message and those after it come back."""
    ingest, queue = _ingest(tmp_path)
    _send(ingest, 50)
    produce = Recorder(fail_at=20, error=error)
    handed, rest, got = queue.produce_batch(
        produce, ["topic-a", "topic-b"], "unknown", on_delivery, 100, 0
    )
    assert handed == 20 and got is error
    assert len(rest) == 30
    assert [int(json.loads(v)["params"]["n"]) for _, v, _, _ in rest] == list(range(20, 50))
    flavor, _, key, ts = rest[0]
    assert (flavor, key, ts) == (0, b"key20", BASE_MS + 20)
    # What was handed plus what came back is everything, once.
    seen = [int(json.loads(c[1])["params"]["n"]) for c in produce.calls]
    assert seen == list(range(20))


def test_produce_batch_takes_at_most_max(tmp_path: Path) -> None:
    ingest, queue = _ingest(tmp_path)
    _send(ingest, 25)
    produce = Recorder()
    assert queue.produce_batch(produce, ["a", "b"], "u", on_delivery, 10, 0)[0] == 10
    assert queue.buffered() == 15
    assert queue.produce_batch(produce, ["a", "b"], "u", on_delivery, 10, 0)[0] == 10
    assert queue.produce_batch(produce, ["a", "b"], "u", on_delivery, 10, 0)[0] == 5
    assert queue.produce_batch(produce, ["a", "b"], "u", on_delivery, 10, 0)[0] == 0


def test_gather_window_returns_what_is_queued(tmp_path: Path) -> None:
    """A gather window holds a short batch back but never loses or strands it: the call
    returns it once the window has passed (well within the 5 s timeout)."""
    ingest, queue = _ingest(tmp_path)
    assert queue.pop_batch(10, 0, 200) == []  # starts the window
    _send(ingest, 3)
    batch = queue.pop_batch(10, 5000, 200)
    assert [int(json.loads(v)["params"]["n"]) for _, v, _, _ in batch] == [0, 1, 2]
    # A full batch is not held back by the window.
    _send(ingest, 10, start=3)
    assert len(queue.pop_batch(10, 5000, 60_000)) == 10
