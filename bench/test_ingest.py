"""Micro-benchmarks of the per-request Rust call, `Ingest.handle()`: target in, event line
pushed into each backend's ring; the file writer thread pops it into a daily file in a tmp
dir. Also the Kafka round trip (handle() push + KafkaSink.produce_live() hand-over to a
stand-in `produce`) and what the same request path costs written by hand in pure Python.

Each records in extra_info that the event reached its store (`same_result`): lines written
+ spooled == requests accepted, and the pure-Python line's params equal beacon's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from beacon import Ingest
from beacon.config import parse_config
from pure_python import encode_query_flat
from test_encode_query import QUERIES

HOST = b"www.example.gr"


def make_ingest(tmp: Path, *, file: bool = True, kafka: bool = False) -> Ingest:
    backends: dict[str, Any] = {"file": {"enabled": file}}
    if kafka:  # the queue only: no feeder drains it here
        backends["kafka"] = {"enabled": True, "bootstrap_servers": "127.0.0.1:1"}
    cfg = parse_config(
        {
            "data_dir": str(tmp / "data"),
            "limits": {"max_params": 1000},
            "flavors": [{"name": "default", "timezone": "Europe/Athens"}],
            "backends": backends,
        }
    )
    ingest = Ingest(cfg)
    ingest.start()
    return ingest


def file_lines(tmp: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (tmp / "data").rglob("*.jsonl"))


@pytest.mark.parametrize("name", QUERIES)
def test_handle_file_backend(benchmark: Any, tmp_path: Path, name: str) -> None:
    ingest = make_ingest(tmp_path)
    target = b"/track?" + QUERIES[name]
    assert benchmark(ingest.handle, target, HOST) == 200
    ingest.shutdown()
    stats = ingest.stats()
    accepted = stats["flavors"]["default"]["accepted"]
    file_stats = stats["backends"]["file"]
    lines = file_lines(tmp_path)
    benchmark.extra_info.update(
        accepted=accepted,
        lines_written=lines,
        spooled=file_stats["spooled"],
        overflowed=file_stats["overflowed"],
        same_result=lines + file_stats["spooled"] == accepted,
    )
    assert benchmark.extra_info["same_result"]


def test_kafka_push_hand_over(benchmark: Any, tmp_path: Path) -> None:
    """One handle() (encode + push into the Kafka queue) and one produce_live() per round:
    the message popped and handed, as bytes, to a `produce` that keeps the last value."""
    ingest = make_ingest(tmp_path, file=False, kafka=True)
    sink = ingest.kafka_sink()
    assert sink is not None
    sink.configure(
        topics=["beacon.default"],
        rejected_dir=tmp_path / "rejected",
        buffer_messages=100_000,
        buffer_kbytes=4096,
    )
    last: list[bytes] = [b""]

    def produce(topic: str, value: bytes, *rest: Any) -> None:
        last[0] = value

    def unused(*args: Any) -> Any:
        raise AssertionError("not called")

    sink.attach(
        fast=produce,
        reporter=unused,
        on_fast=unused,
        on_live=unused,
        on_replay=unused,
        refusal=unused,
    )
    target = b"/track?" + QUERIES["realistic_300b"]

    def push_hand_over() -> bytes:
        ingest.handle(target, HOST)
        sink.produce_live(drain=True)
        return last[0]

    got = benchmark(push_hand_over)
    expected = json.loads(encode_query_flat(QUERIES["realistic_300b"]))
    benchmark.extra_info["same_result"] = json.loads(got)["params"] == expected
    benchmark.extra_info["left_in_queue"] = sink.buffered()
    sink.detach()
    ingest.shutdown()
    assert benchmark.extra_info["same_result"]


class PurePythonIngest:
    """The same request path by hand: split the target, check the path, encode the query,
    wrap it in the envelope with a local-time `ts`, append to a buffered daily file."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "data" / "default"
        self.dir.mkdir(parents=True)
        self.tz = datetime.now().astimezone().tzinfo
        self.files: dict[str, IO[bytes]] = {}

    def handle(self, target: bytes, host: bytes | None) -> int:
        path, _, query = target.partition(b"?")
        if path != b"/track":
            return 404
        now = datetime.now(UTC)
        day = now.date().isoformat()
        out = self.files.get(day)
        if out is None:
            out = self.files[day] = (self.dir / f"{day}.jsonl").open("ab", buffering=65536)
        ts = now.isoformat(timespec="milliseconds").encode()
        out.write(b'{"ts":"%s","flavor":"default","params":%s}\n' % (ts, encode_query_flat(query)))
        return 200

    def close(self) -> None:
        for f in self.files.values():
            f.close()


@pytest.mark.parametrize("name", QUERIES)
def test_handle_pure_python(benchmark: Any, tmp_path: Path, name: str) -> None:
    py = PurePythonIngest(tmp_path)
    target = b"/track?" + QUERIES[name]
    assert benchmark(py.handle, target, HOST) == 200
    py.close()
    last = (tmp_path / "data").rglob("*.jsonl").__next__().read_bytes().splitlines()[-1]
    rust_tmp = tmp_path / "rust"
    ingest = make_ingest(rust_tmp)
    ingest.handle(target, HOST)
    ingest.shutdown()
    rust_line = next((rust_tmp / "data").rglob("*.jsonl")).read_bytes().splitlines()[0]
    same = json.loads(last)["params"] == json.loads(rust_line)["params"]
    benchmark.extra_info["same_result"] = same
    assert same
