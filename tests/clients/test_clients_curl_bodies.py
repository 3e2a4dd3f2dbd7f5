"""curl sending bodies: Expect: 100-continue, chunked, compressed bodies (gzip, deflate, br,
zstd) and an encoding the server does not take."""

from __future__ import annotations

import gzip
import subprocess
import zlib
from pathlib import Path
from urllib.parse import urlencode

import pytest

from support import clients
from support.beacon_server import BeaconServer
from support.clients.curl import curl, transfer

pytestmark = pytest.mark.clients

FORM = "application/x-www-form-urlencoded"
# --expect100-timeout longer than curl's --max-time: curl never sends the body on its own
# after a wait, so a server that does not answer Expect makes curl give up (exit 28).
EXPECT = ("-H", "Expect: 100-continue", "--expect100-timeout", "30")


def body_file(tmp_path: Path, data: bytes, name: str = "body") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return f"@{path}"


def test_expect_100_continue_gets_100_then_the_answer(beacon: BeaconServer) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    r = curl(
        transfer(
            beacon.url("/track?src=url"),
            opts=(*EXPECT, "-H", "Content-Type: text/plain", "--data-binary", f"ev=exp&r={run}"),
        )
    ).check()
    assert [x.status_line for x in r.responses] == [
        "HTTP/1.1 100 Continue",
        "HTTP/1.1 204 No Content",
    ]
    assert r.codes == ["204"]
    assert clients.stored_since(beacon, since, expect=1) == [{"src": "url", "ev": "exp", "r": run}]


@pytest.mark.parametrize(
    ("headers", "size", "status", "reason"),
    [
        # Content-Length over limits.max_body_bytes (64 KiB).
        ((f"Content-Type: {FORM}",), 100_000, "413", "too_large"),
        (("Content-Type: application/xml",), 100, "415", "unsupported_media_type"),
        (
            (f"Content-Type: {FORM}", "Content-Encoding: compress"),
            100,
            "415",
            "unsupported_media_type",
        ),
        (("Content-Type: multipart/form-data",), 100, "400", "malformed"),  # no boundary
    ],
    ids=["too-large", "type", "encoding", "no-boundary"],
)
def test_expect_refused_by_its_headers_gets_the_final_status_before_the_body(
    beacon: BeaconServer,
    tmp_path: Path,
    headers: tuple[str, ...],
    size: int,
    status: str,
    reason: str,
) -> None:
    since, before = clients.mark(beacon), clients.counters(beacon)
    opts = [*EXPECT, "--data-binary", body_file(tmp_path, b"a" * size)]
    for h in headers:
        opts += ["-H", h]
    r = curl(transfer(beacon.url("/track"), opts=tuple(opts))).check()
    assert r.codes == [status]
    assert r.uploaded == [0], "the body was sent although the headers were refused"
    [answer] = r.responses
    assert answer.headers["connection"] == "close"
    # Refused before its body: not kept as a bad row (README "Bad rows").
    assert clients.delta(beacon, before) == {reason: 1, "connections.total": 1}
    assert clients.stored_since(beacon, since, expect=0) == []


def test_chunked_body(beacon: BeaconServer) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    opts = ("-H", "Transfer-Encoding: chunked", "-H", "Content-Type: text/plain")
    r = curl(transfer(beacon.url("/track"), opts=(*opts, "--data-binary", f"ev=ch&r={run}")))
    assert r.check().codes == ["204"]
    assert clients.stored_since(beacon, since, expect=1) == [{"ev": "ch", "r": run}]


def compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)  # HTTP's "deflate" is the zlib format (RFC 9110 8.4.1.2)
    tool = {"br": "brotli", "zstd": "zstd"}[encoding]
    return subprocess.run([tool, "-c"], input=data, capture_output=True, check=True).stdout


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_form_body_is_decoded(
    beacon: BeaconServer, tmp_path: Path, encoding: str
) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    pairs = [("ev", encoding), ("r", run), ("q", "ελληνικά & 😀")]
    body = body_file(tmp_path, compress(encoding, urlencode(pairs).encode()))
    opts = ("-H", f"Content-Type: {FORM}", "-H", f"Content-Encoding: {encoding}")
    r = curl(transfer(beacon.url("/track"), opts=(*opts, "--data-binary", body))).check()
    assert r.codes == ["204"]
    assert clients.stored_since(beacon, since, expect=1) == [clients.flat(pairs)]


def test_gzipped_json_body_is_decoded(beacon: BeaconServer, tmp_path: Path) -> None:
    run, since = clients.tag(), clients.mark(beacon)
    body = body_file(tmp_path, gzip.compress(f'{{"ev":"gzjson","r":"{run}","n":[1,2]}}'.encode()))
    opts = ("-H", "Content-Type: application/json", "-H", "Content-Encoding: gzip")
    assert curl(
        transfer(beacon.url("/track"), opts=(*opts, "--data-binary", body))
    ).check().codes == ["204"]
    assert clients.stored_since(beacon, since, expect=1) == [
        {"ev": "gzjson", "r": run, "n": [1, 2]}
    ]


@pytest.mark.parametrize("encoding", ["compress", "x-snappy"])
def test_unknown_encoding_is_415_and_not_stored(
    beacon: BeaconServer, tmp_path: Path, encoding: str
) -> None:
    since, before = clients.mark(beacon), clients.counters(beacon)
    opts = ("-H", f"Content-Type: {FORM}", "-H", f"Content-Encoding: {encoding}")
    r = curl(transfer(beacon.url("/track"), opts=(*opts, "--data-binary", "ev=x"))).check()
    assert r.codes == ["415"]
    assert clients.delta(beacon, before) == {
        "unsupported_media_type": 1,
        "bad_rows_kept": 1,
        "connections.total": 1,
    }
    assert clients.stored_since(beacon, since, expect=0) == []
