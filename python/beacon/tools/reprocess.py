"""`beacon reprocess`: the bad rows kept under `<data_dir>/_bad/` (README "Bad rows") run
again through the current config and code, by the Rust request path itself
(`Ingest.reprocess`): a row now accepted becomes its event, received at the row's `ts` and
with the row's `id` as event id, so it lands in that day's file and in Kafka with that
timestamp; a row still refused stays, for a later run.

Running it twice adds nothing twice: beside each bad-row file, `<file>.reprocessed` lists
the ids of its rows that are done (accepted, or answered without an event: a duplicate,
do-not-track). A run skips them, and rewrites the list (a temporary file renamed over it)
once its events are with their backends: written, or in a spool that the next server start
replays. A crash before that rename has the next run make those events again
(at-least-once across a crash, exactly-once otherwise).

No server may run on the data directory meanwhile (`beacon.datalock` says why).
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from beacon import datalock
from beacon._beacon import BAD_ROWS_FLAVOR, HEADER_NAMES, METHODS, Ingest
from beacon.config import Config

if TYPE_CHECKING:
    from beacon.backends.kafka.feeder import KafkaFeeder

DONE_SUFFIX = ".reprocessed"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SLOT = {name: i for i, name in enumerate(HEADER_NAMES)}


@dataclass
class Tally:
    """What a run did with the rows."""

    rows: int = 0
    #: Now accepted, by the reason they were refused for.
    accepted: Counter[str] = field(default_factory=Counter)
    #: Still refused, by the reason they are refused for now.
    kept: Counter[str] = field(default_factory=Counter)
    #: Answered now without an event (duplicate, do_not_track, ...), by outcome.
    answered: Counter[str] = field(default_factory=Counter)
    done_before: int = 0
    unreadable: int = 0

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, Counter):
                mine.update(value)
            else:
                setattr(self, name, mine + value)

    def line(self) -> str:
        """The counts on one line."""
        unreadable = f", {self.unreadable} unreadable" if self.unreadable else ""
        return (
            f"{self.rows} rows: {sum(self.accepted.values())} accepted, "
            f"{sum(self.kept.values())} kept, {sum(self.answered.values())} answered "
            f"without an event, {self.done_before} done before{unreadable}"
        )


@dataclass(frozen=True)
class Row:
    """A bad row as `Ingest.reprocess` takes it."""

    id: str
    reason: str
    ts_ms: int
    method: int
    target: bytes
    headers: list[bytes | None]
    body: bytes | None
    truncated: bool


def parse_row(line: bytes) -> Row:
    """Reads one bad row; raises ValueError (or KeyError, TypeError) for anything else."""
    row = json.loads(line)
    req = row["request"]
    method = req["method"]
    headers: list[bytes | None] = [None] * len(HEADER_NAMES)
    if req.get("host") is not None:
        headers[_SLOT["Host"]] = req["host"].encode()
    for name, value in req["headers"].items():
        headers[_SLOT[name]] = value.encode()
    body = req.get("body_b64")
    return Row(
        id=row["id"],
        reason=row["reason"],
        ts_ms=(datetime.fromisoformat(row["ts"]) - _EPOCH) // _MS,
        method=METHODS.index(method) if method in METHODS else len(METHODS),
        target=req["target"].encode(),
        headers=headers,
        body=None if body is None else base64.b64decode(body, validate=True),
        truncated=bool(req.get("truncated")),
    )


def bad_row_files(cfg: Config, date: str | None) -> list[Path]:
    """This data directory's bad-row files (every worker's), of one UTC day or all."""
    pattern = f"{date}*.jsonl" if date else "*.jsonl"  # `<day>.jsonl`, `<day>.w<i>.jsonl`
    return sorted((cfg.data_dir / BAD_ROWS_FLAVOR).glob(pattern))


def done_path(path: Path) -> Path:
    return path.with_name(path.name + DONE_SUFFIX)


def reprocess(cfg: Config, date: str | None, out: TextIO) -> Tally:
    """Runs the bad rows of `date` (None: every day) again; prints what became of them.
    Raises datalock.DataDirBusy while a server runs on the data directory (DataDirError
    when it cannot be used)."""
    tally = Tally()
    with datalock.alone(cfg.data_dir):
        paths = bad_row_files(cfg, date)
        if not paths:
            print(f"no bad rows under {cfg.data_dir / BAD_ROWS_FLAVOR}", file=out)
            return tally
        ingest, feeder = _start(cfg)
        newly_done: dict[Path, list[str]] = {}
        try:
            for path in paths:
                newly_done[path] = []
                this = _run_file(ingest, path, newly_done[path])
                print(f"{path}: {this.line()}", file=out)
                tally.add(this)
        finally:
            # The events first (written, or spooled for the server), then the marks.
            ingest.shutdown()
            if feeder is not None:
                feeder.stop(cfg.shutdown.timeout_s)
            for path, ids in newly_done.items():
                _mark_done(path, ids)
        _report(tally, ingest.stats()["backends"], out)
    return tally


def _start(cfg: Config) -> tuple[Ingest, KafkaFeeder | None]:
    """The request path and its backends, as `beacon serve` starts them, keeping no bad
    rows of its own (a row still refused stays where it is)."""
    ingest = Ingest(replace(cfg, bad_rows=replace(cfg.bad_rows, enabled=False)))
    ingest.start()
    sink = ingest.kafka_sink()
    if sink is None:
        return ingest, None
    from beacon.backends.kafka.feeder import KafkaFeeder

    feeder = KafkaFeeder(cfg, sink)
    feeder.start()
    return ingest, feeder


def _rows(path: Path, tally: Tally) -> Iterator[Row]:
    with path.open("rb") as f:
        for line in f:
            tally.rows += 1
            try:
                yield parse_row(line)
            except (ValueError, KeyError, TypeError, AttributeError):
                tally.unreadable += 1


def _run_file(ingest: Ingest, path: Path, newly_done: list[str]) -> Tally:
    tally = Tally()
    done_file = done_path(path)
    done = set(done_file.read_text().split()) if done_file.exists() else set()
    for row in _rows(path, tally):
        if row.id in done:
            tally.done_before += 1
            continue
        if row.truncated:  # a part was cut: it cannot be the request that was sent
            tally.kept["truncated"] += 1
            continue
        outcome, status = ingest.reprocess(
            row.method, row.target, row.headers, row.body, row.ts_ms, row.id
        )
        if status >= 400:
            tally.kept[outcome] += 1
            continue
        if outcome == "accepted":
            tally.accepted[row.reason] += 1
        else:
            tally.answered[outcome] += 1
        done.add(row.id)  # a row spooled twice (a crash during a replay) counts once
        newly_done.append(row.id)
    return tally


def _mark_done(path: Path, ids: list[str]) -> None:
    """Adds `ids` to the file's done list: whole or not at all (rename)."""
    if not ids:
        return
    done = done_path(path)
    tmp = done.with_name(done.name + ".tmp")
    old = done.read_bytes() if done.exists() else b""
    with tmp.open("wb") as f:
        f.write(old + "".join(f"{i}\n" for i in ids).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, done)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _by(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))


def _report(t: Tally, backends: dict[str, dict[str, Any]], out: TextIO) -> None:
    accepted, kept = sum(t.accepted.values()), sum(t.kept.values())
    print(
        f"accepted {accepted}" + (f" (refused then for: {_by(t.accepted)})" if accepted else ""),
        file=out,
    )
    print(f"kept {kept}" + (f" (refused now for: {_by(t.kept)})" if kept else ""), file=out)
    if t.answered:
        print(f"answered without an event: {_by(t.answered)}", file=out)
    for name, figures in backends.items():
        if figures.get("spool_pending"):
            print(
                f"{figures['spool_pending']} events wait in the {name} spool: the next "
                "server start delivers them",
                file=out,
            )
