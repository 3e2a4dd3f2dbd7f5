"""Fixtures of the real-client tests: one beacon per test module, and the origin of the page
Chromium loads (known before the server starts: the flavor allows it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import clients
from support.beacon_server import BeaconServer, free_port


@pytest.fixture(scope="session")
def page_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def page_origin(page_port: int) -> str:
    # Another origin than beacon's http://127.0.0.1:<port>: another host and port.
    return f"http://localhost:{page_port}"


@pytest.fixture(scope="module")
def beacon(tmp_path_factory: pytest.TempPathFactory, page_origin: str) -> Iterator[BeaconServer]:
    srv = BeaconServer(tmp_path_factory.mktemp("clients"), clients.config(page_origin)).start()
    try:
        yield srv
        # Whatever the module sent, the server is still fine and stops cleanly.
        assert clients.healthy(srv), srv.log()[-3000:]
    finally:
        rc = srv.stop()
    assert rc == 0, f"beacon exited {rc}:\n{srv.log()[-3000:]}"
