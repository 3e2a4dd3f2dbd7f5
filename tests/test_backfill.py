"""`beacon backfill` against the real broker and the real server: a day's events sent with
`requests` through a server writing both stores, then the daily file rebuilt from the topic
and a fresh topic filled from the file, each run as the installed command in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import TIMESTAMP_CREATE_TIME
from confluent_kafka.admin import AdminClient, NewTopic

from support.beacon_server import BeaconServer, free_port
from support.kafka_broker import KafkaBroker, consume_all

pytestmark = pytest.mark.kafka

BEACON = str(Path(sys.executable).with_name("beacon"))
N = 240
FLAVOR = "shop"
EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def ts_ms(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(milliseconds=1)


def create_topic(
    bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1, config=config or {})]).values():
        f.result(30)


def topic_exists(bootstrap: str, name: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return name in admin.list_topics(timeout=10).topics


def flavor(topic: str) -> dict[str, Any]:
    return {
        "name": FLAVOR,
        "timezone": "Europe/Athens",
        "kafka_topic": topic,
        "kafka_key_param": "uid",
    }


@dataclass
class Day:
    """The day the server wrote, and the config files the backfill is run with."""

    workdir: Path
    bootstrap: str
    data_dir: Path
    date: str
    lines: list[bytes]  # the server's daily file, as written
    live_topic: str

    @property
    def path(self) -> Path:
        return self.data_dir / FLAVOR / f"{self.date}.jsonl"

    def restore(self, lines: list[bytes] | None = None) -> None:
        self.path.write_bytes(b"".join(lines if lines is not None else self.lines))

    def config(self, topic: str | None = None, **kafka: Any) -> str:
        """A config file like the server's, for `topic` (default: the live one)."""
        path = self.workdir / f"backfill-{uuid.uuid4().hex[:8]}.json"
        backend = {"enabled": True, "bootstrap_servers": self.bootstrap, **kafka}
        cfg = {
            "data_dir": str(self.data_dir),
            "flavors": [flavor(topic or self.live_topic)],
            "backends": {"file": {"enabled": True}, "kafka": backend},
        }
        path.write_text(json.dumps(cfg))
        return str(path)

    def ids(self) -> dict[str, bytes]:
        return {json.loads(ln)["id"]: ln for ln in self.lines}


@pytest.fixture(scope="module")
def day(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Day:
    """N events sent with requests through a real server (file + Kafka); the server stopped
    (its drain delivers everything) and its daily file read."""
    workdir = tmp_path_factory.mktemp("backfill")
    topic = f"backfill-live-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_broker.bootstrap, topic, partitions=3)
    config = {
        "flavors": [flavor(topic)],
        "backends": {
            "file": {"enabled": True},
            "kafka": {"enabled": True, "bootstrap_servers": kafka_broker.bootstrap},
        },
    }
    with BeaconServer(workdir / "srv", config) as srv, requests.Session() as http:
        for i in range(N):
            r = http.get(srv.url(f"/track?ev=view&uid=u{i % 7}&n={i}"), timeout=10)
            assert r.status_code == 200
        assert srv.stop() == 0, srv.log()[-3000:]
    files = sorted((srv.data_dir / FLAVOR).glob("*.jsonl"), key=lambda p: p.stat().st_size)
    # A run across midnight (Athens) writes two days: the larger one is the test's.
    biggest = files[-1]
    lines = biggest.read_bytes().splitlines(keepends=True)
    assert len(lines) == N or len(files) == 2
    return Day(workdir, kafka_broker.bootstrap, srv.data_dir, biggest.stem, lines, topic)


def backfill(config: str, *args: str, date: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEACON, "backfill", "--config", config, "--flavor", FLAVOR, "--date", date, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run(day: Day, *args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    return backfill(config or day.config(), *args, date=day.date)


def counts(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no terminal: no progress line
    return r.stdout.rsplit(": ", 1)[-1].strip()


def aside_files(day: Day) -> list[Path]:
    return [p for p in day.path.parent.iterdir() if ".backfill-" in p.name]


def test_from_kafka_rebuilds_a_deleted_file(day: Day) -> None:
    day.path.unlink()
    r = run(day, "--from", "kafka")
    assert counts(r) == f"read {len(day.lines)}, already present 0, written {len(day.lines)}"
    rebuilt = day.path.read_bytes().splitlines(keepends=True)
    # Exactly the server's lines, byte for byte: the same ids, nothing else.
    assert Counter(rebuilt) == Counter(day.lines)
    assert {json.loads(ln)["id"] for ln in rebuilt} == set(day.ids())
    # Partition by partition, each in topic order: a key's events keep their order.
    for uid in {json.loads(ln)["params"]["uid"] for ln in day.lines}:
        of = [ln for ln in day.lines if json.loads(ln)["params"]["uid"] == uid]
        assert [ln for ln in rebuilt if ln in of] == of
    assert aside_files(day) == []


def test_from_kafka_merge_restores_deleted_lines_in_place(day: Day) -> None:
    kept = day.lines[::2]
    day.restore(kept)
    r = run(day, "--from", "kafka", "--merge")
    gone = len(day.lines) - len(kept)
    assert counts(r) == f"read {len(day.lines)}, already present {len(kept)}, written {gone}"
    merged = day.path.read_bytes().splitlines(keepends=True)
    assert merged[: len(kept)] == kept  # the remaining lines untouched, in place
    assert Counter(merged) == Counter(day.lines)  # the deleted ones back, no duplicate
    before = day.path.stat()
    again = run(day, "--from", "kafka", "--merge")
    assert counts(again) == f"read {len(day.lines)}, already present {len(day.lines)}, written 0"
    after = day.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert aside_files(day) == []


def fresh_topic(day: Day, partitions: int = 3) -> str:
    name = f"backfill-fresh-{uuid.uuid4().hex[:8]}"
    create_topic(day.bootstrap, name, partitions)
    return name


def test_to_kafka_fills_a_fresh_topic_as_the_live_path_did(day: Day) -> None:
    day.restore()
    topic = fresh_topic(day)
    config = day.config(topic)
    r = run(day, "--to", "kafka", config=config)
    assert counts(r) == f"read {len(day.lines)}, already present 0, written {len(day.lines)}"
    sent = consume_all(day.bootstrap, topic, len(day.lines), 60.0, idle_s=3.0)
    live = {
        json.loads(m.value())["id"]: m
        for m in consume_all(day.bootstrap, day.live_topic, None, 60.0, idle_s=3.0)
    }
    by_id = day.ids()
    assert len(sent) == len(by_id)
    assert {json.loads(m.value())["id"] for m in sent} == set(by_id)
    for m in sent:
        ev = json.loads(m.value())
        assert m.value() + b"\n" == by_id[ev["id"]]
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts_ms(ev["ts"]))
        assert m.key() == ev["params"]["uid"].encode() == live[ev["id"]].key()
        assert m.headers() == [("id", ev["id"].encode())]
    again = run(day, "--to", "kafka", "--merge", config=config)
    assert counts(again) == f"read {len(day.lines)}, already present {len(day.lines)}, written 0"
    assert len(consume_all(day.bootstrap, topic, None, 60.0, idle_s=3.0)) == len(day.lines)


def test_to_kafka_merge_sends_only_what_the_topic_lacks(day: Day) -> None:
    topic = fresh_topic(day, partitions=1)
    config = day.config(topic)
    first = day.lines[1::3]
    day.restore(first)
    assert counts(run(day, "--to", "kafka", config=config)).endswith(f"written {len(first)}")
    day.restore()
    r = run(day, "--to", "kafka", "--merge", config=config)
    rest = len(day.lines) - len(first)
    assert counts(r) == f"read {len(day.lines)}, already present {len(first)}, written {rest}"
    msgs = consume_all(day.bootstrap, topic, None, 60.0, idle_s=3.0)
    assert Counter(m.value() + b"\n" for m in msgs) == Counter(day.lines)


def test_progress_is_drawn_on_a_terminal_only(day: Day) -> None:
    day.restore()
    topic = fresh_topic(day, partitions=1)
    leader, follower = pty.openpty()
    try:
        cmd = [BEACON, "backfill", "--config", day.config(topic), "--flavor", FLAVOR]
        r = subprocess.run(
            [*cmd, "--date", day.date, "--to", "kafka"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while chunk := _read_some(leader):
            drawn += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert r.returncode == 0
    n = len(day.lines)
    assert f"\rsending to {topic}: {n:,} of {n:,} 100%" in drawn.decode()
    assert r.stdout.strip().endswith(f"written {n}")


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end is closed and all was read
        return b""


# -- bad input and faults: one line on stderr, exit 2, nothing written -------------------


def refused(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("beacon: "), r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_a_day_without_messages_is_refused(day: Day) -> None:
    r = backfill(day.config(), "--from", "kafka", date="2020-02-29")
    refused(r, "has no message on 2020-02-29")
    assert not (day.path.parent / "2020-02-29.jsonl").exists()
    assert aside_files(day) == []


def test_a_missing_topic_is_refused_and_not_created(day: Day) -> None:
    day.restore()
    missing = f"backfill-missing-{uuid.uuid4().hex[:8]}"
    for way in (["--from", "kafka", "--merge"], ["--to", "kafka"]):
        refused(run(day, *way, config=day.config(missing)), f"topic {missing!r} does not exist")
    assert not topic_exists(day.bootstrap, missing)
    assert day.path.read_bytes() == b"".join(day.lines)


def test_a_broker_that_is_down_is_refused(day: Day, tmp_path: Path) -> None:
    day.restore()
    closed = f"127.0.0.1:{free_port()}"
    config = tmp_path / "down.json"
    cfg = json.loads(Path(day.config()).read_text())
    cfg["backends"]["kafka"]["bootstrap_servers"] = closed
    config.write_text(json.dumps(cfg))
    for way in (["--from", "kafka", "--merge"], ["--to", "kafka"]):
        refused(run(day, *way, config=str(config)), f"cannot reach Kafka at {closed}")
    assert day.path.read_bytes() == b"".join(day.lines)
    assert aside_files(day) == []


def test_a_torn_last_line_is_refused(day: Day) -> None:
    torn = [*day.lines[:-1], day.lines[-1][:-20]]
    day.restore(torn)
    topic = fresh_topic(day, partitions=1)
    refused(run(day, "--to", "kafka", config=day.config(topic)), "last line is torn")
    assert consume_all(day.bootstrap, topic, None, 30.0, idle_s=3.0) == []
    refused(run(day, "--from", "kafka", "--merge"), "last line is torn")
    assert day.path.read_bytes() == b"".join(torn)
    assert aside_files(day) == []


def test_a_line_that_is_no_event_of_the_day_is_refused(day: Day) -> None:
    topic = fresh_topic(day, partitions=1)
    for bad, why in (
        (b"not json\n", ":3: "),
        (day.lines[0].replace(b'"ts":"2', b'"ts":"1'), ":3: ts"),
    ):
        day.restore([*day.lines[:2], bad, *day.lines[2:]])
        refused(run(day, "--to", "kafka", config=day.config(topic)), f"{day.date}.jsonl{why}")
    assert consume_all(day.bootstrap, topic, None, 30.0, idle_s=3.0) == []


def test_an_existing_file_is_not_replaced_without_merge(day: Day) -> None:
    day.restore(day.lines[:5])
    refused(run(day, "--from", "kafka"), "exists: --merge")
    assert day.path.read_bytes() == b"".join(day.lines[:5])


def test_a_date_in_the_future_is_refused(day: Day) -> None:
    later = (date.today() + timedelta(days=2)).isoformat()
    for way in (["--from", "kafka"], ["--to", "kafka"]):
        refused(backfill(day.config(), *way, date=later), "is in the future")
    assert not (day.path.parent / f"{later}.jsonl").exists()


@pytest.mark.parametrize("bad", ["2026-13-01", "20261124", "yesterday"])
def test_a_malformed_date_is_refused(day: Day, bad: str) -> None:
    refused(backfill(day.config(), "--from", "kafka", date=bad), "--date: expected YYYY-MM-DD")


def test_an_unknown_flavor_is_refused(day: Day) -> None:
    cmd = [BEACON, "backfill", "--config", day.config(), "--flavor", "nope", "--date", day.date]
    r = subprocess.run([*cmd, "--from", "kafka"], capture_output=True, text=True, timeout=60)
    refused(r, "unknown flavor 'nope'")


def test_kafka_not_configured_is_refused(day: Day, tmp_path: Path) -> None:
    config = tmp_path / "nokafka.json"
    config.write_text(json.dumps({"data_dir": str(day.data_dir), "flavors": [{"name": FLAVOR}]}))
    day.path.unlink()
    refused(backfill(str(config), "--from", "kafka", date=day.date), "Kafka is not configured")
    assert not day.path.exists()


def test_usage_errors_exit_2(day: Day) -> None:
    cmd = [BEACON, "backfill", "--config", day.config(), "--flavor", FLAVOR, "--date", day.date]
    for extra in ([], ["--from", "kafka", "--to", "kafka"], ["--from", "file"]):
        r = subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=60)
        refused(r)


def test_settings_librdkafka_refuses_are_refused(day: Day) -> None:
    day.restore()
    config = day.config(producer={"security.protocol": "bogus"})
    for way in (["--from", "kafka", "--merge"], ["--to", "kafka"]):
        refused(run(day, *way, config=config), "security.protocol")
    assert day.path.read_bytes() == b"".join(day.lines)


def test_deliveries_the_broker_refuses_fail_the_run(day: Day) -> None:
    day.restore()
    topic = f"backfill-tiny-{uuid.uuid4().hex[:8]}"
    create_topic(day.bootstrap, topic, 1, {"max.message.bytes": "64"})  # no batch fits
    r = run(day, "--to", "kafka", config=day.config(topic))
    refused(r, f"{len(day.lines)} events not delivered (0 were)")
