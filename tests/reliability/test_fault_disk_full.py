"""Disk full for the file backend: the flavor's data directory is a small tmpfs that fills up
under load, then grows. Kafka keeps receiving everything meanwhile; afterwards the files hold
every event exactly once and no torn line."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reliability.common import (
    FLAVOR,
    RATE,
    Row,
    Sampler,
    beacon_config,
    feeder_summary,
    requests,
    scan_files,
    scan_kafka,
    sleep_until,
    wait_spool_empty,
)
from support.beacon_server import BeaconServer
from support.faults import Tmpfs
from support.kafka_broker import KafkaBroker
from support.load import BackgroundLoad

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: ~85-byte lines at RATE/s fill this within ~10 s.
SMALL = "384k"
BIG = "256m"
FULL_S = 25.0
AFTER_S = 10.0


@pytest.fixture
def srv_on_tmpfs(tmp_path: Path) -> Iterator[tuple[Path, Tmpfs]]:
    workdir = tmp_path / "srv"
    fs = Tmpfs(workdir / "data" / FLAVOR, SMALL).mount()
    try:
        yield workdir, fs
    finally:
        fs.unmount()


def test_disk_full_for_files_then_space_freed(
    srv_on_tmpfs: tuple[Path, Tmpfs],
    kafka_broker: KafkaBroker,
    record: Callable[[Row], None],
) -> None:
    workdir, fs = srv_on_tmpfs
    topic = f"rel-disk-{uuid.uuid4().hex[:8]}"
    srv = BeaconServer(workdir, beacon_config(topic, kafka_broker.bootstrap)).start()
    sampler = Sampler(srv.admin_port).start()
    try:
        t0 = time.monotonic()
        load = BackgroundLoad("127.0.0.1", srv.port, requests(), connections=8, rate=RATE)
        load.start()
        # Wait for the disk to fill (the file backend reports failing), then keep it full.
        deadline = time.monotonic() + 60
        while not sampler.file_failing_seen and time.monotonic() < deadline:
            time.sleep(0.2)
        t_full = time.monotonic()
        used_full = fs.used_bytes()
        sleep_until(t_full + FULL_S)
        fs.grow(BIG)
        full_s = time.monotonic() - t_full
        sleep_until(time.monotonic() + AFTER_S)
        result = load.stop()
        elapsed = time.monotonic() - t0
        in_kafka = scan_kafka(kafka_broker.bootstrap, topic, result.sent)
        left = wait_spool_empty(srv, "file")
        sampler.stop()
        code = srv.stop(signal.SIGTERM)
    finally:
        sampler.stop()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    files = scan_files([srv.data_dir])
    accepted = result.statuses.get(200, 0)
    sent_ids = set(range(result.sent))
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    lost = len(sent_ids - set(files.ids)) + len(sent_ids - set(in_kafka))
    record(
        Row(
            fault=f"disk full for files {full_s:.0f}s (tmpfs {SMALL}, then {BIG})",
            sent=result.sent,
            accepted=accepted,
            in_files=len(files.ids),
            in_kafka=len(in_kafka),
            dup_kafka=dup_kafka,
            dup_files=files.duplicates,
            lost=lost,
            failed=result.sent - accepted,
            seconds=round(elapsed, 1),
            notes=f"file backend failing seen: {sampler.file_failing_seen}; tmpfs used "
            f"{used_full} B when full; torn lines {len(files.torn)}; "
            f"/healthz seen {dict(sampler.health)}; {feeder_summary(srv.log())}",
        )
    )
    assert code == 0, srv.log()[-3000:]
    assert sampler.file_failing_seen, "the disk never filled up"
    assert result.errors == [] and result.unanswered == 0, result.errors[:5]
    assert result.statuses == {200: result.sent}
    assert left == [], f"file spool not drained: {left}"
    assert files.torn == [], files.torn[:5]
    assert set(files.ids) == sent_ids, f"missing in files: {sorted(sent_ids - set(files.ids))[:20]}"
    assert files.duplicates == 0
    assert set(in_kafka) == sent_ids, f"missing in kafka: {sorted(sent_ids - set(in_kafka))[:20]}"
    assert dup_kafka == 0
