"""Logging: the stdlib logger to stderr (journald), a prefix per component (`http`,
`file`, `kafka`, `admin`) taken from the logger name `beacon.<component>`."""

from __future__ import annotations

import logging
import sys


class _ComponentFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.component = record.name.rsplit(".", 1)[-1]
        return super().format(record)


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _ComponentFormatter("%(asctime)s %(levelname)s %(component)s: %(message)s")
    )
    root = logging.getLogger("beacon")
    root.handlers[:] = [handler]
    set_level(level)
    root.propagate = False


def set_level(level: str) -> None:
    """The config's `log_level` (at start, and again by a reload)."""
    logging.getLogger("beacon").setLevel(level.upper())
