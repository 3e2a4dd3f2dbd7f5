"""`rack` mode, differentially against the real Rack 2.2 (Debian's ruby-rack).

Ruby runs once per batch (tests/rack_reference.rb); a missing ruby or rack makes these tests
fail, never skip, because then rack mode would be untested.
"""

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beacon import MalformedQuery, encode_query
from query_cases import rack_cases

REFERENCE = Path(__file__).with_name("rack_reference.rb")
LIMITS = {"max_bytes": 1 << 20, "max_params": 1_000_000, "max_depth": 100}

# Rack's exception (or the reference's "invalid_utf8") → the start of our message.
ERROR_KINDS = {
    "Rack::QueryParser::InvalidParameterError": ("invalid %-encoding", "invalid UTF-8"),
    "Rack::QueryParser::ParameterTypeError": ("expected ",),
    "Rack::QueryParser::QueryLimitError": ("nesting deeper than 100",),
    "invalid_utf8": ("invalid UTF-8",),
}


def rack_reference(queries: list[bytes]) -> list[dict[str, Any]]:
    """Rack's verdict on every query, in one ruby process."""
    stdin = "".join(q.hex() + "\n" for q in queries)
    proc = subprocess.run(
        ["ruby", str(REFERENCE)], input=stdin, capture_output=True, text=True, check=True
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == len(queries), proc.stderr
    return [json.loads(line, object_pairs_hook=list) for line in lines]


def ours(query: bytes) -> dict[str, Any]:
    """Our verdict in the reference's shape, objects as ordered pair lists."""
    try:
        out = encode_query(query, "rack", **LIMITS)
    except MalformedQuery as e:
        return {"error": str(e)}
    return {"ok": json.loads(out, object_pairs_hook=list)}


def mismatch(query: bytes, want: list[tuple[str, Any]]) -> str | None:
    """Why our verdict on `query` differs from Rack's, or None."""
    ref = dict(want)
    got = ours(query)
    if "ok" in ref:
        return None if got == {"ok": ref["ok"]} else f"{query!r}: rack {ref} ours {got}"
    if "ok" in got:
        return f"{query!r}: rack raised {ref} but ours gave {got}"
    if ref["error"] == "Rack::QueryParser::ParameterTypeError" and got["error"] != ref["message"]:
        return f"{query!r}: message {got['error']!r} != {ref['message']!r}"
    kinds = ERROR_KINDS.get(ref["error"], ())
    if not got["error"].startswith(kinds):
        return f"{query!r}: rack {ref['error']} but ours {got['error']!r}"
    return None


def assert_agree(queries: list[bytes]) -> None:
    refs = rack_reference(queries)
    problems = [m for q, r in zip(queries, refs, strict=True) if (m := mismatch(q, r))]
    assert not problems, f"{len(problems)} of {len(queries)} differ:\n" + "\n".join(problems[:20])


def test_reference_is_rack_2_2() -> None:
    proc = subprocess.run(
        ["ruby", "-e", "require 'rack'; print Rack.release"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.startswith("2.2."), proc.stdout


def test_curated_cases_agree_with_rack() -> None:
    cases = rack_cases()
    assert len(cases) > 300
    assert_agree(cases)


ALPHABET = [b"[", b"]", b"[]", b"=", b"&", b";", b"; ", b"& ", b" ", b"+", b"%5B", b"%5D"]
ALPHABET += [b"%0A", b"%3D", b"%26", b"%C3%A9", b"\xc3\xa9"]
ALPHABET += [b"a", b"b", b"c", b"0", b"f", b"F", b"9", b"x", b"\n", b'"', b"\\"]
# Broken escapes and invalid UTF-8 fail the whole query: drawn rarely, most queries stay valid.
TOKENS = [*ALPHABET * 10, b"%", b"%2", b"%g0", b"%ff", b"\xff", b"\xe2\x82"]


def random_query(rng: random.Random) -> bytes:
    return b"".join(rng.choice(TOKENS) for _ in range(rng.randrange(0, 24)))


def random_structured(rng: random.Random) -> bytes:
    """Pairs of bracketed names, which reach deeper into normalize_params than noise."""
    parts = []
    for _ in range(rng.randrange(1, 6)):
        name = rng.choice(["a", "b", "", "[a]", "a]"])
        for _ in range(rng.randrange(0, 4)):
            name += rng.choice(["[]", "[b]", "[c]", "[", "]", "[]]", "[%0A[]b]", "x"])
        value = rng.choice(["", "=1", "=2", "=a+b", "=%C3%A9", "=3", "=", "=%ff", "=%"])
        parts.append(name + value)
    return rng.choice(["&", ";", "& "]).join(parts).encode()


def test_random_queries_agree_with_rack() -> None:
    rng = random.Random(2024)
    queries = [random_query(rng) for _ in range(400)]
    queries += [random_structured(rng) for _ in range(400)]
    assert_agree(queries)


QUERY = st.lists(st.sampled_from(TOKENS) | st.binary(max_size=2), max_size=24).map(b"".join)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(QUERY, min_size=50, max_size=50))
def test_hypothesis_queries_agree_with_rack(queries: list[bytes]) -> None:
    assert_agree(queries)
