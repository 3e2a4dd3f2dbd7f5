"""Config validation details not covered through the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from beacon import Ingest
from beacon._beacon import MAX_FLAVORS
from beacon.config import Config, ConfigError, DebugConfig, parse_config


@pytest.mark.parametrize(
    ("flavor", "message"),
    [
        ({"required_params": ["ev", "ev"]}, "flavors[0].required_params: lists a parameter twice"),
        ({"required_params": [f"p{i}" for i in range(65)]}, "at most 64 parameters"),
        ({"ip": "partial"}, "flavors[0].ip: expected one of off, full, anonymized"),
        ({"allowed_origins": ["shop.example"]}, "flavors[0].allowed_origins"),
        ({"dedup_ttl_s": 0}, "flavors[0].dedup_ttl_s: expected a number > 0"),
        ({"name": "bad name"}, "flavors[0].name: expected a name"),
    ],
)
def test_flavor_errors_name_the_key(flavor: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"flavors": [{"name": "a", **flavor}]})
    assert any(message in p for p in e.value.problems), e.value.problems


def test_duplicate_names_and_hosts() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(
            {
                "flavors": [
                    {"name": "a", "hosts": ["x.example"]},
                    {"name": "a"},
                    {"name": "b", "hosts": ["X.example"]},
                ]
            }
        )
    assert "flavors[1].name: duplicate flavor 'a'" in e.value.problems
    assert "flavors[2].hosts: host 'X.example' already belongs to 'a'" in e.value.problems


def test_at_most_max_flavors_the_per_flavor_accounting_has_room_for() -> None:
    """Each backend keeps per-flavor figures in fixed rows (rust/src/sinks/per_flavor.rs)."""
    flavors = [{"name": f"f{i}", "hosts": [f"f{i}.example"]} for i in range(MAX_FLAVORS + 1)]
    with pytest.raises(ConfigError) as e:
        parse_config({"flavors": flavors})
    expected = f"flavors: at most {MAX_FLAVORS} flavors, got {MAX_FLAVORS + 1}"
    assert e.value.problems == [expected]
    assert len(parse_config({"flavors": flavors[:MAX_FLAVORS]}).flavors) == MAX_FLAVORS


def test_trusted_proxies_and_limits() -> None:
    cfg = parse_config({"trusted_proxies": ["10.0.0.0/8", "::1"], "limits": {"max_body_bytes": 10}})
    assert cfg.trusted_proxies == ("10.0.0.0/8", "::1") and cfg.limits.max_body_bytes == 10
    with pytest.raises(ConfigError) as e:
        parse_config({"trusted_proxies": ["10.0.0.0/33"], "limits": {"idle_timeout_s": -1}})
    assert len(e.value.problems) == 2


def test_the_only_flavor_is_the_default() -> None:
    assert parse_config({"flavors": [{"name": "solo"}]}).default_flavor == "solo"
    assert parse_config({"flavors": [{"name": "a"}, {"name": "b"}]}).default_flavor is None


def test_defaults_are_the_schemas() -> None:
    # An empty file is the dataclasses' own defaults: nothing else supplies one.
    assert parse_config({}) == Config()
    assert Config().limits.max_depth == 100 and Config().flavors[0].dedup_ttl_s == 3600


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"backends": {"file": {"nope": 1}}}, "backends.file.nope: unknown key"),
        ({"limits": 3}, "limits: expected an object, got 3"),
        ({"flavors": "abc"}, "flavors: expected a non-empty list of objects"),
        ({"flavors": [{"hosts": []}]}, "flavors[0].name: required"),
        ({"workers": 4}, "workers: unknown key"),
        ({"spool_dir": 5}, "spool_dir: expected a directory path, got 5"),
        ({"listen": "127.0.0.1:8080", "admin_listen": "127.0.0.1:8080"}, "admin_listen: must"),
    ],
)
def test_problems_name_their_key_path(obj: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(obj)
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_every_problem_is_collected_at_once() -> None:
    bad = {
        "ring_capacity": 0,
        "limits": {"max_body_bytes": "big", "header_timeout_s": 0},
        "flavors": [{"name": "a", "ip": "x"}, {"name": "a", "timezone": "Mars/Base"}],
    }
    with pytest.raises(ConfigError) as e:
        parse_config(bad)
    assert sorted(p.split(":")[0] for p in e.value.problems) == [
        "flavors[0].ip",
        "flavors[1].name",
        "flavors[1].timezone",
        "limits.header_timeout_s",
        "limits.max_body_bytes",
        "ring_capacity",
    ]


def test_the_native_core_reads_the_config_whole(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "paths": ["/b"],
            "limits": {"max_query_bytes": 8},
            "flavors": [{"name": "a", "hosts": ["a.example"]}],
            "default_flavor": None,
        }
    )
    ingest = Ingest(cfg)
    ingest.start()
    assert ingest.handle(b"/b?x=1", b"a.example") == 200
    assert ingest.handle(b"/b?x=123456789", b"a.example") == 414  # limits.max_query_bytes
    assert ingest.handle(b"/track?x=1", b"a.example") == 404  # paths
    assert ingest.handle(b"/b?x=1", b"other.example") == 400  # no default flavor
    ingest.shutdown()


def test_every_restart_only_key_is_found_kept_and_named() -> None:
    from beacon.config.restart import RESTART_KEYS, split_restart

    running = parse_config({"flavors": [{"name": "a"}]})
    changed = parse_config(
        {
            "listen": "127.0.0.1:8081",
            "admin_listen": "127.0.0.1:9091",
            "allow_public_admin": True,
            "data_dir": "other",
            "spool_dir": "spool2",
            "ring_capacity": 1024,
            "backends": {
                "file": {
                    "enabled": False,
                    "flush_interval_ms": 5,
                    "fsync_interval_ms": 7,
                    "spool_high_water_bytes": 1 << 20,
                },
                "kafka": {
                    "enabled": True,
                    "bootstrap_servers": "k:9092",
                    "producer": {"acks": "1"},
                    "spool_high_water_bytes": 1 << 20,
                },
            },
            "debug": {"tracemalloc": True, "enabled": True},
            "bad_rows": {"max_per_s": 5},
            "flavors": [{"name": "a"}, {"name": "b", "hosts": ["b.example"]}],
            "paths": ["/t"],
        }
    )
    kept, named = split_restart(running, changed)
    assert named == list(RESTART_KEYS)
    # The restart-only keys are the running ones; everything else is the new file's.
    assert kept == Config(
        **{
            **changed.__dict__,
            "listen": running.listen,
            "admin_listen": running.admin_listen,
            "allow_public_admin": False,
            "data_dir": running.data_dir,
            "spool_root": None,
            "ring_capacity": running.ring_capacity,
            "backends": running.backends,
            "debug": DebugConfig(enabled=True, tracemalloc=False),
            "bad_rows": running.bad_rows,
        }
    )
    assert split_restart(running, running) == (running, [])


def test_batch_settings() -> None:
    cfg = parse_config({})
    assert (cfg.batch_paths, cfg.limits.max_batch_events) == (("/batch",), 500)
    assert cfg.file.spool_high_water_bytes is None and cfg.kafka.spool_high_water_bytes is None
    cfg = parse_config({"batch_paths": [], "backends": {"file": {"spool_high_water_bytes": 1}}})
    assert (cfg.batch_paths, cfg.file.spool_high_water_bytes) == ((), 1)
    with pytest.raises(ConfigError) as e:
        parse_config(
            {
                "paths": ["/t", "/b"],
                "batch_paths": ["/b"],
                "limits": {"max_batch_events": 0},
                "backends": {"kafka": {"spool_high_water_bytes": -5}},
            }
        )
    assert sorted(e.value.problems) == [
        "backends.kafka.spool_high_water_bytes: expected a positive integer, got -5",
        "limits.max_batch_events: expected a positive integer, got 0",
    ], e.value.problems
    with pytest.raises(ConfigError) as e:
        parse_config({"paths": ["/t", "/b"], "batch_paths": ["/b"]})
    assert e.value.problems == ["batch_paths: '/b' is in paths too: a path is one or the other"]
    with pytest.raises(ConfigError) as e:
        parse_config({"batch_paths": ["batch"]})
    assert "batch_paths: expected absolute paths" in e.value.problems[0]
