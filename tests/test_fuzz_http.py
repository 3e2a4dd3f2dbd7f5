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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon.http.responses import CONTINUE, H2_REFUSAL, REASONS, TRANSPARENT_GIF
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
# Statuses seen across all examples, printed at the end (pytest -s) to show the reach.
SEEN: Counter[int] = Counter()


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BeaconServer]:
    srv = BeaconServer(Path(tmp_path_factory.mktemp("fuzz-http")), CONFIG).start()
    try:
        yield srv
        print(f"\nfuzzed HTTP statuses: {dict(sorted(SEEN.items()))}")
        errors = stats(srv.admin_port)["requests"]["errors"]
        code = srv.stop()
        assert errors == 0, f"{errors} requests answered 500:\n{srv.log()[-4000:]}"
        assert code == 0, f"exit status {code} on SIGTERM:\n{srv.log()[-4000:]}"
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()


# -- request-shaped byte strings ---------------------------------------------------------

METHODS = [b"GET", b"POST", b"HEAD", b"OPTIONS", b"GET", b"POST", b"PUT", b"DELETE"]
ODD_METHODS = [b"CONNECT", b"PRI", b"get", b"GET\x00"]
PATHS = [b"/track", b"/t", b"/track", b"/", b"/track/", b"/TRACK", b"*", b"http://x/track", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b""]
# Header names with values that make sense for them (and some that are hostile: duplicate
# or conflicting framing, overflowing lengths, upgrades). Now and then a name gets another
# name's value, or random bytes.
HEADERS: dict[bytes, list[bytes]] = {
    b"Host": [b"localhost", b"rack.example", b"RACK.EXAMPLE:8080", b"[::1]:80", b""],
    b"Content-Type": [
        b"application/json",
        b"text/plain; charset=utf-8",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data",
        b"TEXT/PLAIN",
    ],
    b"Content-Length": [b"0", b"5", b"-1", b" 3", b"18446744073709551616", b"9" * 40],
    b"content-length": [b"0", b"1", b"99999999"],
    b"Transfer-Encoding": [b"chunked", b"identity", b"gzip, chunked", b"chunked, identity"],
    b"Connection": [b"close", b"keep-alive", b"upgrade"],
    b"Upgrade": [b"websocket", b"h2c"],
    b"Expect": [b"100-continue"],
    b"Origin": [b"https://shop.example", b"https://evil.example", b"null"],
    b"DNT": [b"1", b"0"],
    b"Sec-GPC": [b"1"],
    b"X-Forwarded-For": [b"10.0.0.1, 203.0.113.9", b"::1", b"garbage, 1.2.3.4"],
    b"User-Agent": [b'Mozilla/5.0 "x"', b"\xff\xfe ua", b"a\x7fb"],
    b"Referer": [b"https://a.example/?q=%ff", b"\xc3("],
}
HEADER_NAMES = list(HEADERS)
# What a clean request may carry: no framing, upgrade or connection games.
SAFE_HEADER_NAMES = [
    n
    for n in HEADER_NAMES
    if n.lower() not in (b"content-length", b"transfer-encoding", b"connection", b"upgrade")
]
ALL_VALUES = [v for vs in HEADERS.values() for v in vs]
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
def targets(draw: st.DrawFn, hostile: bool) -> bytes:
    path = draw(st.sampled_from(PATHS if hostile else [b"/track", b"/t"]))
    if draw(st.booleans()):
        return path
    if hostile and rare(draw):
        return path + b"?x=" + b"a" * draw(st.sampled_from([511, 1600, 70000]))  # 414
    atom = st.sampled_from(QUERY_ATOMS) | st.integers(0, 255).map(lambda b: b"%%%02X" % b)
    if hostile:
        atom = atom | st.binary(max_size=4)
    return path + b"?" + b"".join(draw(st.lists(atom, max_size=12)))


RARELY = [False] * 7 + [True]  # sampled_from shrinks toward the first: toward valid


def rare(draw: st.DrawFn) -> bool:
    """True one time in eight: most of a request stays valid so the fuzzing reaches past
    the parser, and the rest is hostile."""
    return draw(st.sampled_from(RARELY))


@st.composite
def headers(draw: st.DrawFn, hostile: bool) -> tuple[bytes, bytes]:
    if hostile and rare(draw):
        if rare(draw):
            return b"X-Big", b"v" * 2100  # over max_header_bytes: 431
        return draw(st.binary(max_size=12)), draw(st.binary(max_size=24))
    names = HEADER_NAMES if hostile else SAFE_HEADER_NAMES
    name = draw(st.sampled_from(names))
    values = ALL_VALUES if hostile and rare(draw) else HEADERS[name]
    return name, draw(st.sampled_from(values))


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
    """Half are clean requests with random targets, headers and bodies; the other half
    are hostile: now and then a broken method, line, header, framing or line ending."""
    hostile = draw(st.booleans())

    def odd() -> bool:
        return hostile and rare(draw)

    method = draw(
        st.sampled_from(ODD_METHODS) | st.binary(max_size=6) if odd() else st.sampled_from(METHODS)
    )
    sp = draw(st.sampled_from([b"  ", b"\t", b""])) if odd() else b" "
    version = draw(st.sampled_from(VERSIONS)) if odd() else b"HTTP/1.1"
    line = method + sp + draw(targets(hostile)) + b" " + version
    hs = draw(st.lists(headers(hostile), max_size=4))
    if not odd():
        hs.insert(0, (b"Host", draw(st.sampled_from([b"localhost", b"rack.example"]))))
    body = draw(
        st.one_of(
            st.just(b""),
            st.binary(max_size=64),
            st.sampled_from([b"ev=click&eid=2", b'{"ev":"x","eid":3}', b"{", b"[1]", b"a=%"]),
        )
    )
    framings = ["length", "chunked", "none", "both"] if hostile else ["length", "chunked"]
    framing = draw(st.sampled_from(framings))
    if framing in ("length", "both"):
        hs.append((b"Content-Length", b"%d" % len(body)))
    if framing in ("chunked", "both"):
        hs.append((b"Transfer-Encoding", b"chunked"))
        sizes = draw(st.lists(st.integers(1, 16), min_size=1, max_size=4))
        body = chunked(body, sizes)
    eol = draw(st.sampled_from([b"\n", b"\r", b"\r\r\n"])) if odd() else b"\r\n"
    head = line + eol + b"".join(n + b": " + v + eol for n, v in hs) + eol
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
        if raw == H2_REFUSAL:  # the answer to an HTTP/2 preface: SETTINGS + GOAWAY
            SEEN[2] += 1
            break
        if raw.startswith(CONTINUE):  # the interim answer to `Expect: 100-continue`
            raw = raw[len(CONTINUE) :]
            SEEN[100] += 1
            continue
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
        SEEN[status] += 1
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
