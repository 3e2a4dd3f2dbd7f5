"""beacon: a web-analytics beacon ingestion server with a Rust core."""

from beacon._beacon import Ingest, MalformedQuery, TtlStore, __version__, encode_query

__all__ = ["Ingest", "MalformedQuery", "TtlStore", "__version__", "encode_query"]
