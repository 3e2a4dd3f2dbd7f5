"""Writes the committed seed corpus: fuzz/corpus/<target>/seed-<sha1> files from the
curated queries in tests/query_cases.py plus a few hand-picked hostile ones.
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
