"""Builds the native request path (`_beacon.Ingest`) from a validated config."""

from __future__ import annotations

from beacon._beacon import Ingest
from beacon.config import Config


def build_ingest(cfg: Config) -> Ingest:
    ingest = Ingest(
        paths=list(cfg.paths),
        max_bytes=cfg.limits.max_query_bytes,
        max_params=cfg.limits.max_params,
        max_depth=cfg.limits.max_depth,
        max_body_bytes=cfg.limits.max_body_bytes,
        ring_capacity=cfg.ring_capacity,
    )
    for f in cfg.flavors:
        ingest.add_flavor(
            f.name,
            hosts=list(f.hosts),
            timezone=f.timezone,
            query_format=f.query_format,
            required_params=list(f.required_params),
            key_param=f.kafka_key_param,
            ip=f.ip,
            user_agent=f.user_agent,
            referer=f.referer,
            honor_dnt=f.honor_dnt,
            json_bodies=f.json_bodies,
            dedup_param=f.dedup_param,
            dedup_ttl_s=f.dedup_ttl_s,
            dedup_max_entries=f.dedup_max_entries,
            allowed_origins=list(f.allowed_origins),
        )
    ingest.set_default_flavor(cfg.default_flavor)
    ingest.set_trusted_proxies(list(cfg.trusted_proxies))
    if cfg.file.enabled:
        ingest.enable_file_backend(
            data_dir=cfg.data_dir,
            spool_dir=cfg.spool_dir / "file",
            flush_interval_ms=cfg.file.flush_interval_ms,
            fsync_interval_ms=cfg.file.fsync_interval_ms,
            file_suffix=cfg.file_suffix,
        )
    if cfg.kafka.enabled:
        ingest.enable_kafka_backend(spool_dir=cfg.spool_dir / "kafka")
    return ingest
