"""The Rust daily-file writer, driven in-process through `beacon.Ingest` with real files:
midnight rollover per time zone, reopen, ring overflow and disk failure into the spool,
and replay (also across a restart)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from beacon import Ingest
from beacon.config import parse_config
from support.accounting import unaccounted


def make_ingest(
    data: Path, spool: Path, *, ring_capacity: int = 1024, flush_ms: int = 50
) -> Ingest:
    cfg = parse_config(
        {
            "data_dir": str(data),
            "spool_dir": str(spool),
            "ring_capacity": ring_capacity,
            "default_flavor": None,
            "flavors": [
                {"name": name, "hosts": [f"{name}.example"], "timezone": tz}
                for name, tz in (("athens", "Europe/Athens"), ("ny", "America/New_York"))
            ],
            "backends": {"file": {"flush_interval_ms": flush_ms}},
        }
    )
    ing = Ingest(cfg)
    ing.start()
    return ing


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def file_stats(ing: Ingest) -> dict[str, Any]:
    stats: dict[str, Any] = ing.stats()["backends"]["file"]
    return stats


def test_midnight_rollover_follows_each_flavors_zone(tmp_path: Path) -> None:
    ing = make_ingest(tmp_path / "data", tmp_path / "spool")
    # 21:59:59.999Z is 23:59:59.999 in Athens (UTC+2) and 16:59 in New York (UTC-5).
    times = [
        "2026-11-24T21:59:59.999+00:00",
        "2026-11-24T22:00:00.000+00:00",
        "2026-11-25T04:59:59.999+00:00",
        "2026-11-25T05:00:00.000+00:00",
    ]
    for n, t in enumerate(times, 1):
        ing.set_clock(ms(t))
        assert ing.handle(f"/track?n={n}".encode(), b"athens.example") == 200
        assert ing.handle(f"/track?n={n}".encode(), b"ny.example") == 200
    ing.shutdown()
    d = tmp_path / "data"
    assert [e["params"]["n"] for e in events(d / "athens/2026-11-24.jsonl")] == ["1"]
    assert [e["params"]["n"] for e in events(d / "athens/2026-11-25.jsonl")] == ["2", "3", "4"]
    assert [e["params"]["n"] for e in events(d / "ny/2026-11-24.jsonl")] == ["1", "2", "3"]
    assert [e["params"]["n"] for e in events(d / "ny/2026-11-25.jsonl")] == ["4"]
    last_athens = events(d / "athens/2026-11-24.jsonl")[0]["ts"]
    assert last_athens == "2026-11-24T23:59:59.999+02:00"
    assert events(d / "ny/2026-11-25.jsonl")[0]["ts"] == "2026-11-25T00:00:00.000-05:00"


def test_reopen_after_rotation_starts_a_new_file(tmp_path: Path) -> None:
    ing = make_ingest(tmp_path / "data", tmp_path / "spool")
    ing.set_clock(ms("2026-11-24T12:00:00+00:00"))
    path = tmp_path / "data/athens/2026-11-24.jsonl"
    ing.handle(b"/track?n=1", b"athens.example")
    wait_for(path.exists)
    wait_for(lambda: file_stats(ing)["written"] == 1)
    path.rename(path.with_suffix(".jsonl.1"))  # what logrotate does
    ing.reopen()
    time.sleep(0.2)
    ing.handle(b"/track?n=2", b"athens.example")
    ing.shutdown()
    assert [e["params"]["n"] for e in events(path.with_suffix(".jsonl.1"))] == ["1"]
    assert [e["params"]["n"] for e in events(path)] == ["2"]


def test_ring_overflow_goes_to_the_spool_and_lands(tmp_path: Path) -> None:
    ing = make_ingest(tmp_path / "data", tmp_path / "spool", ring_capacity=2)
    ing.set_clock(ms("2026-11-24T12:00:00+00:00"))
    for n in range(20_000):
        assert ing.handle(f"/track?n={n}".encode(), b"ny.example") == 200
    ing.shutdown()
    stats = file_stats(ing)
    got = sorted(int(e["params"]["n"]) for e in events(tmp_path / "data/ny/2026-11-24.jsonl"))
    assert got == list(range(20_000))  # every event once
    assert stats["spooled"] > 0 and stats["replayed"] == stats["spooled"]
    assert stats["dropped"] == 0 and stats["spool_pending"] == 0
    assert stats["overflowed"] == stats["spooled"] and unaccounted(stats) == 0
    print(f"\nring overflow: {stats['spooled']} of 20000 events went through the spool")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """The flavor's directory on a 64 KiB tmpfs; the spool stays on the big disk."""
    mnt = tmp_path / "data" / "athens"
    mnt.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def grow(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m", str(mnt)], check=True)


def send(ing: Ingest, start: int, stop: int) -> None:
    for n in range(start, stop):
        assert ing.handle(f"/track?n={n}&pad={'x' * 100}".encode(), b"athens.example") == 200


def numbers(path: Path) -> list[int]:
    return [int(e["params"]["n"]) for e in events(path)]


def test_full_disk_spools_then_replays_once_space_is_back(tmp_path: Path, small_disk: Path) -> None:
    ing = make_ingest(tmp_path / "data", tmp_path / "spool")
    ing.set_clock(ms("2026-11-24T12:00:00+00:00"))
    send(ing, 0, 2000)  # ~340 KB: far more than 64 KiB
    wait_for(lambda: not file_stats(ing)["up"])
    assert file_stats(ing)["errors"] > 0
    grow(small_disk)
    send(ing, 2000, 3000)
    wait_for(lambda: file_stats(ing)["spool_pending"] == 0 and file_stats(ing)["up"])
    ing.shutdown()
    stats = file_stats(ing)
    got = numbers(small_disk / "2026-11-24.jsonl")  # every line parses: no torn line
    assert sorted(got) == list(range(3000))
    assert stats["errors"] > 0 and stats["dropped"] == 0
    assert stats["replayed"] == stats["spooled"] > 0 and unaccounted(stats) == 0
    print(f"\ndisk full: {stats['spooled']} spooled, {stats['replayed']} replayed, 0 lost")


def test_spool_survives_a_restart(tmp_path: Path, small_disk: Path) -> None:
    ing = make_ingest(tmp_path / "data", tmp_path / "spool")
    ing.set_clock(ms("2026-11-24T12:00:00+00:00"))
    send(ing, 0, 2000)
    ing.shutdown()  # the disk is still full: the rest stays in the spool
    pending = file_stats(ing)["spool_pending"]
    assert pending > 0
    assert list((tmp_path / "spool" / "file").glob("*.spool"))
    grow(small_disk)
    again = make_ingest(tmp_path / "data", tmp_path / "spool")
    wait_for(lambda: file_stats(again)["spool_pending"] == 0)
    again.shutdown()
    assert sorted(numbers(small_disk / "2026-11-24.jsonl")) == list(range(2000))
    stats = file_stats(again)
    assert stats["replayed"] == stats["recovered"] == pending and unaccounted(stats) == 0
