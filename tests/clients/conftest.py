"""Fixtures of the real-client tests: one beacon per test module, and the origin of the page
Chromium loads (known before the server starts: the flavor allows it)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from support import clients
from support.beacon_server import BeaconServer


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def page_port() -> Iterator[int]:
    """Serves tests/support/clients/pages/ for the session on a port the kernel picks as it
    binds: a port found free first and bound later, when Chromium's tests start, could be
    taken in between as another test's ephemeral client port (it was, once: EADDRINUSE)."""
    handler = functools.partial(_Quiet, directory=str(clients.HERE / "pages"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


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
