"""beacon: a web-analytics beacon ingestion server with a Rust core."""

from beacon._beacon import MalformedQuery, __version__, encode_query

__all__ = ["MalformedQuery", "__version__", "encode_query"]
