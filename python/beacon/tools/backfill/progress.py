"""A progress line on stderr, redrawn in place (`\r`), only when stderr is a terminal: a pipe
or a log file gets the final counts and nothing else."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Redraw at most this often; the clock is read every `_EVERY` steps only.
_REDRAW_S = 0.1
_EVERY = 256


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self.label = label
        self.total = total
        self.done = 0
        self._drawn = 0.0

    def step(self) -> None:
        self.done += 1
        if self.on and self.done % _EVERY == 0 and time.monotonic() - self._drawn >= _REDRAW_S:
            self._draw()

    def close(self) -> None:
        if self.on:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        pct = f" {100 * self.done // self.total:3d}%" if self.total else ""
        self.stream.write(f"\r{self.label}: {self.done:,} of {self.total:,}{pct}")
        self.stream.flush()
