"""The tables the protocol reads a request with: which headers `Ingest` reads (their slots
in `TrackProtocol._h`, and how a header name finds its slot), the method codes of
`Ingest.request` and the layout of its answer code, built once from the extension's own
lists."""

from __future__ import annotations

from beacon._beacon import CODE_CORS, CODE_PREFLIGHT, HEADER_NAMES, METHODS

# Slots of `TrackProtocol._h`: the headers `Ingest` reads, in its order.
NAMES = {name.encode(): slot for slot, name in enumerate(HEADER_NAMES)}
H_ORIGIN = HEADER_NAMES.index("Origin")
H_CLEN = HEADER_NAMES.index("Content-Length")
H_EXPECT = HEADER_NAMES.index("Expect")
# Canonical spellings hit on the first lookup; other casings are lowered only when the
# length could match, so unrelated headers cost one dict miss.
WANTED = {**NAMES, **{k.lower(): v for k, v in NAMES.items()}}
WANTED_LENGTHS = frozenset(len(k) for k in NAMES)
NO_HEADERS: list[bytes | None] = [None] * len(NAMES)

# `Ingest.request` method codes; anything else is `len(METHODS)` (405).
METHOD_CODES = {m.encode(): code for code, m in enumerate(METHODS)}
OTHER_METHOD = len(METHODS)
POST = METHODS.index("POST")

# A code's status and flags; above them `request_raw` says where the Origin is.
CODE_BITS = (1 << 20) - 1
# Flags whose answer echoes the request's Origin.
ECHO = CODE_CORS | CODE_PREFLIGHT
