"""The public listener's side of the runtime: its response table, the protocol factory,
the once-a-second housekeeping (Date header, timeouts) and closing connections for a
drain."""

from __future__ import annotations

from beacon.http.protocol import TrackProtocol
from beacon.http.responses import ResponseTable
from beacon.state import ServerState


class Frontend:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.responses = ResponseTable()

    def protocol(self) -> TrackProtocol:
        return TrackProtocol(self.state, self.responses)

    def tick(self) -> None:
        """Once a second: re-date the answers, cut slow requests and idle connections."""
        s = self.state
        s.tick += 1
        self.responses.refresh()
        for conn in list(s.connections):
            conn.check_timeouts(s.tick, s.request_ticks, s.idle_ticks)

    def close_idle(self) -> None:
        """Drain: close what is between requests; the rest closes after its answer."""
        for conn in list(self.state.connections):
            conn.close_when_idle()

    def close_all(self) -> None:
        for conn in list(self.state.connections):
            conn.close()
