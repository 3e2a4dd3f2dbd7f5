"""What wrk sends is what the request files say: wrk_shape.lua's bytes, captured by a tiny
socket server, equal the Python rendering (which the fixed-rate client and the probe send)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from bench.load.shapes import ORIGIN, QUERY, SHAPES, Shape

LUA = Path(__file__).resolve().parent / "wrk_shape.lua"


def read_request(conn: socket.socket) -> bytes:
    """One whole request (headers and a Content-Length body) from conn."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def capture_wrk(env: dict[str, str]) -> tuple[int, bytes, str]:
    """Runs wrk for a second against a listener that keeps the first request it gets;
    (port, request, wrk's output)."""
    got: list[bytes] = []
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        srv.settimeout(5)
        port = srv.getsockname()[1]

        def accept() -> None:
            while not got:  # wrk's first connection only checks that the port is open
                try:
                    conn, _ = srv.accept()
                except OSError:  # timed out, or closed: wrk sent nothing
                    return
                with conn:
                    conn.settimeout(5)
                    if req := read_request(conn):
                        got.append(req)

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        out = subprocess.run(
            ["wrk", "-t1", "-c1", "-d1s", "-s", str(LUA), f"http://127.0.0.1:{port}/"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        t.join(5 if got else 0.1)
    return port, got[0] if got else b"", out.stdout + out.stderr


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_wrk_sends_the_rendered_request(shape: Shape) -> None:
    port, sent, out = capture_wrk({"BENCH_REQUEST": str(shape.path)})
    assert sent == shape.render(f"127.0.0.1:{port}"), out
    assert "BENCH_JSON " in out  # wrk_report.lua's line is still printed


def test_wrk_shape_by_name_and_bare_is_wrks_own_request() -> None:
    port, sent, _ = capture_wrk({"BENCH_SHAPE": "browser"})
    assert sent == SHAPES["browser"].render(f"127.0.0.1:{port}")
    port, sent, _ = capture_wrk({})
    assert sent == f"GET /track?{QUERY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def test_a_missing_request_file_stops_wrk() -> None:
    _, sent, out = capture_wrk({"BENCH_REQUEST": "/nonexistent.http"})
    assert sent == b"" and "BENCH_JSON" not in out and "nonexistent" in out


def fields(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *rest = head.decode().split("\r\n")
    pairs = [r.split(": ", 1) for r in rest]
    assert len({n.lower() for n, _ in pairs}) == len(pairs), "a header field twice"
    return line, {n.lower(): v for n, v in pairs}, body


def test_the_browser_get_is_a_chrome_img_request_of_about_900_bytes() -> None:
    line, h, body = fields(SHAPES["browser"].render("127.0.0.1:8080"))
    assert line == f"GET /track?{QUERY} HTTP/1.1" and body == b""
    assert h["accept"] == "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
    assert (h["sec-fetch-site"], h["sec-fetch-mode"], h["sec-fetch-dest"]) == (
        "cross-site",
        "no-cors",
        "image",
    )
    assert "Chrome/13" in h["user-agent"] and '"Chromium";v="13' in h["sec-ch-ua"]
    assert 250 <= len(h["cookie"]) <= 500
    assert 850 <= SHAPES["browser"].header_bytes("127.0.0.1:8080") <= 1000


def test_the_post_is_a_send_beacon_with_the_allowed_origin_and_the_query_as_body() -> None:
    line, h, body = fields(SHAPES["post"].render("127.0.0.1:8080"))
    assert line == "POST /track HTTP/1.1"
    assert body == QUERY.encode() and int(h["content-length"]) == len(QUERY) == 311
    assert h["content-type"] == "text/plain;charset=UTF-8" and h["origin"] == ORIGIN
    assert (h["sec-fetch-mode"], h["sec-fetch-dest"]) == ("no-cors", "empty")
    assert SHAPES["post"].is_post and not SHAPES["browser"].is_post


def test_crlf_request_files_render_the_same(tmp_path: Path) -> None:
    from bench.load.shapes import render

    text = SHAPES["post"].path.read_text()
    assert render(text.replace("\n", "\r\n"), "h:1") == render(text, "h:1")
