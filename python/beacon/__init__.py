"""beacon: a web-analytics beacon ingestion server with a Rust core."""

from beacon._beacon import Ingest, MalformedQuery, __version__, encode_query

__all__ = ["Ingest", "MalformedQuery", "__version__", "encode_query"]
