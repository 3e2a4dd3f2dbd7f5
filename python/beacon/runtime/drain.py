"""Drain and die (README "Signals"): health turns 503 for `pre_stop_s`, the listeners
close, requests in flight finish and keep-alive connections close after their answer."""

from __future__ import annotations

import asyncio
import logging
import time

from beacon.http.frontend import Frontend
from beacon.runtime.signals import StopSignals
from beacon.sdnotify import notify

log = logging.getLogger("beacon.http")


async def drain(frontend: Frontend, public: list[asyncio.Server], signals: StopSignals) -> None:
    state = frontend.state
    state.draining = True
    notify("STOPPING=1")
    log.info("draining: /healthz is 503 for %.1fs", state.cfg.shutdown.pre_stop_s)
    await signals.wait_or_hurry(state.cfg.shutdown.pre_stop_s)
    for srv in public:
        srv.close()
    frontend.close_idle()
    deadline = time.monotonic() + max(state.cfg.shutdown.timeout_s, 1.0)
    while state.connections and time.monotonic() < deadline and not signals.hurry.is_set():
        await asyncio.sleep(0.05)
    frontend.close_all()
