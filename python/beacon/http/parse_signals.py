"""How the public protocol's parser callbacks talk back to it (http/protocol.py): the
fast parser's one callback, and the exceptions a callback raises to cut a request short."""

from __future__ import annotations


class TooLarge(Exception):
    """Raised from a parser callback to abort a request over a size limit."""

    def __init__(self, status: int) -> None:
        self.status = status


class Stop(Exception):
    """Raised from a parser callback to stop reading: the connection is closing, and what
    follows on it is not to be answered."""


class WholeRequests:
    """The fast parser's callbacks: only the end of a message (http/protocol.py's doc)."""

    __slots__ = ("on_message_complete",)

    def __init__(self, on_message_complete: object) -> None:
        self.on_message_complete = on_message_complete
