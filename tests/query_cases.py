"""Curated query strings shared by the query-encoder tests."""

import itertools

# (query, expected flat JSON) written by hand from the WHATWG rules in README.md
# ("Query string to JSON").
FLAT_CASES: list[tuple[bytes, str]] = [
    (b"", "{}"),
    (b"&&", "{}"),
    (b"a=1", '{"a":"1"}'),
    (b"a=1&b=2&a=3", '{"a":["1","3"],"b":"2"}'),
    (b"a=1;b=2", '{"a":"1;b=2"}'),
    (b"&a=1&&b=2&", '{"a":"1","b":"2"}'),
    (b"a", '{"a":""}'),
    (b"a=", '{"a":""}'),
    (b"=", '{"":""}'),
    (b"=x", '{"":"x"}'),
    (b"a=b=c", '{"a":"b=c"}'),
    (b"a+b=c+d", '{"a b":"c d"}'),
    (b"a=%2B%20%2b", '{"a":"+ +"}'),
    (b"a=%", '{"a":"%"}'),
    (b"a=%4", '{"a":"%4"}'),
    (b"a=%zz", '{"a":"%zz"}'),
    (b"a=%%41", '{"a":"%A"}'),
    (b"a=%C3%A9", '{"a":"\u00e9"}'),
    (b"a=\xc3\xa9", '{"a":"\u00e9"}'),
    (b"a=%ff", '{"a":"\ufffd"}'),
    (b"a=\xff\xfe", '{"a":"\ufffd\ufffd"}'),
    (b"a=%e2%82", '{"a":"\ufffd"}'),
    (b"a=%ed%a0%80", '{"a":"\ufffd\ufffd\ufffd"}'),
    (b"a[b]=1&a[]=2&a[]=3", '{"a[b]":"1","a[]":["2","3"]}'),
    (b"q=%22%5C%0A%00", '{"q":"\\"\\\\\\n\\u0000"}'),
    (b"x&x&x", '{"x":["","",""]}'),
    (b"b=1&a=2&b=3&c=4&a=5", '{"b":["1","3"],"a":["2","5"],"c":"4"}'),
]

# Names that exercise every branch and quirk of Rack's normalize_params.
RACK_NAMES: list[str] = [
    "a",
    "b",
    "a[]",
    "a[b]",
    "a[c]",
    "a[][b]",
    "a[][c]",
    "a[b][]",
    "a[b][c]",
    "a[][b][c]",
    "a[][b][]",
    "a]",
    "[a]",
    "a[",
    "a[b",
    "a[]b",
    "a[b]c",
    "[]",
    "[",
    "]",
    "",
    "a[[]]",
    "a[][]",
    "a[]]",
    "a[%0A[]b]",
    "a%5Bb%5D",
    "a+b",
    "%61",
]

# Hand-written cases: separators, escapes, encodings, conflicts.
RACK_HAND: list[bytes] = [
    b"",
    b"a=1;b=2",
    b"a=1& b=2",
    b"a=1;  b=2",
    b"a=1 &b=2",
    b" a=1",
    b"a=1&;& ;b",
    b"a&b=&c",
    b"a=1&a=2",
    b"a=%",
    b"a=%4",
    b"a=%zz",
    b"%=1",
    b"=%",
    b"a=%41%42",
    b"a=%C3%A9",
    b"a=\xc3\xa9",
    b"a=%ff",
    b"a=\xff",
    b"a=%ff&a=1",
    b"%ff=1",
    b"\xff=1",
    b"[%ff]=1",
    b"=%ff",
    b"a[b]=1&a=2",
    b"a=1&a[b]=2",
    b"a[]=1&a[b]=2",
    b"a[b]=1&a[]=2",
    b"a=1&a[][b]=2",
    b"a[][b]=1&a[][b]=2&a[][c]=3",
    b"a[][b][c]=1&a[][b][d]=2&a[][b][c]=3",
    b"a[][b][]=1&a[][b][]=2",
    b"a[]=1&a[][b]=2",
    b"a[][b]=1&a[]=2&a[][c]=3",
    b"a&a[]=1",
    b"a&a[b]=1",
    b"a[b]&a[b][c]=1",
    b"a[b]=x&a[b][c]=1",
    b"a[%0A]=1",
    b"a[]%0A[]=1",
    b"a[%0A[][b]=1",
    b"a[b]%0A[]c=1",
    b"a[]%0A=1",
    b"x=" + b"%0A" * 3,
    b"a" + b"[x]" * 99 + b"=1",
    b"a" + b"[x]" * 100 + b"=1",
    b"a" + b"[]" * 99 + b"=1",
    b"a" + b"[]" * 100 + b"=1",
    b"a" + b"[][x]" * 60 + b"=1",
    b"q=%22%5C%0A%00%1f",
]


def rack_cases() -> list[bytes]:
    """Every pair of RACK_NAMES (with and without values) plus the hand-written cases."""
    cases = list(RACK_HAND)
    for n1, n2 in itertools.product(RACK_NAMES, repeat=2):
        cases.append(f"{n1}=1&{n2}=2".encode())
    cases.extend(f"{n}&{n}=x".encode() for n in RACK_NAMES)
    cases.extend(f"{n}=x;{n}".encode() for n in RACK_NAMES)
    return cases
