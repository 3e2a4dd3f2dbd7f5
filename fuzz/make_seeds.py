"""Writes the committed seed corpus: fuzz/corpus/<target>/seed-<sha1> files from the
curated queries in tests/query_cases.py plus a few hand-picked hostile ones, and for the
body target a few POST bodies in its input layout.
Run from the repository root: python3 fuzz/make_seeds.py"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from query_cases import FLAT_CASES, rack_cases  # noqa: E402

HAND = [
    b"ev=view&id=42&uid=u%2042&eid=1",
    b"ua=Mozilla%2F5.0+%28X11%29&ref=https%3A%2F%2Fa.example%2F%3Fq%3D1%26r%3D2",
    b"a=%0d%0a%22%5c%08%0c%7f%e2%80%a8",
    b"%F0%9F%98%80=%f0%9f%98&%c0%af=%ed%bf%bf",
    b"a=1&" * 40,
    b"a[" * 120 + b"=1",
    b"a" + b"[]" * 40 + b"[x]=1&a[][x]=2",
    b'x={"ev":"v"}&y=[1,2]',
]


def write(target: str, cases: list[bytes]) -> None:
    d = ROOT / "fuzz" / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for case in dict.fromkeys(cases):
        (d / f"seed-{hashlib.sha1(case).hexdigest()[:16]}").write_bytes(case)


flat = [q for q, _ in FLAT_CASES] + HAND
rack = rack_cases() + HAND
write("query_flat", flat + rack)
write("query_rack", rack + flat)


def body_seed(selector: int, ce: bytes, ct: bytes, body: bytes, max_: int = 0xFFFF,
              max_params: int = 16) -> bytes:
    """fuzz/fuzz_targets/body.rs input: selector, limit (u16 LE), max_params, then the
    Content-Encoding and Content-Type lines and the body."""
    return bytes([selector]) + max_.to_bytes(2, "little") + bytes([max_params]) \
        + ce + b"\n" + ct + b"\n" + body


GZIP, DEFLATE, BR, ZSTD, PACK, RAW, FIELDS = 1, 2, 3, 4, 8, 16, 32
CHROMIUM = (
    b"------WebKitFormBoundaryAbC123\r\n"
    b'Content-Disposition: form-data; name="ev"\r\n\r\npageview\r\n'
    b"------WebKitFormBoundaryAbC123\r\n"
    b'Content-Disposition: form-data; name="f"; filename="blob"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n"
    b"------WebKitFormBoundaryAbC123--\r\n"
)
BODY = [
    body_seed(0, b"", b"multipart/form-data; boundary=----WebKitFormBoundaryAbC123", CHROMIUM),
    body_seed(GZIP | PACK, b"gzip", b'multipart/form-data; boundary="a b"',
              b'--a b\r\nContent-Disposition: form-data; name="a[b]"\r\n\r\n1\r\n--a b--'),
    body_seed(DEFLATE | PACK | RAW, b"deflate, identity", b"multipart/form-data; boundary=x",
              b"pre\r\n--x\r\nContent-Disposition: form-data; name=u\r\n\r\n\xce\xba\r\n--x--"),
    body_seed(ZSTD | PACK | FIELDS, b"zstd", b"text/plain",
              b'ev\0view\0uid\x0042\0a"b\\c\0v\r\n--x\0', max_params=4),
    body_seed(BR, b"br", b"application/x-www-form-urlencoded",
              (ROOT / "rust/src/body/testdata/hello.br").read_bytes(), max_=20),
]
write("body", BODY)


def batch_seed(selector: int, body: bytes, max_events: int = 5, max_params: int = 8) -> bytes:
    """fuzz/fuzz_targets/batch.rs input: selector, max_events, max_params, then the body."""
    return bytes([selector, max_events, max_params]) + body


JSON, NDJSON, TEXT, NONE, GZ, REQUIRE, DEDUP, IDS = 0, 1, 2, 3, 4, 8, 16, 32
BATCH = [
    batch_seed(JSON | IDS, b'[{"ev":"view","n":1},{"ev":"click","x":{"y":[1,2]}}]'),
    batch_seed(NDJSON | REQUIRE, b'{"ev":"a"}\r\n\n{"ev":""}\n{"ev":3}\n'),
    batch_seed(TEXT | DEDUP, b'[{"eid":"1"},{"eid":"1"},{"eid":"2"}]'),
    batch_seed(NONE | GZ | IDS, b'{"a":"\\u00e9\\n"}\n{"b":null}'),
    batch_seed(JSON | REQUIRE, b'[{"ev":"v"},[1],{"ev":"w"}]'),
    batch_seed(JSON, b"[{},{},{},{},{},{}]"),
    batch_seed(JSON, b'[{"a":1}] x'),
    batch_seed(NDJSON, b'{"a":1,"b":2,"c":3}\n{"a":', max_params=2),
]
write("batch", BATCH)
