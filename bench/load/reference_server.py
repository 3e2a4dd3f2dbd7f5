"""The "what you'd write by hand" reference: a minimal uvloop + httptools server that turns
`/track?...` into `{"ts":..., "params":{...}}` with `urllib.parse.parse_qsl` + `json.dumps`,
appends it to a buffered file (flushed every second and on exit) and answers the 1x1 GIF.

    python -m bench.load.reference_server --port 8081 --out events.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import IO
from urllib.parse import parse_qsl

import httptools
import uvloop

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nCache-Control: no-store\r\n"
    b"Content-Length: %d\r\n\r\n" % len(GIF)
) + GIF
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Track(asyncio.Protocol):
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.url = b""
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self.url)
        self.url = b""
        assert self.transport is not None
        if url.path != b"/track":
            self.transport.write(NOT_FOUND)
            return
        query = (url.query or b"").decode("utf-8", "replace")
        event = {"ts": time.time(), "params": dict(parse_qsl(query))}
        self.out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.transport.write(OK)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(port: int, out_path: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(out_path, "a", buffering=64 * 1024, encoding="utf-8") as out:

        def flush() -> None:
            out.flush()
            loop.call_later(1.0, flush)

        flush()
        srv = await loop.create_server(
            lambda: Track(out), "127.0.0.1", port, reuse_address=True, backlog=4096
        )
        await stop.wait()
        srv.close()
        out.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = ap.parse_args()
    uvloop.run(serve(args.port, args.out))


if __name__ == "__main__":
    main()
