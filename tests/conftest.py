"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.beacon_server import BeaconServer

if TYPE_CHECKING:
    # Imported in the fixtures: `make test-deb` runs tests/test_deb.py on Debian's python
    # with only pytest installed, without confluent_kafka.
    from support.kafka_broker import KafkaBroker

# The package tests install and purge a .deb as root: only `make test-deb` (which builds the
# package and sets BEACON_DEB) collects them.
collect_ignore = [] if os.environ.get("BEACON_DEB") else ["test_deb.py"]

#: Short broker sessions: a killed or stopped broker can re-register within a few seconds.
FAST_RESTART_PROPS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "1000",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BeaconServer]:
    """The real server with its defaults (one `default` flavor, file backend)."""
    with BeaconServer(tmp_path) as srv:
        yield srv


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One real Kafka broker for the whole session. Tests must not stop it (use
    `fresh_kafka_broker` for that) and should use topic names of their own."""
    from support.kafka_broker import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-session"), props=FAST_RESTART_PROPS)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def fresh_kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of the test's own, free to stop, kill and restart; stopped afterwards."""
    from support.kafka_broker import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), props=FAST_RESTART_PROPS)
    broker.start()
    try:
        yield broker
    finally:
        if broker.is_running():
            broker.stop()
