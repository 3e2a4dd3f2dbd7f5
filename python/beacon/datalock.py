"""The data directory's lock, `<data_dir>/.lock` (flock(2)): each serving process holds it
shared, `beacon reprocess` exclusively, so the two never run on one data directory at once.
Both would append to the same daily files, and a file writer whose write fails cuts the file
back to its own last good length, which would cut the other's lines; and both would use the
same spools, each of which has one owner (docs/architecture.md, "Bad rows"). The kernel drops
the lock with the process, so a crash leaves nothing stale."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"

log = logging.getLogger("beacon.http")


class DataDirError(Exception):
    """The data directory cannot be used; the message says why."""


class DataDirBusy(DataDirError):
    """A server runs on the data directory."""


def _open(data_dir: Path) -> int:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # Read-only is enough for flock, and opens a lock file another user created.
        return os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise DataDirError(f"cannot use the data directory {data_dir}: {e.strerror}") from None


@contextmanager
def serving(data_dir: Path) -> Iterator[None]:
    """A server's hold: shared with the other workers; waits, saying so, while `beacon
    reprocess` runs (the server starts as soon as it ends)."""
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for beacon reprocess to finish with %s", data_dir)
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@contextmanager
def alone(data_dir: Path) -> Iterator[None]:
    """A tool's hold: raises DataDirBusy while a server runs on `data_dir`."""
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(
                f"a beacon server is running on {data_dir} (it holds "
                f"{data_dir / LOCK_FILE}): stop it first"
            ) from None
        yield
    finally:
        os.close(fd)
