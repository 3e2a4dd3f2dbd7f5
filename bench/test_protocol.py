"""The per-request cost of the HTTP front end in-process: TrackProtocol.data_received on a
wrk-style request, through httptools and the one Rust call, into a transport that only
counts writes (no sockets: the Python and Rust part of a request, without the syscalls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beacon import Ingest
from beacon.config import parse_config
from beacon.http.protocol import TrackProtocol
from beacon.http.responses import ResponseTable
from beacon.state import ServerState

QUERY = (
    b"ev=pageview&uid=7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10&sid=9a8b7c6d&ts=1795508102123"
    b"&url=https%3A%2F%2Fwww.example.gr%2Fsearch%3Fq%3Dlaptop%2B15%26page%3D2%26sort%3Dprice"
    b"&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dfthina%2Blaptop&vw=1920&vh=1080"
)
WRK = b"GET /track?" + QUERY + b" HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
BROWSER = (
    b"GET /track?" + QUERY + b" HTTP/1.1\r\nHost: localhost:8080\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120\r\nAccept: image/avif,*/*\r\n"
    b"Accept-Language: el-GR,el;q=0.9\r\nReferer: https://www.example.gr/\r\n"
    b"Connection: keep-alive\r\n\r\n"
)


class CountingTransport:
    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5555)

    def close(self) -> None:
        pass


def run(benchmark: Any, tmp_path: Path, request: bytes) -> None:
    cfg = parse_config({"data_dir": str(tmp_path)})
    ingest = Ingest(cfg)
    ingest.start()
    proto = TrackProtocol(ServerState(cfg, ingest), ResponseTable())
    transport = CountingTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    benchmark(proto.data_received, request)
    ingest.shutdown()
    accepted = ingest.stats()["flavors"]["default"]["accepted"]
    benchmark.extra_info["every_request_answered_and_accepted"] = transport.writes == accepted
    assert transport.writes == accepted > 0


def test_protocol_wrk_request(benchmark: Any, tmp_path: Path) -> None:
    run(benchmark, tmp_path, WRK)


def test_protocol_browser_request(benchmark: Any, tmp_path: Path) -> None:
    run(benchmark, tmp_path, BROWSER)
