"""Reading a config: JSON (whole-line `//` comments allowed) into the schema's dataclasses
with cattrs, every problem collected and named by its key path
(`flavors[1].timezone: unknown time zone "Mars/Base"`), then the checks that span keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import cattrs
from cattrs.errors import ForbiddenExtraKeysError

from beacon._beacon import MAX_FLAVORS
from beacon.config.checks import Check, address
from beacon.config.schema import RUNTIME_KEYS, Config


class ConfigError(Exception):
    """Every problem found in a config, one `key: problem` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _check_of(t: Any) -> Check | None:
    if get_origin(t) is Annotated:
        return next((m for m in get_args(t)[1:] if isinstance(m, Check)), None)
    return None


def _converter() -> cattrs.Converter:
    c = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    c.register_structure_hook_func(
        lambda t: _check_of(t) is not None,
        lambda value, t: _check_of(t).parse(value),  # type: ignore[union-attr]
    )
    # The file's `spool_dir` is the field `spool_root` (the property `spool_dir` is the
    # process's own).
    c.register_structure_hook(
        Config,
        cattrs.gen.make_dict_structure_fn(
            Config,
            c,
            _cattrs_forbid_extra_keys=True,
            spool_root=cattrs.gen.override(rename="spool_dir"),
        ),
    )
    return c


_CONVERTER = _converter()


def _problems(exc: BaseException, path: str) -> list[str]:
    """`key: problem` lines from cattrs' exception tree (its notes carry the key path)."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [f"{_join(path, k)}: unknown key" for k in sorted(exc.extra_fields)]
    if isinstance(exc, BaseExceptionGroup):
        out = []
        for sub in exc.exceptions:
            out += _problems(sub, _join(path, _step(sub)))
        return out
    if isinstance(exc, KeyError):
        return [f"{path}: required"]
    return [f"{path or 'config'}: {exc}"]


#: Fields read from another key of the file.
_KEYS = {"spool_root": "spool_dir"}


def _step(exc: BaseException) -> str:
    for note in getattr(exc, "__notes__", []):
        if hasattr(note, "name"):
            return _KEYS.get(note.name, str(note.name))
        if hasattr(note, "index"):
            return f"[{note.index}]"
    return ""


def _join(path: str, step: str) -> str:
    if not step:
        return path
    if step.startswith("["):
        return path + step
    return f"{path}.{step}" if path else step


def _shapes(obj: Any, t: Any, path: str) -> list[str]:
    """Each JSON object of the schema is an object, and `flavors` a non-empty list of
    them: cattrs would read a string as a list of characters, or fail without a message."""
    if not isinstance(obj, dict):
        return [f"{path or 'config'}: expected an object, got {json.dumps(obj, default=str)}"]
    out = []
    hints = get_type_hints(t, include_extras=True)
    for f in fields(t):
        key = _KEYS.get(f.name, f.name)
        hint = hints[f.name]
        if key not in obj:
            continue
        if is_dataclass(hint):
            out += _shapes(obj[key], hint, _join(path, key))
        elif get_origin(hint) is tuple and is_dataclass(item := get_args(hint)[0]):
            value = obj[key]
            if not isinstance(value, list) or not value:
                out.append(f"{_join(path, key)}: expected a non-empty list of objects")
                continue
            for i, v in enumerate(value):
                out += _shapes(v, item, f"{_join(path, key)}[{i}]")
    return out


def parse_config(obj: Any) -> Config:
    """Validates a decoded config object; raises ConfigError naming every problem."""
    problems = _shapes(obj, Config, "")
    if problems:
        raise ConfigError(problems)
    problems += [f"{k}: unknown key" for k in sorted(RUNTIME_KEYS & set(obj))]
    problems += _clashes(obj.get("flavors", []))
    try:
        cfg = _CONVERTER.structure(obj, Config)
    except Exception as e:  # cattrs' validation group, or one error
        raise ConfigError(problems + _problems(e, "")) from None
    if "default_flavor" not in obj:
        only = cfg.flavors[0].name if len(cfg.flavors) == 1 else None
        cfg = replace(cfg, default_flavor=only)
    problems += _settled(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def _clashes(flavors: list[Any]) -> list[str]:
    """Flavor names and hosts used twice; read from the file's objects, so they are found
    together with every other problem."""
    problems = []
    if len(flavors) > MAX_FLAVORS:  # rust/src/sinks/per_flavor.rs: fixed rows per backend
        problems.append(f"flavors: at most {MAX_FLAVORS} flavors, got {len(flavors)}")
    names: set[str] = set()
    hosts: dict[str, str] = {}
    for i, f in enumerate(flavors):
        name = f.get("name")
        if not isinstance(name, str):
            continue
        if name in names:
            problems.append(f"flavors[{i}].name: duplicate flavor {name!r}")
        names.add(name)
        listed = f.get("hosts")
        for h in listed if isinstance(listed, list) else []:
            other = hosts.setdefault(h.lower(), name) if isinstance(h, str) else name
            if other != name:
                problems.append(f"flavors[{i}].hosts: host {h!r} already belongs to {other!r}")
    return problems


def _settled(cfg: Config) -> list[str]:
    """What no single key can say, once every key is read."""
    problems = []
    names = {f.name for f in cfg.flavors}
    if cfg.default_flavor is not None and cfg.default_flavor not in names:
        problems.append(f"default_flavor: {cfg.default_flavor!r} is not the name of a flavor")
    if cfg.kafka.enabled and not cfg.kafka.bootstrap_servers:
        problems.append("backends.kafka.bootstrap_servers: required when kafka is enabled")
    if not cfg.allow_public_admin and not cfg.admin_listen.is_loopback():
        problems.append(
            f"admin_listen: {cfg.admin_listen.host} is not a loopback address; the admin "
            "listener exposes internals: set allow_public_admin to true to bind it anyway"
        )
    for path in sorted(set(cfg.paths) & set(cfg.batch_paths)):
        problems.append(f"batch_paths: {path!r} is in paths too: a path is one or the other")
    if cfg.admin_listen == cfg.listen:
        problems.append("admin_listen: must differ from listen: admin routes are never public")
    return problems


def with_overrides(
    cfg: Config, listen: str | None, data_dir: str | None, admin_listen: str | None = None
) -> Config:
    """Applies command-line flags, which win over the file."""
    problems = []
    if listen is not None:
        try:
            cfg = replace(cfg, listen=address(listen))
        except ValueError as e:
            problems.append(f"--listen: {e}")
    if admin_listen is not None:
        try:
            admin = address(admin_listen)
        except ValueError as e:
            problems.append(f"--admin-listen: {e}")
        else:
            if admin.is_loopback() or cfg.allow_public_admin:
                cfg = replace(cfg, admin_listen=admin)
            else:
                problems.append(f"--admin-listen: {admin.host} is not a loopback address")
    if data_dir is not None:
        cfg = replace(cfg, data_dir=Path(data_dir))
    if problems:
        raise ConfigError(problems)
    return cfg


def load_config(path: str | Path) -> Config:
    """Reads and validates a JSON config file."""
    return read_config(path)[0]


def read_config(path: str | Path) -> tuple[Config, str]:
    """Reads and validates a JSON config file; also returns the sha256 (hex) of the very
    bytes read, which `/info` shows."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path}: not UTF-8: {e.reason} at byte {e.start}"]) from None
    # Whole-line `//` comments are allowed (the packaged example is commented); blanking
    # them keeps line numbers right in error messages.
    text = "\n".join("" if ln.lstrip().startswith("//") else ln for ln in text.splitlines())
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        raise ConfigError([f"{path}: invalid JSON at {where}: {e.msg}"]) from None
    return parse_config(obj), hashlib.sha256(data).hexdigest()
