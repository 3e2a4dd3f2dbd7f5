"""The hypervisor's steal per round (host.py): read from a real /proc/stat, computed from two
snapshots, and printed under each shape's table."""

from __future__ import annotations

from pathlib import Path

from bench.load.host import STAT_FIELDS, cpu_times, steal_pct
from bench.load.report import notes


def _stat(tmp_path: Path, name: str, steal: int, idle: int) -> str:
    path = tmp_path / name
    path.write_text(
        f"cpu  10 0 10 {2 * idle} 0 0 0 {2 * steal} 0 0\n"
        f"cpu0 5 0 5 {idle} 0 0 0 {steal} 0 0\n"
        "intr 1 2 3\n"
    )
    return str(path)


def test_this_machines_cpu_times_have_every_field() -> None:
    for cpu in ("0", None):
        times = cpu_times(cpu)
        assert set(times) == set(STAT_FIELDS), times
        assert times["idle"] > 0


def test_steal_is_the_share_of_the_cpus_time_between_two_snapshots(tmp_path: Path) -> None:
    before = cpu_times("0", _stat(tmp_path, "a", steal=0, idle=90))
    after = cpu_times("0", _stat(tmp_path, "b", steal=25, idle=165))
    # 25 ticks stolen of 100 (75 idle + 25 steal; user and system did not move).
    assert steal_pct(before, after) == 25.0
    assert steal_pct(before, before) is None
    assert cpu_times("7", _stat(tmp_path, "c", steal=0, idle=1)) == {}


def test_each_rounds_steal_is_printed_under_the_shapes_table() -> None:
    res = {"shapes": {"bare": {"post": False}}}
    cells = {"beacon-file": {"steal_pct": [0.1, 12.5, 0.0]}, "nginx": {"steal_pct": [0.3]}}
    labels = {"beacon-file": "beacon file", "nginx": "nginx empty_gif"}
    lines = notes(res, "bare", cells, labels)
    assert (
        "  Server CPU's time the hypervisor took (steal), % each round:"
        " beacon file 0.1, 12.5, 0.0; nginx empty_gif 0.3."
    ) in lines, lines
