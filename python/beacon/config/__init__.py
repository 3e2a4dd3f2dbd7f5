"""The config: its schema (`schema.py`, every default on its field), the checked value
types (`checks.py`), reading a file (`load.py`), where the running config comes from
(`source.py`) and what a reload cannot change (`restart.py`)."""

from beacon.config.checks import Address
from beacon.config.load import ConfigError, load_config, parse_config, with_overrides
from beacon.config.schema import (
    BackendsConfig,
    Config,
    DebugConfig,
    FileBackendConfig,
    FlavorConfig,
    KafkaBackendConfig,
    LimitsConfig,
    ShutdownConfig,
)

__all__ = [
    "Address",
    "BackendsConfig",
    "Config",
    "ConfigError",
    "DebugConfig",
    "FileBackendConfig",
    "FlavorConfig",
    "KafkaBackendConfig",
    "LimitsConfig",
    "ShutdownConfig",
    "load_config",
    "parse_config",
    "with_overrides",
]
