"""What a backfill did, as the line it prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counts:
    read: int = 0
    present: int = 0
    written: int = 0

    def line(self) -> str:
        return f"read {self.read}, already present {self.present}, written {self.written}"
