"""Micro-benchmarks: `beacon.encode_query` against the pure-Python equivalent.

Run with `make bench`; each benchmark records in extra_info that both sides agreed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from beacon import encode_query
from pure_python import encode_query_flat

PAGEVIEW = b"ev=pageview&id=42&uid=u-1234"
REALISTIC = (
    b"ev=pageview&uid=7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10&sid=9a8b7c6d&ts=1795508102123"
    b"&url=https%3A%2F%2Fwww.example.gr%2Fsearch%3Fq%3Dlaptop%2B15%26page%3D2%26sort%3Dprice"
    b"&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dfthina%2Blaptop&vw=1920&vh=1080"
    b"&lang=el-GR&tz=Europe%2FAthens&cat=computers&price=749.90&pos=3"
)
LARGE = b"&".join(b"p%d=%s" % (i, b"value%20" * 4) for i in range(60))[:2048]
QUERIES = {"pageview": PAGEVIEW, "realistic_300b": REALISTIC, "large_2kb": LARGE}


def run(benchmark: Any, fn: Callable[[bytes], bytes], query: bytes) -> None:
    result = benchmark(fn, query)
    rust = json.loads(encode_query(query, "flat", max_params=1000))
    benchmark.extra_info["same_result"] = json.loads(result) == rust
    assert benchmark.extra_info["same_result"]


@pytest.mark.parametrize("name", QUERIES)
def test_flat_rust(benchmark: Any, name: str) -> None:
    run(benchmark, lambda q: encode_query(q, "flat", max_params=1000), QUERIES[name])


@pytest.mark.parametrize("name", QUERIES)
def test_flat_pure_python(benchmark: Any, name: str) -> None:
    run(benchmark, encode_query_flat, QUERIES[name])


@pytest.mark.parametrize("name", QUERIES)
def test_rack_rust(benchmark: Any, name: str) -> None:
    benchmark(encode_query, QUERIES[name], "rack", max_params=1000)
