"""What you would write by hand in Python: the same flat semantics as beacon's Rust
encoder (WHATWG urlencoded, repeated names to arrays), with the stdlib."""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes


def _decode(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")


def encode_query_flat(query: bytes) -> bytes:
    out: dict[str, str | list[str]] = {}
    for piece in query.split(b"&"):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        k, v = _decode(name), _decode(value)
        old = out.get(k)
        if old is None:
            out[k] = v
        elif isinstance(old, list):
            old.append(v)
        else:
            out[k] = [old, v]
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
