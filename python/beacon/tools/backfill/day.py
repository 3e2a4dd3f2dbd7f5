"""The day to backfill: a local date of the flavor's time zone, its bounds in epoch ms, and
which instants belong to it (the file backend's rule: the local date of `ts`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from beacon.tools.backfill.errors import BackfillError


@dataclass(frozen=True)
class Day:
    date: date
    tz: ZoneInfo
    #: The day's first instant; at or after `stop_ms` no instant is of the day. Both in
    #: epoch ms; a midnight that a clock change skips or repeats is handled by `holds`.
    start_ms: int
    stop_ms: int

    def holds(self, ts_ms: int) -> bool:
        """Whether the instant `ts_ms` falls in this local date."""
        if not self.start_ms <= ts_ms < self.stop_ms:
            return False
        return datetime.fromtimestamp(ts_ms // 1000, self.tz).date() == self.date


def _ms(d: date, tz: ZoneInfo, fold: int) -> int:
    return int(datetime.combine(d, time(), tzinfo=tz).replace(fold=fold).timestamp() * 1000)


def parse_day(text: str, timezone: str) -> Day:
    """`YYYY-MM-DD` in `timezone`; a date after today there is refused."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        d = date.fromisoformat(text)
    except ValueError:
        raise BackfillError(f"--date: expected YYYY-MM-DD, got {text!r}") from None
    tz = ZoneInfo(timezone)
    today = datetime.now(tz).date()
    if d > today:
        raise BackfillError(f"--date: {d} is in the future (today in {timezone} is {today})")
    after = d + timedelta(days=1)
    start = min(_ms(d, tz, 0), _ms(d, tz, 1))
    stop = max(_ms(after, tz, 0), _ms(after, tz, 1))
    return Day(d, tz, start, stop)
