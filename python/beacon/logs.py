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
    root.setLevel(level.upper())
    root.propagate = False
