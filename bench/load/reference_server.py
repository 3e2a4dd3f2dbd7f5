"""The "what you'd write by hand" reference: a minimal uvloop + httptools server that turns
`/track?...` into `{"ts":..., "params":{...}}` with `urllib.parse.parse_qsl` + `json.dumps`,
appends it to a buffered file (flushed every second and on exit) and answers the 1x1 GIF.
A POST (sendBeacon) body is read as a query joined to the URL's and answered 204, with the
CORS headers when its Origin is the allowed one, as beacon does.

    python -m bench.load.reference_server --port 8081 --out events.jsonl \
        --allow-origin https://www.example.gr
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
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def cors_headers(origin: bytes) -> bytes:
    return (
        b"Access-Control-Allow-Origin: %s\r\nAccess-Control-Allow-Credentials: true\r\n"
        b"Vary: Origin\r\n" % origin
    )


class Track(asyncio.Protocol):
    def __init__(self, out: IO[str], allow_origin: bytes) -> None:
        self.out = out
        self.allow_origin = allow_origin
        self.url = b""
        self.body = b""
        self.origin = b""
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

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"origin":
            self.origin = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self.url)
        body, origin = self.body, self.origin
        self.url = self.body = self.origin = b""
        assert self.transport is not None
        if url.path != b"/track":
            self.transport.write(NOT_FOUND)
            return
        post = self.parser.get_method() == b"POST"
        query = b"&".join(q for q in (url.query, body) if q).decode("utf-8", "replace")
        event = {"ts": time.time(), "params": dict(parse_qsl(query))}
        self.out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        if post:
            cors = cors_headers(origin) if origin and origin == self.allow_origin else b""
            self.transport.write(NO_CONTENT + cors + b"\r\n")
        else:
            self.transport.write(OK)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve(port: int, out_path: str, allow_origin: bytes) -> None:
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
            lambda: Track(out, allow_origin), "127.0.0.1", port, reuse_address=True, backlog=4096
        )
        await stop.wait()
        srv.close()
        out.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True, help="JSON-lines file to append to")
    ap.add_argument("--allow-origin", default="", help="the Origin a POST gets CORS headers for")
    args = ap.parse_args()
    uvloop.run(serve(args.port, args.out, args.allow_origin.encode()))


if __name__ == "__main__":
    main()
