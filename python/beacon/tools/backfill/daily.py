"""The daily file on the backfill's side: where it is, reading it whole lines only, and
replacing it atomically (written aside in the same directory, fsynced, renamed over it)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from beacon.config import Config, FlavorConfig
from beacon.tools.backfill.day import Day
from beacon.tools.backfill.errors import BackfillError


def daily_path(cfg: Config, flavor: FlavorConfig, day: Day) -> Path:
    """`<data_dir>/<flavor>/<YYYY-MM-DD>.jsonl` (the file of a server without `--workers`)."""
    return cfg.data_dir / flavor.name / f"{day.date.isoformat()}.jsonl"


def check_whole(path: Path) -> None:
    """Refuses a file whose last line is torn (no newline at the end)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            last = f.read(1)
    except OSError as e:
        raise BackfillError(f"{path}: cannot read: {e.strerror}") from None
    if last != b"\n":
        raise BackfillError(f"{path}: the last line is torn (no newline at the end); repair it")


def lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) of a file `check_whole` accepted."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            yield n, line.removesuffix(b"\n")


class Aside:
    """A new version of `path`, written next to it; `commit()` makes it `path`, atomically.
    Left uncommitted (an error, nothing to add), it is removed and `path` is as it was."""

    def __init__(self, path: Path, keep: bool) -> None:
        """`keep`: start from a copy of `path`'s bytes (its lines stay as they are)."""
        self.path = path
        self.tmp = path.with_name(f".{path.name}.backfill-{os.getpid()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: BinaryIO = self.tmp.open("xb")
        self.committed = False
        try:
            if keep:
                with path.open("rb") as old:
                    shutil.copyfileobj(old, self.file)
            _owned_like(self.tmp, path if keep else path.parent, mode=keep)
        except BaseException:
            self.discard()
            raise

    def write(self, line: bytes) -> None:
        self.file.write(line)
        self.file.write(b"\n")

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)
        self.committed = True
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself
        finally:
            os.close(dir_fd)

    def discard(self) -> None:
        self.file.close()
        if not self.committed:
            self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def aside(path: Path, keep: bool) -> Iterator[Aside]:
    """An `Aside` that is discarded unless committed inside the block."""
    a = Aside(path, keep)
    try:
        yield a
    finally:
        a.discard()


def _owned_like(tmp: Path, like: Path, mode: bool) -> None:
    """Gives the new file the owner of the file it replaces (or of its directory) and, when
    it replaces one, its mode: a backfill run as root must leave a file the server (another
    user) can still append to."""
    st = like.stat()
    if mode:
        os.chmod(tmp, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(tmp, st.st_uid, st.st_gid)
