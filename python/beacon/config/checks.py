"""The checked value types of the config schema: `Annotated[T, Check(parse)]`, where
`parse` takes the raw JSON value and returns the field's value or raises ValueError with
the problem (the key path is added by `load.py`). JSON has no tuples, no paths and no
addresses: these types also say how such a value is read."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from beacon._beacon import is_valid_timezone

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")


@dataclass(frozen=True)
class Check:
    """Marks an `Annotated` field type: `parse` reads its raw JSON value."""

    parse: Callable[[Any], Any]


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def address(value: Any) -> Address:
    if not isinstance(value, str):
        raise ValueError(f'expected "host:port", got {_shown(value)}')
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'expected "host:port" with a port 1-65535, got {value!r}')
    return Address(host, int(port))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_shown(value)}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive integer, got {_shown(value)}")
    return value


def _non_negative(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a number >= 0, got {_shown(value)}")
    return float(value)


def _positive(value: Any) -> float:
    if _non_negative(value) == 0:
        raise ValueError("expected a number > 0, got 0")
    return float(value)


def _text(what: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected {what}, got {_shown(value)}")
        return value

    return parse


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"expected a name of letters, digits, '.', '_' or '-', got {_shown(value)}"
        )
    return value


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_timezone(value):
        raise ValueError(f"unknown time zone {_shown(value)}")
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {_shown(value)}")
        return str(value)

    return parse


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a list of non-empty strings, got {_shown(value)}")
    return tuple(value)


def _required_params(value: Any) -> tuple[str, ...]:
    names = _strings(value)
    if len(set(names)) != len(names):
        raise ValueError(f"lists a parameter twice: {_shown(value)}")
    if len(names) > 64:  # the request path tracks them in one 64-bit mask
        raise ValueError(f"at most 64 parameters, got {len(names)}")
    return names


def _origins(value: Any) -> tuple[str, ...]:
    origins = _strings(value)
    bad = [o for o in origins if o != "*" and not _ORIGIN.match(o)]
    if bad:
        raise ValueError(f'expected "*" or origins like "https://example.com", got {bad}')
    return origins


def _cidrs(value: Any) -> tuple[str, ...]:
    blocks = _strings(value)
    for b in blocks:
        try:
            ipaddress.ip_network(b, strict=False)
        except ValueError:
            raise ValueError(f"expected an address or CIDR block, got {_shown(b)}") from None
    return blocks


def _paths(value: Any) -> tuple[str, ...]:
    paths = _strings(value) if isinstance(value, list) and value else None
    if paths is None or any(not p.startswith("/") or "?" in p for p in paths):
        raise ValueError(f"expected absolute paths without '?', got {_shown(value)}")
    return paths


def _batch_paths(value: Any) -> tuple[str, ...]:
    return () if value == [] else _paths(value)


def _directory(value: Any) -> Path:
    return Path(_text("a directory path")(value))


def _producer(value: Any) -> dict[str, Any]:
    # librdkafka itself judges the keys and values (backends/kafka checks them at start).
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of librdkafka settings, got {_shown(value)}")
    return dict(value)


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


Boolean = Annotated[bool, Check(_boolean)]
PositiveInt = Annotated[int, Check(_positive_int)]
NonNegative = Annotated[float, Check(_non_negative)]
Positive = Annotated[float, Check(_positive)]
Name = Annotated[str, Check(_name)]
OptionalName = Annotated[str | None, Check(_optional(_name))]
TimeZone = Annotated[str, Check(_timezone)]
QueryFormat = Annotated[str, Check(_one_of("flat", "rack"))]
IpMode = Annotated[str, Check(_one_of("off", "full", "anonymized"))]
LogLevel = Annotated[str, Check(_one_of("debug", "info", "warning", "error"))]
Strings = Annotated[tuple[str, ...], Check(_strings)]
RequiredParams = Annotated[tuple[str, ...], Check(_required_params)]
Origins = Annotated[tuple[str, ...], Check(_origins)]
Cidrs = Annotated[tuple[str, ...], Check(_cidrs)]
Paths = Annotated[tuple[str, ...], Check(_paths)]
BatchPaths = Annotated[tuple[str, ...], Check(_batch_paths)]
Directory = Annotated[Path, Check(_directory)]
OptionalDirectory = Annotated[Path | None, Check(_optional(_directory))]
ListenAddress = Annotated[Address, Check(address)]
ParamName = Annotated[str | None, Check(_optional(_text("a parameter name")))]
RequestTarget = Annotated[str | None, Check(_optional(_text("a request target")))]
FlavorRef = Annotated[str | None, Check(_optional(_text("a flavor name or null")))]
OptionalPositiveInt = Annotated[int | None, Check(_optional(_positive_int))]
ProducerSettings = Annotated[dict[str, Any], Check(_producer)]


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_shown(value)}")
    return value


String = Annotated[str, Check(_string)]
