"""Config validation details not covered through the CLI tests."""

from __future__ import annotations

import pytest

from beacon.config import ConfigError, parse_config


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


def test_trusted_proxies_and_limits() -> None:
    cfg = parse_config({"trusted_proxies": ["10.0.0.0/8", "::1"], "limits": {"max_body_bytes": 10}})
    assert cfg.trusted_proxies == ("10.0.0.0/8", "::1") and cfg.limits.max_body_bytes == 10
    with pytest.raises(ConfigError) as e:
        parse_config({"trusted_proxies": ["10.0.0.0/33"], "limits": {"idle_timeout_s": -1}})
    assert len(e.value.problems) == 2


def test_the_only_flavor_is_the_default() -> None:
    assert parse_config({"flavors": [{"name": "solo"}]}).default_flavor == "solo"
    assert parse_config({"flavors": [{"name": "a"}, {"name": "b"}]}).default_flavor is None
