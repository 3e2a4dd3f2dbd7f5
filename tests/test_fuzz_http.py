"""A fuzzer for the public HTTP front end over real sockets (hypothesis).

Arbitrary bytes, and byte strings shaped like (pipelined) requests with hostile methods,
targets (random %-escapes, non-UTF-8), headers (duplicate Content-Length, conflicting
Transfer-Encoding, CR/LF in values) and bodies, are split at arbitrary points and sent in
pieces to ONE running server. After every example each response must be well-formed
HTTP/1.1 with a known status and never a 500, and the server must still answer a plain
`GET /track?ok=1` with 200. At the end it must exit 0 on SIGTERM with no request counted
as an error.

`FUZZ_EXAMPLES` raises the number of examples per test (`make fuzz`)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.http.responses import REASONS, TRANSPARENT_GIF
from support.admin import stats
from support.beacon_server import BeaconServer
from support.http_client import get

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CONFIG = {
    "default_flavor": "default",
    "flavors": [
        {"name": "default", "json_bodies": True, "user_agent": True, "referer": True},
        {
            "name": "rack",
            "hosts": ["rack.example"],
            "query_format": "rack",
            "json_bodies": True,
            "honor_dnt": True,
            "ip": "anonymized",
            "required_params": ["ev"],
            "dedup_param": "eid",
            "allowed_origins": ["https://shop.example"],
        },
    ],
    "paths": ["/track", "/t"],
    "limits": {"max_query_bytes": 512, "max_body_bytes": 1024, "max_header_bytes": 2048},
}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BeaconServer]:
    srv = BeaconServer(Path(tmp_path_factory.mktemp("fuzz-http")), CONFIG).start()
    try:
        yield srv
        errors = stats(srv.admin_port)["requests"]["errors"]
        code = srv.stop()
        assert errors == 0, f"{errors} requests answered 500:\n{srv.log()[-4000:]}"
        assert code == 0, f"exit status {code} on SIGTERM:\n{srv.log()[-4000:]}"
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()


# -- request-shaped byte strings ---------------------------------------------------------

METHODS = [b"GET", b"HEAD", b"POST", b"OPTIONS", b"PUT", b"DELETE", b"CONNECT", b"PRI", b"get"]
PATHS = [b"/track", b"/t", b"/", b"/track/", b"/TRACK", b"*", b"http://x/track", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b""]
HEADER_NAMES = [
    b"Host",
    b"Content-Length",
    b"content-length",
    b"Transfer-Encoding",
    b"Content-Type",
    b"Connection",
    b"Origin",
    b"DNT",
    b"Sec-GPC",
    b"X-Forwarded-For",
    b"User-Agent",
    b"Referer",
    b"Expect",
    b"Upgrade",
]
HEADER_VALUES = [
    b"localhost",
    b"rack.example",
    b"rack.example:8080",
    b"chunked",
    b"identity",
    b"gzip, chunked",
    b"chunked, identity",
    b"0",
    b"5",
    b"-1",
    b"18446744073709551616",
    b"9" * 40,
    b" 3",
    b"close",
    b"keep-alive",
    b"upgrade",
    b"websocket",
    b"1",
    b"100-continue",
    b"https://shop.example",
    b"application/json",
    b"text/plain; charset=utf-8",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data",
    b"10.0.0.1, 203.0.113.9",
]
QUERY_ATOMS = [
    b"ev=view",
    b"eid=1",
    b"a[b]=1",
    b"a[]=2",
    b"a[][x]=3",
    b"a[" * 40 + b"=1",
    b"&",
    b";",
    b"=",
    b"+",
    b"%",
    b"%4",
    b"%zz",
    b"%00",
    b"%0a",
    b"%22",
    b"%5C",
    b"%ff",
    b"%C3%A9",
    b"%ed%a0%80",
    b"\xff",
    b"\xc3",
    b"\x7f",
    b"#frag",
    b"?",
    b"\\u0000",
]


@st.composite
def targets(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(PATHS))
    if draw(st.booleans()):
        return path
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(QUERY_ATOMS),
                st.binary(max_size=8),
                st.integers(0, 255).map(lambda b: b"%%%02X" % b),
            ),
            max_size=12,
        )
    )
    return path + b"?" + b"".join(pieces)


header_names = st.one_of(st.sampled_from(HEADER_NAMES), st.binary(min_size=0, max_size=12))
header_values = st.one_of(st.sampled_from(HEADER_VALUES), st.binary(max_size=24))


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, i = b"", 0
    for n in sizes:
        if i >= len(body):
            break
        part, i = body[i : i + n], i + n
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.one_of(st.sampled_from(METHODS), st.binary(max_size=6)))
    sp = draw(st.sampled_from([b" ", b"  ", b"\t"])) if draw(st.integers(0, 9)) == 0 else b" "
    line = method + sp + draw(targets()) + b" " + draw(st.sampled_from(VERSIONS))
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=8))
    if draw(st.booleans()):
        headers.insert(0, (b"Host", draw(st.sampled_from([b"localhost", b"rack.example"]))))
    body = draw(
        st.one_of(
            st.just(b""),
            st.binary(max_size=64),
            st.sampled_from([b"ev=click&eid=2", b'{"ev":"x","eid":3}', b"{", b"[1]", b"a=%"]),
        )
    )
    framing = draw(st.sampled_from(["length", "chunked", "none", "both"]))
    if framing in ("length", "both"):
        headers.append((b"Content-Length", b"%d" % len(body)))
    if framing in ("chunked", "both"):
        headers.append((b"Transfer-Encoding", b"chunked"))
        sizes = draw(st.lists(st.integers(1, 16), min_size=1, max_size=4))
        body = chunked(body, sizes)
    eol = b"\r\n" if draw(st.integers(0, 9)) else draw(st.sampled_from([b"\n", b"\r", b"\r\r\n"]))
    head = line + eol + b"".join(n + b": " + v + eol for n, v in headers) + eol
    return head + body


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in [*points, len(data)]:
        if p > last:
            pieces.append(data[last:p])
            last = p
    return pieces


# -- checking what comes back ------------------------------------------------------------


def exchange(port: int, pieces: list[bytes], pause: bool) -> bytes:
    """Sends the pieces (each its own segment, optionally with a pause so each is its own
    read), half-closes and returns everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                s.sendall(piece)
                if pause:
                    time.sleep(0.001)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused and closed mid-request (EPIPE, ECONNRESET, ENOTCONN)
        out = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(f"server neither answered nor closed: {out!r}") from None
            if not chunk:
                break
            out += chunk
        return out


def check_responses(raw: bytes) -> list[int]:
    """Parses a stream of responses; each must be well-formed HTTP/1.1, a known status."""
    statuses = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"truncated response head: {raw!r}"
        lines = head.split(b"\r\n")
        version, _, tail = lines[0].partition(b" ")
        code, _, reason = tail.partition(b" ")
        assert version == b"HTTP/1.1", lines[0]
        status = int(code)
        assert status in REASONS, lines[0]
        assert reason.decode() == REASONS[status], lines[0]
        headers: dict[bytes, bytes] = {}
        for ln in lines[1:]:
            name, colon, value = ln.partition(b":")
            assert colon and name and name == name.strip(), f"bad header line {ln!r}"
            assert name.lower() not in headers, f"duplicate header {ln!r}"
            headers[name.lower()] = value.strip()
        assert b"date" in headers and headers[b"server"] == b"beacon", head
        body = TRANSPARENT_GIF if status == 200 else b"%d %s\n" % (status, REASONS[status].encode())
        if status == 204:
            assert b"content-length" not in headers, head
        else:
            assert headers[b"content-length"] == b"%d" % len(body), head
            if rest.startswith(body):
                rest = rest[len(body) :]
            else:  # a HEAD answer: no body, so the next thing is another response or EOF
                assert not rest or rest.startswith(b"HTTP/1.1 "), f"bad body: {rest!r}"
        assert status != 500, f"a 500 for fuzzed input: {head!r}"
        statuses.append(status)
        raw = rest
    return statuses


def still_serving(srv: BeaconServer) -> None:
    assert srv.proc is not None and srv.proc.poll() is None, srv.log()[-4000:]
    r = get(srv.port, "/track?ok=1")
    assert r.status == 200 and r.body == TRANSPARENT_GIF


def run_example(srv: BeaconServer, data: bytes, cuts: list[int], pause: bool) -> None:
    check_responses(exchange(srv.port, split(data, cuts), pause))
    still_serving(srv)


cut_points = st.lists(st.integers(0, 1 << 16), max_size=8)


@FUZZ
@given(data=st.binary(max_size=1024), cuts=cut_points, pause=st.booleans())
def test_arbitrary_bytes(
    fuzz_server: BeaconServer, data: bytes, cuts: list[int], pause: bool
) -> None:
    run_example(fuzz_server, data, cuts, pause)


@FUZZ
@given(
    reqs=st.lists(requests(), min_size=1, max_size=4),
    junk=st.binary(max_size=16),
    cuts=cut_points,
    pause=st.booleans(),
)
def test_request_shaped_bytes(
    fuzz_server: BeaconServer, reqs: list[bytes], junk: bytes, cuts: list[int], pause: bool
) -> None:
    run_example(fuzz_server, b"".join(reqs) + junk, cuts, pause)


@FUZZ
@given(cuts=cut_points)
def test_valid_requests_split_anywhere_get_one_answer_each(
    fuzz_server: BeaconServer, cuts: list[int]
) -> None:
    """Two well-formed pipelined GETs, split anywhere: exactly two 200s."""
    target = b"/track?ev=split&x=%C3%A9"
    one = b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: f\r\n\r\n"
    statuses = check_responses(exchange(fuzz_server.port, split(one + one, cuts), True))
    assert statuses == [200, 200]
