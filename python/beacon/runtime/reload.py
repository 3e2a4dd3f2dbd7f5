"""SIGHUP (README "Config reload"): reopen the daily files, then read the config file again
and put it in force for the next request. The file is read and checked on a thread (the
event loop keeps serving); a file with any problem changes nothing. Keys that need a
restart keep their running values and are logged; the rest apply at once, between two
requests, without touching a connection or an event."""

from __future__ import annotations

import asyncio
import logging
import time

from beacon.config import Config, ConfigError
from beacon.config.restart import split_restart
from beacon.config.source import ConfigSource, Loaded
from beacon.logs import set_level
from beacon.sdnotify import notify
from beacon.state import ServerState

log = logging.getLogger("beacon.http")


def _checked(source: ConfigSource, running: Config) -> Loaded:
    """The file as `serve` would check it: the schema's checks and, when the Kafka
    settings changed, librdkafka's verdict on them (they apply at the next restart)."""
    loaded = source.load()
    kafka = loaded.cfg.kafka
    if kafka.enabled and kafka != running.kafka:
        from beacon.backends.kafka.settings import producer_problems

        if problems := producer_problems(loaded.cfg):
            raise ConfigError(problems)
    return loaded


class Reloader:
    """The SIGHUP handler. Reloads run one at a time; a SIGHUP during one runs another
    after it (the file may have changed again)."""

    def __init__(self, state: ServerState, source: ConfigSource) -> None:
        self.state = state
        self.source = source
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def __call__(self) -> None:
        self.state.ingest.reopen()  # logrotate: close the daily files, reopen on write
        if self.source.path is None:
            log.info("SIGHUP: daily files reopened; no config file to reload")
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._reload_all())

    async def _reload_all(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            # systemd shows the unit reloading until READY=1 (sd_notify(3)).
            notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                await self.reload()
            except Exception:  # a bug here must not end the SIGHUP handling for good
                self.state.reload_failed()
                log.exception("config reload failed")
            notify("READY=1")

    async def reload(self) -> bool:
        """Reads, checks and applies the config file; True when it is in force."""
        state = self.state
        path = self.source.path
        loop = asyncio.get_running_loop()
        try:
            loaded = await loop.run_in_executor(None, _checked, self.source, state.cfg)
            cfg, restart = split_restart(state.cfg, loaded.cfg)
            state.reconfigure(cfg, loaded.sha256)
        except (ConfigError, ValueError) as e:
            problems = e.problems if isinstance(e, ConfigError) else [str(e)]
            state.reload_failed()
            for problem in problems:
                log.error("config reload refused: %s", problem)
            log.error("config reload refused: %s unchanged, still %s", path, state.config_sha256)
            return False
        set_level(cfg.log_level)
        for key in restart:
            log.warning("config reload: needs a restart: %s (keeping the running value)", key)
        flavors = ", ".join(f.name for f in cfg.flavors)
        log.info("config reloaded from %s (sha256 %s): flavors %s", path, loaded.sha256, flavors)
        return True
