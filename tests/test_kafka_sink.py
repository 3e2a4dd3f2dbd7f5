"""`KafkaSink`, the binding of the Rust Kafka sink, on a real Ingest (real queue, spool and
rejected log in a temporary directory), with callables standing in for confluent-kafka's
`Producer.produce` that record their arguments: these tests check the hand-over between
Rust and Python and the sink's counts, not Kafka (tests/test_kafka_backend.py does that
against a real broker; rust/src/sinks/kafka/tests.rs covers the sink's paths in Rust)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from beacon._beacon import Ingest, KafkaSink
from beacon.backends.kafka.delivery import refusal
from beacon.config import parse_config
from support.producer import Recorder

BASE_MS = 1_780_000_000_000


def _config(tmp_path: Path) -> Any:
    return parse_config(
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


def on_fast(err: Any, msg: Any) -> None:
    raise AssertionError("the sink never calls a delivery callback itself")


def on_live(err: Any, msg: Any) -> None:
    raise AssertionError("the sink never calls a delivery callback itself")


def on_replay(err: Any, msg: Any) -> None:
    raise AssertionError("the sink never calls a delivery callback itself")


def _sink(
    tmp_path: Path, fast: Recorder, reporter: Recorder | None = None
) -> tuple[Ingest, KafkaSink]:
    cfg = _config(tmp_path)
    ingest = Ingest(cfg)
    ingest.start()
    sink = ingest.kafka_sink()
    assert sink is not None
    sink.configure(
        topics=["topic-a", "topic-b"],
        rejected_dir=tmp_path / "rejected",
        buffer_messages=100_000,
        buffer_kbytes=4096,
    )
    sink.attach(
        fast=fast,
        reporter=reporter or Recorder(),
        on_fast=on_fast,
        on_live=on_live,
        on_replay=on_replay,
        refusal=refusal,
    )
    return ingest, sink


def _send(ingest: Ingest, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        ingest.set_clock(BASE_MS + i)
        host = b"a.test" if i % 2 == 0 else b"b.test"
        assert ingest.handle(f"/track?n={i}&k=key{i}".encode(), host) == 200


def test_live_messages_are_handed_with_topic_key_and_timestamp(tmp_path: Path) -> None:
    produce = Recorder()
    ingest, sink = _sink(tmp_path, produce)
    _send(ingest, 10)
    assert sink.produce_live(drain=True) is False
    assert len(produce.calls) == 10
    for i, (topic, value, key, partition, cb, dr, ts, headers) in enumerate(produce.calls):
        ev = json.loads(value)
        assert headers == [("id", ev["id"].encode())]  # the event id, also as a header
        assert int(ev["params"]["n"]) == i  # queue order
        assert topic == ("topic-a" if i % 2 == 0 else "topic-b")
        assert key == (f"key{i}".encode() if i % 2 == 0 else None)  # only flavor a keys
        # While Kafka is up, the failures-only producer and its callback.
        assert (partition, cb, dr, ts) == (-1, on_fast, None, BASE_MS + i)
        assert not value.endswith(b"\n")
    s = sink.stats()
    assert (s["buffered"], s["in_flight"], s["delivered"]) == (0, 10, 0)
    sink.settle(0)  # librdkafka holds none of them: delivered
    s = sink.stats()
    assert (s["in_flight"], s["delivered"]) == (0, 10)
    assert s == ingest.stats()["backends"]["kafka"]


def test_a_value_is_lent_for_the_call_only(tmp_path: Path) -> None:
    """The value is a read-only view of the event's bytes during `produce()` (which copies
    it); kept past the call it reads as nothing, never as freed memory
    (rust/src/sinks/kafka/lent.rs). That confluent-kafka's `z#` argument takes it (no
    `__releasebuffer__`) is proven against a real broker in tests/test_kafka_backend.py."""
    seen: list[tuple[bytes, bool]] = []
    kept: list[Any] = []

    def produce(topic: Any, value: Any, *rest: Any) -> None:
        view = memoryview(value)
        seen.append((bytes(view), view.readonly))
        view.release()
        kept.append(value)

    ingest, sink = _sink(tmp_path, produce)
    _send(ingest, 3)
    sink.produce_live(drain=True)
    assert [json.loads(v)["params"]["n"] for v, _ in seen] == ["0", "1", "2"]
    assert all(readonly for _, readonly in seen)
    assert len(kept) == 3 and all(bytes(v) == b"" for v in kept)


def test_a_full_buffer_holds_the_rest_then_spools_it(tmp_path: Path) -> None:
    """Nothing taken off the queue is lost: after BufferError the rest waits for the next
    hand-over, and a second refusal without progress sends it to the spool."""
    produce = Recorder(fail_at=20, error=BufferError("Local: Queue full"))
    ingest, sink = _sink(tmp_path, produce)
    _send(ingest, 50)
    assert sink.produce_live(drain=True) is True
    s = sink.stats()
    assert (s["in_flight"], s["buffered"], s["up"]) == (20, 30, True)
    produce.fail_at, produce.error = len(produce.calls), BufferError("Local: Queue full")
    assert sink.produce_live(drain=True) is True
    s = sink.stats()
    assert (s["in_flight"], s["buffered"], s["spooled"], s["up"]) == (20, 0, 30, False)
    assert s["spool_pending"] == 30
    assert produce.numbers() == list(range(20))
    notes = [text for _, text in sink.take_notes()]
    assert any("producer buffer full, 30 messages" in t for t in notes), notes


def test_a_message_librdkafka_refuses_for_good_goes_to_the_rejected_log(
    tmp_path: Path,
) -> None:
    too_large = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Message size too large"))
    produce = Recorder(fail_at=1, error=too_large)
    ingest, sink = _sink(tmp_path, produce)
    _send(ingest, 3)
    assert sink.produce_live(drain=True) is False
    assert produce.numbers() == [0, 2]
    s = sink.stats()
    assert (s["rejected"], s["in_flight"], s["up"]) == (1, 2, True)
    (path,) = (tmp_path / "rejected").glob("*.jsonl")
    record = json.loads(path.read_text())
    assert (record["topic"], record["key"], record["ts_ms"]) == ("topic-b", None, BASE_MS + 1)
    assert record["error"] == "Message size too large"
    assert json.loads(record["event"])["params"]["n"] == "1"


def test_an_unexpected_error_spools_the_rest_and_is_raised(tmp_path: Path) -> None:
    produce = Recorder(fail_at=5, error=ValueError("odd"))
    ingest, sink = _sink(tmp_path, produce)
    _send(ingest, 10)
    with pytest.raises(ValueError, match="odd"):
        sink.produce_live(drain=True)
    s = sink.stats()
    assert (s["in_flight"], s["spooled"], s["buffered"]) == (5, 5, 0)


def test_delivery_reports_move_the_counts_and_the_replay_reads_the_spool(
    tmp_path: Path,
) -> None:
    """A failed report spools the message (key and timestamp kept, the timestamp from the
    event's JSON: failed reports carry none); the replay hands it to the reporting
    producer; its success report counts it delivered and replayed."""
    fast, reporter = Recorder(), Recorder()
    ingest, sink = _sink(tmp_path, fast, reporter)
    _send(ingest, 4)
    sink.produce_live(drain=True)
    _, value, key, *_ = fast.calls[2]
    sink.fail("fast", "topic-a", value, key, -1, "Local: Message timed out")
    sink.settle(0)
    s = sink.stats()
    assert (s["delivered"], s["failed"], s["spooled"], s["up"]) == (3, 1, 1, False)
    assert sink.replay() == 1  # down: a probe chunk
    topic, value2, key2, _, cb, _, ts, headers = reporter.calls[0]
    assert (topic, value2, key2, cb, ts) == ("topic-a", value, b"key2", on_replay, BASE_MS + 2)
    assert headers == [("id", json.loads(value)["id"].encode())]  # read back from the spool
    sink.delivered("replay")
    sink.settle(0)
    s = sink.stats()
    assert (s["delivered"], s["replayed"], s["spool_pending"], s["up"]) == (4, 1, 0, True)
    assert s["accepted"] == s["delivered"] + s["in_flight"] + s["spool_pending"] + s["buffered"]


def test_the_gather_window_returns_what_is_queued(tmp_path: Path) -> None:
    """Live hand-overs wait for the gather window (or a full batch), never stranding a
    short batch: a call returns with the 3 queued events."""
    produce = Recorder()
    ingest, sink = _sink(tmp_path, produce)
    sink.produce_live()  # starts the window
    _send(ingest, 3)
    sink.produce_live()
    assert produce.numbers() == [0, 1, 2]
