"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.beacon_server import BeaconServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BeaconServer]:
    """The real server with its defaults (one `default` flavor, file backend)."""
    with BeaconServer(tmp_path) as srv:
        yield srv
