"""Disk full for the file backend: the flavor's data directory is a small tmpfs that fills up
under load, then grows. Kafka keeps receiving everything meanwhile; afterwards the files hold
every event exactly once and no torn line."""

from __future__ import annotations

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
    check_exactly_once,
    requests,
    sleep_until,
    stop_and_collect,
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
        out = stop_and_collect(
            srv, load, sampler, t0, (kafka_broker.bootstrap, topic), spool="file"
        )
    finally:
        sampler.stop()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
    check_exactly_once(
        srv,
        out,
        f"disk full for files {full_s:.0f}s (tmpfs {SMALL}, then {BIG})",
        f"file backend failing seen: {sampler.file_failing_seen}; tmpfs used "
        f"{used_full} B when full; /healthz seen {dict(sampler.health)}",
        record,
    )
    assert sampler.file_failing_seen, "the disk never filled up"
