"""beacon itself SIGKILLed under load and restarted on the same data and spool directories:
the files and the spool are consistent (every line parses, no torn line), and the events lost
(counted from what the clients got a 200 for) stay within README's in-memory bound."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from reliability.common import (
    RATE,
    Row,
    accounting,
    beacon_config,
    feeder_summary,
    memory_bound,
    scan_files,
    scan_kafka,
    spool_segments,
    wait_spool_empty,
)
from support.beacon_server import BeaconServer
from support.faults import PacedClients
from support.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def torn_spool_lines(paths: list[Path]) -> list[str]:
    """Spool records that are not `flavor \\t ts_ms \\t day \\t key \\t <JSON line>`."""
    bad = []
    for path in paths:
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            bad.append(f"{path}: no final newline")
        for line in raw.splitlines():
            parts = line.split(b"\t", 4)
            try:
                assert len(parts) == 5
                json.loads(parts[4])
            except (AssertionError, ValueError):
                bad.append(f"{path}: {line[:120]!r}")
    return bad


def test_beacon_sigkilled_under_load_and_restarted(
    kafka_broker: KafkaBroker, tmp_path: Path, record: Callable[[Row], None]
) -> None:
    topic = f"rel-bkill-{uuid.uuid4().hex[:8]}"
    srv = BeaconServer(tmp_path / "srv", beacon_config(topic, kafka_broker.bootstrap)).start()
    clients = PacedClients(srv.port, threads=4, rate=RATE, host="localhost").start()
    t0 = time.monotonic()
    try:
        time.sleep(10)
        assert srv.proc is not None
        srv.proc.kill()
        srv.proc.wait()
        killed_at_id = clients.next_id()
        # State on disk right after the crash, before any restart touches it.
        after_kill = scan_files([srv.data_dir])
        spool_torn = torn_spool_lines(spool_segments(srv, "file") + spool_segments(srv, "kafka"))
        spool_after_kill = len(spool_segments(srv, "file") + spool_segments(srv, "kafka"))
        time.sleep(2)
        srv.start()
        time.sleep(10)
    finally:
        clients.stop()
    elapsed = time.monotonic() - t0
    answered = set(clients.sent_ok)
    try:
        # Some accepted events may be lost, so there is no count to wait for: drain the
        # spools, stop cleanly (everything handed to Kafka or spooled), then read the topic.
        left = wait_spool_empty(srv, "kafka") + wait_spool_empty(srv, "file")
        unaccounted = accounting(srv)
        code = srv.stop(signal.SIGTERM)
        in_kafka = scan_kafka(kafka_broker.bootstrap, topic, None)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    files = scan_files([srv.data_dir])
    lost_files = answered - set(files.ids)
    lost_kafka = answered - set(in_kafka)
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    bound = memory_bound(RATE)
    sent = clients.next_id() - 1
    record(
        Row(
            fault="beacon SIGKILL under load, restarted on same dirs",
            sent=sent,
            accepted=len(answered),
            in_files=len(set(files.ids) & answered),
            in_kafka=len(set(in_kafka) & answered),
            dup_kafka=dup_kafka,
            dup_files=files.duplicates,
            lost=len(lost_files) + len(lost_kafka),
            failed=len(clients.failures),
            seconds=round(elapsed, 1),
            lost_bound=2 * bound,
            unaccounted=sum(unaccounted.values()),
            notes=f"lost {len(lost_files)} in files, {len(lost_kafka)} in kafka (bound "
            f"{bound} each); lost ids {min(lost_files | lost_kafka, default=None)}.."
            f"{max(lost_files | lost_kafka, default=None)}, killed at id ~{killed_at_id}; "
            f"right after the kill: {after_kill.lines} file lines, torn "
            f"{len(after_kill.torn)}, {spool_after_kill} spool segments, torn spool records "
            f"{len(spool_torn)}; {feeder_summary(srv.log())}",
        )
    )
    assert code == 0, srv.log()[-3000:]
    assert not any(unaccounted.values()), unaccounted  # the restarted instance's figures
    assert after_kill.torn == [], after_kill.torn[:5]
    assert spool_torn == [], spool_torn[:5]
    assert files.torn == [], files.torn[:5]
    assert left == [], f"spool not drained: {left}"
    assert files.duplicates == 0
    assert dup_kafka == 0
    assert len(lost_files) <= bound and len(lost_kafka) <= bound
    # Events after the restart are all there: only what sat in memory at the kill is lost.
    assert all(n < killed_at_id for n in lost_files | lost_kafka)
    # Anything in storage that no client got a 200 for was still a request that was sent.
    assert set(files.ids) | set(in_kafka) <= set(range(1, sent + 1))
