"""Where the running config comes from: the file, the command-line flags that win over it,
and, for `serve --workers N`, which worker this is. Read at start and again by a reload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beacon.config.load import read_config, with_overrides
from beacon.config.schema import Config


@dataclass(frozen=True)
class Loaded:
    cfg: Config
    #: sha256 (hex) of the file's bytes; None without a file (every default).
    sha256: str | None


@dataclass(frozen=True)
class ConfigSource:
    path: Path | None = None
    listen: str | None = None
    data_dir: str | None = None
    admin_listen: str | None = None
    #: (index, workers) of a worker process.
    worker: tuple[int, int] | None = None

    def load(self) -> Loaded:
        """The config as `serve` runs it; raises ConfigError naming every problem."""
        cfg, sha256 = read_config(self.path) if self.path is not None else (Config(), None)
        cfg = with_overrides(cfg, self.listen, self.data_dir, self.admin_listen)
        if self.worker is not None:
            cfg = cfg.for_worker(*self.worker)
        return Loaded(cfg, sha256)
