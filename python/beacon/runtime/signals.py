"""Stop signals: the first SIGTERM/SIGINT drains, a second one hurries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger("beacon.http")


class StopSignals:
    """First SIGTERM/SIGINT: drain. Second: hurry (skip waits, spool what is left).
    Signals within a second of the first are the same request (a terminal's Ctrl-C and a
    supervisor's forward, or systemd signalling the whole cgroup)."""

    DEBOUNCE_S = 1.0

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()
        self.first_at = 0.0
        # Called on the second signal, also while a blocking stop step runs in a thread.
        self.on_hurry: list[Callable[[], None]] = []

    def __call__(self) -> None:
        now = time.monotonic()
        if not self.stop.is_set():
            self.first_at = now
            self.stop.set()
        elif now - self.first_at >= self.DEBOUNCE_S and not self.hurry.is_set():
            log.warning("second stop signal: exiting now, spooling what is in memory")
            self.hurry.set()
            for callback in self.on_hurry:
                callback()

    async def wait_or_hurry(self, seconds: float) -> None:
        """Sleeps `seconds`, or less if a second signal says hurry."""
        if seconds > 0 and not self.hurry.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hurry.wait(), seconds)
