"""bench/results/ naming, the choice of the README's run, the README section and the
targets, on made-up figures (no timing: nothing here measures anything)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bench.load import readme
from bench.load.results import latest_full, new_stem
from bench.load.servers import CONTROL
from bench.load.summary import OWN_P99, own_p99_note, summarize_fixed, targets

DAY = dt.date(2026, 12, 2)


def test_a_run_never_overwrites_another(tmp_path: Path) -> None:
    assert new_stem(False, DAY, tmp_path) == "2026-12-02"
    (tmp_path / "2026-12-02.json").write_text("{}")
    assert new_stem(False, DAY, tmp_path) == "2026-12-02-2"
    assert new_stem(True, DAY, tmp_path) == "2026-12-02-quick"


def test_a_deleted_runs_number_is_not_reused(tmp_path: Path) -> None:
    for stem in ["2026-12-02", "2026-12-02-3", "2026-12-02-quick-7"]:
        (tmp_path / f"{stem}.txt").write_text("")
    assert new_stem(False, DAY, tmp_path) == "2026-12-02-4"  # -2 is free, but older
    assert new_stem(True, DAY, tmp_path) == "2026-12-02-quick-8"


def test_the_readme_shows_the_newest_complete_full_run(tmp_path: Path) -> None:
    for stem, complete in [
        ("2026-12-01", True),
        ("2026-12-02", True),
        ("2026-12-02-2", False),  # a subset
        ("2026-12-03-quick", True),
        ("2026-11-24", None),  # the old format
    ]:
        data = {} if complete is None else {"complete": complete}
        (tmp_path / f"{stem}.json").write_text(json.dumps(data))
    assert latest_full(tmp_path) == tmp_path / "2026-12-02.json"


def cells(file: float, kafka: float, nginx: float) -> dict[str, Any]:
    def row(rps: float, rss: float = 30.0, gc: float | None = 40.0) -> dict[str, Any]:
        return {"rps": rps, "rss_mb": rss, "gc_avg_us": gc}

    return {
        "beacon-file": row(file),
        "beacon-kafka": {
            **row(kafka, rss=61.0),
            "accepted_per_s": 1000.0,
            "kafka_delivered_per_s": 995.0,
        },
        "nginx": row(nginx, gc=None),
    }


def test_targets_are_judged_on_the_run_figures() -> None:
    fixed = {"beacon-file": {"latency_us": {"p99": 300.0}}, "nginx": {"latency_us": {"p99": 200.0}}}
    got = {t["target"]: t for t in targets(cells(85.0, 60.0, 100.0), fixed)}
    assert got["beacon file >= 0.8x nginx"]["met"] is True
    assert got["file + Kafka >= 0.7x nginx"]["met"] is False
    assert got["p99 at fixed rate <= 1.2x nginx's"]["text"] == "1.50x"
    assert got["RSS < 60 MB"]["met"] is False  # the Kafka row's 61 MB
    assert got["GC avg pause < 100 µs"]["met"] is True
    assert got["Kafka keeps up"]["met"] is True


def test_the_p99_target_shows_what_two_nginx_differ_by_and_is_judged_on_beacon_alone() -> None:
    def fixed(beacon: float, control: float) -> dict[str, Any]:
        p99 = {"beacon-file": beacon, "nginx": 200.0, CONTROL: control}
        return {row: {"latency_us": {"p99": v}} for row, v in p99.items()}

    def p99_target(f: dict[str, Any]) -> dict[str, Any]:
        return next(
            t for t in targets(cells(85.0, 75.0, 100.0), f) if t["target"].startswith("p99")
        )

    missed = p99_target(fixed(300.0, 290.0))
    assert (missed["met"], missed["text"]) == (False, "1.50x; nginx's own 1.45x")
    met = p99_target(fixed(220.0, 400.0))
    assert (met["met"], met["text"]) == (True, "1.10x; nginx's own 2.00x")


def test_the_own_p99_note_comes_only_with_a_run_that_had_the_control() -> None:
    with_control: dict[str, Any] = {
        "fixed_rate": {"bare": {"beacon-file": {}, "nginx": {}, CONTROL: {}}}
    }
    before_it: dict[str, Any] = {"fixed_rate": {"bare": {"beacon-file": {}, "nginx": {}}}}
    assert own_p99_note(with_control) == OWN_P99
    assert own_p99_note(before_it) == own_p99_note({}) == ""


def test_unmeasured_targets_are_na_not_failed() -> None:
    got = targets({"nginx": {"rps": 1.0, "rss_mb": 1.0, "gc_avg_us": None}}, {})
    assert all(t["met"] is None and t["text"] == "n/a" for t in got)


def test_the_readme_section_is_replaced_between_its_markers() -> None:
    text = f"# x\n\n## Benchmarks\n\n{readme.BEGIN}\nold\n{readme.END}\n\n## Next\n"
    out = readme.update(text, f"{readme.BEGIN}\nnew\n{readme.END}")
    assert out == f"# x\n\n## Benchmarks\n\n{readme.BEGIN}\nnew\n{readme.END}\n\n## Next\n"
    assert readme.update(out, f"{readme.BEGIN}\nnew\n{readme.END}") == out


def paced(p99: float, mx: float, errors: int = 0) -> dict[str, Any]:
    lat = {"p50": 80.0, "p99": p99, "max": mx}
    return {
        "achieved_rate": 1000.0,
        "errors": errors,
        "latency_us": lat,
        "service_latency_us": lat,
        "send_lag_us": {"p50": 1.0, "p99": 2.0, "max": 3.0},
        "rss_max_mb": 30.0,
    }


def test_fixed_rate_rounds_give_medians_and_keep_each_rounds_p99() -> None:
    got = summarize_fixed([paced(300.0, 900.0), paced(5000.0, 9000.0, 1), paced(350.0, 800.0)])
    assert got["latency_us"]["p99"] == 350.0  # one noisy round does not set it
    assert got["latency_us"]["max"] == 9000.0  # the worst is kept as the worst
    assert got["p99_rounds_us"] == [300.0, 5000.0, 350.0]
    assert (got["rounds"], got["errors"]) == (3, 1)
    assert summarize_fixed([{"unavailable": "no nginx"}]) == {"unavailable": "no nginx"}


def test_the_readme_line_says_when_the_hypervisor_took_the_cpu() -> None:
    def run(steals: list[float]) -> dict[str, Any]:
        rounds = [{"steal_pct": p} for p in steals]
        return {
            "host": {"cores": 2, "loadavg_1min": {"max": 1.2}},
            "shapes": {"bare": {"label": "bare GET"}},
            "rounds": {"bare": {"nginx": rounds}},
        }

    assert readme.noise_note(run([0.1, 2.0])) == " 1-min load average up to 1.2."
    note = readme.noise_note(run([0.1, 36.7, 4.0]))
    assert "the hypervisor took up to 36.7% of the server's CPU in a bare GET round" in note
    assert note.endswith("so these figures are noisy (see the rounds in the JSON).")
