"""`--merge`: which events the destination already holds. Events are matched by `id`, and
those without one (a flavor with `event_id` off) by their exact line, counted: two equal
lines are two events, and each line there stands for one."""

from __future__ import annotations

from collections import Counter


class Present:
    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lines: Counter[bytes] = Counter()

    def add(self, id_: str | None, value: bytes) -> None:
        """An event the destination holds (`value`: its line without the newline)."""
        if id_ is not None:
            self.ids.add(id_)
        else:
            self.lines[value] += 1

    def take(self, id_: str | None, value: bytes) -> bool:
        """Whether this event is already there; if not, it will be: an id seen again (a
        duplicate in the source) is then present too."""
        if id_ is not None:
            if id_ in self.ids:
                return True
            self.ids.add(id_)
            return False
        if self.lines[value] > 0:
            self.lines[value] -= 1
            return True
        return False
