"""A Kafka outage under steady load: the broker stops for 30+ s and comes back. Every request
is answered 200 throughout, and afterwards every event is in its file and in Kafka exactly
once, part of it having gone through the Kafka spool."""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.accounting import wait_accounted
from support.admin import stats
from support.beacon_server import BeaconServer, free_port
from support.kafka_broker import KafkaBroker, consume_all
from support.load import BackgroundLoad, run_load

pytestmark = pytest.mark.kafka

RATE = 1500  # requests/s
OUTAGE_S = 32.0
STOPPED_RE = re.compile(
    r"kafka: stopped: (\d+) delivered, (\d+) failed, (\d+) replayed, (\d+) spooled"
)


def requests(hosts: list[str]) -> Iterator[tuple[str, str]]:
    i = 0
    while True:
        yield hosts[i % len(hosts)], f"/track?ev=view&uid=u{i % 13}&n={i}"
        i += 1


def spool_files(srv: BeaconServer) -> list[Path]:
    return sorted((srv.data_dir / "spool" / "kafka").glob("*.spool"))


def wait_for_topics(broker: KafkaBroker, counts: dict[str, int], timeout_s: float = 180) -> None:
    """Returns once each topic holds at least its count of messages (or at the timeout:
    the assertions that follow say what is missing)."""
    deadline = time.monotonic() + timeout_s
    for topic, count in counts.items():
        left = max(1.0, deadline - time.monotonic())
        consume_all(broker.bootstrap, topic, count, left, idle_s=left)


def test_outage_loses_nothing_and_duplicates_nothing(
    fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    broker = fresh_kafka_broker
    tag = uuid.uuid4().hex[:8]
    topics = {"north": f"north-{tag}", "south": f"south-{tag}"}
    config = {
        "default_flavor": None,
        "ring_capacity": 1024,
        "flavors": [
            {
                "name": "north",
                "hosts": ["north.test"],
                "kafka_topic": topics["north"],
                "kafka_key_param": "uid",
            },
            {
                "name": "south",
                "hosts": ["south.test"],
                "timezone": "Europe/Athens",
                "kafka_topic": topics["south"],
            },
        ],
        "backends": {
            "file": {"enabled": True},
            "kafka": {
                "enabled": True,
                "bootstrap_servers": broker.bootstrap,
                "producer": {"queue.buffering.max.messages": 1000},
            },
        },
    }
    srv = BeaconServer(tmp_path / "srv", config).start()
    try:
        load = BackgroundLoad(
            "127.0.0.1",
            srv.port,
            requests(["north.test", "south.test"]),
            connections=8,
            rate=RATE,
        ).start()
        time.sleep(5)
        t_down = time.monotonic()
        broker.stop()
        max_spool_files = 0
        while time.monotonic() - t_down < OUTAGE_S:
            max_spool_files = max(max_spool_files, len(spool_files(srv)))
            time.sleep(0.5)
        outage_s = time.monotonic() - t_down
        broker.start()
        time.sleep(10)
        result = load.stop()

        # Wait for the spool to drain: every event in Kafka (a segment taken for replay has
        # left the disk before it is delivered, so an empty spool dir is not enough).
        sent = result.sent
        wait_for_topics(broker, {topics["north"]: (sent + 1) // 2, topics["south"]: sent // 2})
        left = spool_files(srv)
        unaccounted = wait_accounted(lambda: stats(srv.admin_port)["backends"])
        code = srv.stop(signal.SIGTERM)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    log = srv.log()
    assert code == 0, log[-3000:]
    assert left == [], f"spool not drained after 180 s: {left}"
    assert not any(unaccounted.values()), unaccounted
    assert {"kafka/north", "kafka/south"} <= set(unaccounted), unaccounted

    accepted = result.statuses.get(200, 0)
    stopped = STOPPED_RE.search(log)
    assert stopped is not None, log[-3000:]
    delivered, failed, replayed, spooled = (int(g) for g in stopped.groups())

    in_file: Counter[int] = Counter()
    in_kafka: Counter[int] = Counter()
    for name, topic in topics.items():
        for ev in srv.lines(name):
            in_file[int(ev["params"]["n"])] += 1
        for m in consume_all(broker.bootstrap, topic, None, 180.0, idle_s=8.0):
            in_kafka[int(json.loads(m.value())["params"]["n"])] += 1
    sent_ids = set(range(result.sent))
    dup_file = sum(c - 1 for c in in_file.values())
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    print(
        f"\noutage {outage_s:.1f}s; sent {result.sent}, accepted {accepted}, "
        f"statuses {dict(result.statuses)}, unanswered {result.unanswered}, "
        f"errors {result.errors[:3]}\n"
        f"in file {len(in_file)} (duplicates {dup_file}), in kafka {len(in_kafka)} "
        f"(duplicates {dup_kafka}, missing {len(sent_ids - set(in_kafka))})\n"
        f"feeder: delivered {delivered}, failed {failed}, replayed {replayed}, "
        f"spooled {spooled}; spool files seen during the outage: {max_spool_files}"
    )
    assert result.errors == [] and result.unanswered == 0
    assert result.statuses == {200: result.sent}
    assert set(in_file) == sent_ids and dup_file == 0
    assert set(in_kafka) == sent_ids, f"missing {sorted(sent_ids - set(in_kafka))[:20]}"
    assert dup_kafka == 0
    assert spooled > 0 and replayed > 0 and max_spool_files > 0


def test_sigterm_while_kafka_is_unreachable_spools_everything_for_the_next_start(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """SIGTERM with no broker: what librdkafka holds is purged into the spool on disk, and
    the next start (with a broker) replays it: nothing accepted is lost or doubled."""
    tag = uuid.uuid4().hex[:8]
    topic = f"late-{tag}"
    n = 5000

    def config(bootstrap: str) -> dict[str, object]:
        return {
            "flavors": [{"name": "late", "hosts": ["late.test"], "kafka_topic": topic}],
            "backends": {"kafka": {"enabled": True, "bootstrap_servers": bootstrap}},
        }

    workdir = tmp_path / "srv"
    reqs = (("late.test", f"/track?ev=view&n={i}") for i in range(n))
    with BeaconServer(workdir, config(f"127.0.0.1:{free_port()}")) as srv:
        result = run_load("127.0.0.1", srv.port, reqs, connections=4)
        assert result.statuses == {200: n}
        assert srv.stop(signal.SIGTERM) == 0, srv.log()[-3000:]
    spooled_lines = sum(len(p.read_bytes().splitlines()) for p in spool_files(srv))
    first_log = srv.log()

    with BeaconServer(workdir, config(kafka_broker.bootstrap)) as srv2:
        wait_for_topics(kafka_broker, {topic: n})
        # The segment leaves the disk once every delivery report is in, which can trail
        # the messages becoming visible to a consumer by a moment.
        deadline = time.monotonic() + 30
        while (left := spool_files(srv2)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert srv2.stop(signal.SIGTERM) == 0, srv2.log()[-3000:]
    msgs = consume_all(kafka_broker.bootstrap, topic, None, 120.0)
    got = Counter(int(json.loads(m.value())["params"]["n"]) for m in msgs)
    dups = sum(c - 1 for c in got.values())
    print(
        f"\nSIGTERM without broker: accepted {n}, spooled on disk {spooled_lines}; "
        f"after restart: in kafka {len(got)}, duplicates {dups}, spool left {left}"
    )
    assert "undelivered" in first_log, first_log[-3000:]
    assert spooled_lines == n
    assert left == []
    assert set(got) == set(range(n)) and dups == 0
    assert len(srv.lines("late")) == n
