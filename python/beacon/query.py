"""`encode_query`: a query string to its JSON object, with the config's limits by default."""

from __future__ import annotations

from beacon import _beacon
from beacon.config import LimitsConfig

_LIMITS = LimitsConfig()


def encode_query(
    query: bytes,
    mode: str = "flat",
    *,
    max_bytes: int = _LIMITS.max_query_bytes,
    max_params: int = _LIMITS.max_params,
    max_depth: int = _LIMITS.max_depth,
) -> bytes:
    """The compact JSON object for `query` in `mode` ("flat" or "rack").

    Raises MalformedQuery for malformed input, ValueError for an unknown mode."""
    return _beacon.encode_query(query, mode, max_bytes, max_params, max_depth)
