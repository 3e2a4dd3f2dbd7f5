"""`flat` mode against an independent Python reference of the WHATWG urlencoded parser."""

import json
import urllib.parse
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from beacon import encode_query
from query_cases import FLAT_CASES

HEX = b"0123456789abcdefABCDEF"


def www_decode(raw: bytes) -> str:
    """WHATWG percent-decode with `+` as space, then UTF-8 decode with replacement."""
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == ord("+"):
            out.append(ord(" "))
        elif byte == ord("%") and i + 2 < len(raw) and raw[i + 1] in HEX and raw[i + 2] in HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 2
        else:
            out.append(byte)
        i += 1
    return out.decode("utf-8", "replace")


def reference_pairs(query: bytes) -> list[tuple[str, str]]:
    """Split on `&` only, drop empty pieces, split on the first `=`."""
    pairs = []
    for piece in query.split(b"&"):
        if piece:
            name, _, value = piece.partition(b"=")
            pairs.append((www_decode(name), www_decode(value)))
    return pairs


def reference_object(query: bytes) -> list[tuple[str, Any]]:
    """The flat object as ordered (key, value) pairs: one value → str, more → list."""
    groups: dict[str, list[str]] = {}
    for name, value in reference_pairs(query):
        groups.setdefault(name, []).append(value)
    return [(k, vs[0] if len(vs) == 1 else vs) for k, vs in groups.items()]


def encoded(query: bytes) -> list[tuple[str, Any]]:
    """Our output parsed with key order kept (a list of pairs, not a dict)."""
    return json.loads(encode_query(query, "flat", max_params=100_000), object_pairs_hook=list)


PIECES = st.sampled_from(
    [
        *(b"&", b"=", b"%", b"+", b"%41", b"%e9", b"%C3%A9", b"%zz", b"%4", b"%%", b"\xff"),
        *(b"\xc3", b"\xa9", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"a", b"b", b"[]"),
        *(b";", b" ", b'"', b"\\", b"%00", b"%0A", b"\x01"),
    ]
)
QUERIES = st.lists(st.one_of(PIECES, st.binary(max_size=3)), max_size=24).map(b"".join)
ASCII_QUERIES = st.lists(
    st.one_of(PIECES.filter(bytes.isascii), st.binary(max_size=3).filter(bytes.isascii)),
    max_size=24,
).map(b"".join)


def test_curated_cases() -> None:
    for query, want in FLAT_CASES:
        assert encode_query(query).decode() == want, query
        assert encoded(query) == json.loads(want, object_pairs_hook=list), query


def test_curated_cases_agree_with_reference() -> None:
    for query, _ in FLAT_CASES:
        assert encoded(query) == reference_object(query), query


@settings(max_examples=1000, deadline=None)
@given(QUERIES)
@example(b"a=%ff%fe&a=\xe2\x82&a")
@example(b"%C3%A9=%C3&%C3%A9=%A9")
def test_matches_reference(query: bytes) -> None:
    assert encoded(query) == reference_object(query)


@settings(max_examples=300, deadline=None)
@given(ASCII_QUERIES)
def test_reference_agrees_with_parse_qsl_on_ascii(query: bytes) -> None:
    # Cross-checks the reference itself; parse_qsl cannot take raw non-ASCII bytes.
    want = urllib.parse.parse_qsl(query.decode("ascii"), keep_blank_values=True, errors="replace")
    assert want == reference_pairs(query)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "a[]", "é"]), max_size=30))
def test_repeated_names_group_in_first_appearance_order(names: list[str]) -> None:
    query = "&".join(f"{n}={i}" for i, n in enumerate(names)).encode()
    got = encoded(query)
    assert [k for k, _ in got] == list(dict.fromkeys(names))
    for key, value in got:
        values = [str(i) for i, n in enumerate(names) if n == key]
        assert value == (values[0] if len(values) == 1 else values)
