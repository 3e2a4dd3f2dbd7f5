"""The fast path (a read that is one whole request: headers read by Rust from its bytes)
and the full path (httptools' header callbacks) answer and store exactly the same, for
requests of every shape the two can disagree on: header case and repeats, whitespace,
bodies, CORS, HEAD, refusals, absolute-form targets. In-process: two TrackProtocols, one
with its fast parser switched off, fed the same bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beacon._beacon import Ingest
from beacon.config import parse_config
from beacon.http.protocol import TrackProtocol
from beacon.http.responses import ResponseTable
from beacon.state import ServerState

ORIGIN = "https://shop.example"


class Transport:
    def __init__(self) -> None:
        self.out = b""

    def write(self, data: bytes) -> None:
        self.out += data

    def get_extra_info(self, name: str) -> Any:
        return ("10.1.2.3", 5555)

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _ingest(tmp: Path) -> Ingest:
    cfg = parse_config(
        {
            "data_dir": str(tmp),
            "default_flavor": None,
            "flavors": [
                {
                    "name": "shop",
                    "hosts": ["t.shop.example"],
                    "allowed_origins": [ORIGIN],
                    "json_bodies": True,
                    "ip": "full",
                    "user_agent": True,
                    "referer": True,
                    "honor_dnt": True,
                }
            ],
            "trusted_proxies": ["10.0.0.0/8"],
        }
    )
    ingest = Ingest(cfg)
    ingest.start()
    ingest.set_clock(1_795_508_102_123)
    return ingest


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ingest, Ingest]]:
    a, b = _ingest(tmp_path_factory.mktemp("fast")), _ingest(tmp_path_factory.mktemp("full"))
    yield a, b
    a.shutdown()
    b.shutdown()


def answer(ingest: Ingest, data: bytes, fast: bool) -> tuple[bytes, bool]:
    """The bytes answered to `data` on a fresh connection, and whether the fast path did."""
    proto = TrackProtocol(ServerState(ingest_cfg(ingest), ingest), ResponseTable())
    if not fast:
        proto._fast = None
    t = Transport()
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(data)
    took_fast = fast and proto._fast is not None
    # Dates and request ids differ between answers by design.
    out = re.sub(rb"Date: [^\r]*|X-Request-Id: [0-9a-f]*", b"", t.out)
    return out, took_fast


_CFGS: dict[int, Any] = {}


def ingest_cfg(ingest: Ingest) -> Any:
    return _CFGS.setdefault(id(ingest), parse_config({"flavors": [{"name": "shop"}]}))


NAMES = [
    "Host",
    "host",
    "HOST",
    "Origin",
    "User-Agent",
    "Referer",
    "DNT",
    "Sec-GPC",
    "X-Forwarded-For",
    "Content-Type",
    "Content-Encoding",
    "Accept",
    "Cookie",
    "X-Other",
]
VALUES = [
    "t.shop.example",
    "T.SHOP.EXAMPLE:8080",
    "other.example",
    ORIGIN,
    "https://evil.x",
    "1",
    "0",
    "text/plain",
    "application/json",
    "image/png",
    "gzip",
    "identity",
    "10.9.9.9, 203.0.113.7",
    'Mozilla/5.0 "q"',
    "a=1; b=2",
    "",
]
header = st.tuples(
    st.sampled_from(NAMES), st.sampled_from(VALUES), st.sampled_from(["", " ", "\t"])
)
target = st.sampled_from(
    [
        "/track?a=1",
        "/track?a=%C3%A9&a=2&b",
        "/track",
        "/nope?x=1",
        "http://t.shop.example/track?abs=1",
        "/track?" + "x" * 9000,
    ]
)
body = st.sampled_from([b"", b"ev=1&b=%20", b'{"j":1}', b"{", b"\x00\xff"])
method = st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "PUT"])


def build(m: str, t: str, headers: list[tuple[str, str, str]], b: bytes, v: str) -> bytes:
    lines = [f"{m} {t} {v}"]
    lines += [f"{n}:{ws}{val}{ws}" for n, val, ws in headers if n.lower() != "content-length"]
    if m == "POST" or b:
        lines.append(f"Content-Length: {len(b)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + b


@settings(max_examples=400, deadline=None)
@given(
    method,
    target,
    st.lists(header, max_size=8),
    body,
    st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
)
def test_fast_and_full_paths_agree(
    pair: tuple[Ingest, Ingest],
    m: str,
    t: str,
    headers: list[tuple[str, str, str]],
    b: bytes,
    v: str,
) -> None:
    data = build(m, t, headers, b, v)
    fast, full = pair
    before = counts(fast), counts(full)
    got, _ = answer(fast, data, fast=True)
    want, _ = answer(full, data, fast=False)
    assert got == want, data
    # Counted alike too: the same outcome for this request.
    assert delta(counts(fast), before[0]) == delta(counts(full), before[1])


def counts(ingest: Ingest) -> dict[str, int]:
    s = ingest.stats()
    return {
        f"{f}.{k}": n
        for f, row in [*s["flavors"].items(), ("-", s["no_flavor"])]
        for k, n in row.items()
    }


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before[k] for k, n in after.items() if n != before[k]}


def test_the_fast_path_is_taken_for_a_browser_request(pair: tuple[Ingest, Ingest]) -> None:
    data = build(
        "GET",
        "/track?a=1",
        [("Host", "t.shop.example", ""), ("Cookie", "x=1", "")],
        b"",
        "HTTP/1.1",
    )
    _, took_fast = answer(pair[0], data, fast=True)
    assert took_fast
    # Two requests in one read (pipelining) go through the full parser.
    _, took_fast = answer(pair[0], data + data, fast=True)
    assert not took_fast
