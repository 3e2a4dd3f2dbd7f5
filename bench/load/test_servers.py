"""Every server of the benchmark answers every request shape as the run expects (the probe
each run makes first): 200 to the GETs, 204 with the CORS headers to the POST, and stores
what it says it stores. Fast: one request of each shape per server, no load."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bench.load.clients import probe
from bench.load.procs import Reaper
from bench.load.servers import Beacon, Nginx, PythonRef, Server
from bench.load.shapes import ORIGIN, SHAPES

KINDS: dict[str, Callable[[Reaper], Server]] = {
    "beacon": lambda r: Beacon(r),
    "nginx": lambda r: Nginx(r),
    "nginx-workers2": lambda r: Nginx(r, workers=2),
    "nginx-aa": lambda r: Nginx(r, control=True),  # the fixed-rate run's control
    "python-ref": lambda r: PythonRef(r),
}


@pytest.fixture(params=list(KINDS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    reaper = Reaper()
    srv = KINDS[request.param](reaper)
    srv.start(tmp_path / "srv", None)
    try:
        yield srv
    finally:
        reaper.kill_all()


def test_every_shape_is_answered_and_stored(server: Server) -> None:
    for shape in SHAPES.values():
        got = probe(server.port, shape)
        assert got["status"] == shape.status, shape.name
        if shape.is_post:
            assert got["headers"]["access-control-allow-origin"] == ORIGIN
            assert got["headers"]["access-control-allow-credentials"] == "true"
    server.stop()
    stored = sum(server.stores(s) for s in SHAPES.values())
    assert server.lines_written() >= stored
    assert server.stores(SHAPES["post"]) == (not isinstance(server, Nginx))
