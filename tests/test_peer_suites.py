"""Other projects' own test cases, stored as data in tests/peer_suites/ (its README says
where each came from): WPT's urlencoded parser tests against `flat`, Rack 2.2's
`parse_nested_query` tests against `rack`, all with beacon's default limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from beacon import MalformedQuery, encode_query

SUITES = Path(__file__).parent / "peer_suites"


def cases(name: str) -> list[Any]:
    lines = (SUITES / name).read_text(encoding="utf-8").splitlines()
    found = [json.loads(line) for line in lines if line.strip()]
    return [pytest.param(c, id=f"{i}:{c['input'][:40]}") for i, c in enumerate(found)]


def flat_object(pairs: list[list[str]]) -> dict[str, Any]:
    """The project's rule: a name seen once is a string, seen again an array."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name not in out:
            out[name] = value
        elif isinstance(out[name], list):
            out[name].append(value)
        else:
            out[name] = [out[name], value]
    return out


@pytest.mark.parametrize("case", cases("wpt-urlencoded.jsonl"))
def test_wpt_urlencoded(case: dict[str, Any]) -> None:
    got = json.loads(encode_query(case["input"].encode("utf-8"), "flat"))
    expected = flat_object(case["pairs"])
    assert got == expected
    assert list(got) == list(expected)  # first-appearance order


# Rows marked "skip" test a non-default parser (a custom params class, the POST-only
# separator): the suite's README lists why; they are not cases of the default parser.
@pytest.mark.parametrize(
    "case", [c for c in cases("rack-2.2-parse-nested-query.jsonl") if "skip" not in c.values[0]]
)
def test_rack_parse_nested_query(case: dict[str, Any]) -> None:
    query = case["input"].encode("utf-8")
    if "error" in case:
        with pytest.raises(MalformedQuery):
            encode_query(query, "rack")
        return
    got = encode_query(query, "rack")
    assert got == json.dumps(case["expect"], separators=(",", ":"), ensure_ascii=False).encode()
