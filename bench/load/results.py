"""bench/results/: every run's JSON (raw rounds, summary, host facts), the printed tables as
text and the chart, under one stem; never overwritten: a second run of the day gets `-2`."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from bench.load.servers import REPO

RESULTS = REPO / "bench" / "results"
STEM = re.compile(r"^(\d{4}-\d{2}-\d{2})(-quick)?(?:-(\d+))?$")


def new_stem(quick: bool, day: dt.date | None = None, where: Path = RESULTS) -> str:
    """`<date>[-quick]`, or `<date>[-quick]-<n>` numbered past that day's highest run: a
    deleted run's number is never reused, so the numbers keep the runs' order (which
    `latest_full` reads)."""
    base = (day or dt.date.today()).isoformat() + ("-quick" if quick else "")
    taken = [
        int(m.group(3) or 1)
        for p in [*where.glob(f"{base}*.json"), *where.glob(f"{base}*.txt")]
        if (m := STEM.match(p.stem)) and f"{m.group(1)}{m.group(2) or ''}" == base
    ]
    return f"{base}-{max(taken) + 1}" if taken else base


def save(results: dict[str, Any], text: str, stem: str, where: Path = RESULTS) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{stem}.txt").write_text(text)
    path = where / f"{stem}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def latest_full(where: Path = RESULTS) -> Path | None:
    """The newest complete, non-quick run (one with every shape, row and part)."""
    runs = []
    for p in where.glob("*.json"):
        m = STEM.match(p.stem)
        if not m or m.group(2):
            continue
        try:
            data = json.loads(p.read_text())
        except ValueError:
            continue
        if data.get("complete"):
            runs.append((m.group(1), int(m.group(3) or 1), p))
    return max(runs)[2] if runs else None
