"""The Python surface of the query encoder: types, limits, errors."""

import json

import pytest

import beacon
from beacon import MalformedQuery, encode_query


def test_returns_compact_json_bytes() -> None:
    out = encode_query(b"a=1&b=2&a=3")
    assert type(out) is bytes
    assert out == b'{"a":["1","3"],"b":"2"}'
    assert encode_query(b"a[b]=1&c", "rack") == b'{"a":{"b":"1"},"c":null}'


def test_default_mode_is_flat() -> None:
    assert encode_query(b"a[]=1;b") == encode_query(b"a[]=1;b", "flat") == b'{"a[]":"1;b"}'


def test_output_is_utf8_json() -> None:
    out = encode_query("é=\u2028&x=%00".encode())
    assert json.loads(out) == {"é": "\u2028", "x": "\x00"}
    assert "é".encode() in out


def test_malformed_query_is_a_value_error_exported_by_beacon() -> None:
    assert issubclass(MalformedQuery, ValueError)
    assert beacon.MalformedQuery is beacon._beacon.MalformedQuery
    assert MalformedQuery.__module__ == "_beacon"


def test_max_bytes() -> None:
    assert encode_query(b"a=12", max_bytes=4) == b'{"a":"12"}'
    with pytest.raises(MalformedQuery, match="query is 5 bytes, limit 4"):
        encode_query(b"a=123", max_bytes=4)
    with pytest.raises(MalformedQuery):
        encode_query(b"a=123", "rack", max_bytes=4)


def test_default_max_bytes_is_8192() -> None:
    encode_query(b"a=" + b"x" * 8190)
    with pytest.raises(MalformedQuery):
        encode_query(b"a=" + b"x" * 8191)


def test_max_params_counts_non_empty_pieces() -> None:
    assert encode_query(b"a&&b&", max_params=2) == b'{"a":"","b":""}'
    for mode in ("flat", "rack"):
        with pytest.raises(MalformedQuery, match="more than 2 parameters"):
            encode_query(b"a&b&c", mode, max_params=2)
    with pytest.raises(MalformedQuery):
        encode_query(b"&".join([b"x"] * 257))
    encode_query(b"&".join([b"x"] * 256))


def test_max_depth_in_rack_mode() -> None:
    assert encode_query(b"a[b][c]=1", "rack", max_depth=3) == b'{"a":{"b":{"c":"1"}}}'
    with pytest.raises(MalformedQuery, match="nesting deeper than 2"):
        encode_query(b"a[b][c]=1", "rack", max_depth=2)
    # Flat mode has no nesting.
    assert encode_query(b"a[b][c]=1", max_depth=1) == b'{"a[b][c]":"1"}'


def test_default_max_depth_is_rack_s_100() -> None:
    encode_query(b"a" + b"[x]" * 99 + b"=1", "rack")
    with pytest.raises(MalformedQuery):
        encode_query(b"a" + b"[x]" * 100 + b"=1", "rack")


def test_rack_content_errors_are_malformed() -> None:
    cases = {
        b"a=%zz": "invalid %-encoding",
        b"a=%ff": "invalid UTF-8",
        b"a=1&a[b]=2": "expected Hash (got String) for param `a'",
    }
    for query, message in cases.items():
        with pytest.raises(MalformedQuery) as info:
            encode_query(query, "rack")
        assert str(info.value) == message


def test_flat_never_fails_on_content() -> None:
    assert encode_query(b"a=%zz&b=%ff") == '{"a":"%zz","b":"\ufffd"}'.encode()


def test_unknown_mode_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError, match="unknown query mode") as info:
        encode_query(b"a=1", "nested")
    assert not isinstance(info.value, MalformedQuery)


def test_limits_are_keyword_only_and_query_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        encode_query(b"a=1", "flat", 10)  # type: ignore[misc]
    with pytest.raises(TypeError):
        encode_query("a=1")  # type: ignore[arg-type]


def test_huge_depth_limit_is_capped_instead_of_overflowing_the_stack() -> None:
    query = b"a" + b"[x]" * 100_000 + b"=1"
    with pytest.raises(MalformedQuery, match="nesting deeper than 1000"):
        encode_query(query, "rack", max_bytes=1 << 20, max_depth=1 << 40)
