"""Puts the latest full run's tables into README.md's "Benchmarks" section, between the
`<!-- bench-load:begin -->` and `<!-- bench-load:end -->` markers (`make bench-readme`).

    python -m bench.load.readme [--results bench/results/2026-12-02.json] [--check]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.load.results import latest_full
from bench.load.servers import CONTROL, REPO
from bench.load.summary import own_p99_note

README = REPO / "README.md"
BEGIN = "<!-- bench-load:begin (make bench-readme writes this part) -->"
END = "<!-- bench-load:end -->"
PINNED = ("beacon-file", "beacon-kafka", "nginx", "python-ref")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(headers), _row(["---"] * len(headers)), *(_row(r) for r in rows)]


def _rps_cell(res: dict[str, Any], shape: str, row: str, base: str) -> str:
    m, b = res["summary"][shape].get(row, {}), res["summary"][shape].get(base, {})
    if "rps" not in m:
        return "unavailable" if "unavailable" in m else "n/a"
    text = f"{m['rps']:,.0f}"
    if row != base and b.get("rps"):
        text += f" ({m['rps'] / b['rps']:.2f}x)"
    if m.get("kept_up") is None:
        text += " (stores nothing)"
    elif not m["kept_up"]:
        text += " (did NOT keep up)"
    return text


def throughput_table(res: dict[str, Any]) -> list[str]:
    shapes = list(res["summary"])
    rows = [
        [res["rows"][r], *(_rps_cell(res, s, r, "nginx") for s in shapes)]
        for r in PINNED
        if r in res["rows"]
    ]
    multi = ("beacon-workers2", "nginx-workers2")
    if all(r in res["rows"] for r in multi):
        rows += [
            [f"{res['rows'][r]} (unpinned, wrk shares the cores)"]
            + [_rps_cell(res, s, r, "nginx-workers2") for s in shapes]
            for r in multi
        ]
    heads = ["req/s (x nginx, same shape)", *(res["shapes"][s]["label"] for s in shapes)]
    return _table(heads, rows)


def targets_table(res: dict[str, Any]) -> list[str]:
    shapes = list(res["targets"])
    if not shapes:
        return []
    rows = []
    for i, t0 in enumerate(res["targets"][shapes[0]]):
        cells = []
        for s in shapes:
            t = res["targets"][s][i]
            verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "**not met**")
            cells.append(f"{verdict} ({t['text']})" if t["met"] is not None else "n/a")
        rows.append([t0["target"], *cells])
    return _table(["target (issue 13)", *(res["shapes"][s]["label"] for s in shapes)], rows)


def fixed_rate_line(res: dict[str, Any]) -> str:
    parts = []
    rounds = 1  # runs before the fixed rate had rounds hold one
    for shape, rows in res.get("fixed_rate", {}).items():
        b, n, aa = rows.get("beacon-file", {}), rows.get("nginx", {}), rows.get(CONTROL, {})
        if "latency_us" in b and "latency_us" in n:
            rounds = max(rounds, b.get("rounds", 1))
            parts.append(
                f"{res['shapes'][shape]['label']} {b['latency_us']['p99'] / 1000:.2f} ms vs "
                f"{n['latency_us']['p99'] / 1000:.2f} ms"
                + (
                    f" (a second nginx {aa['latency_us']['p99'] / 1000:.2f} ms)"
                    if aa.get("latency_us")
                    else ""
                )
            )
    rate = res["settings"]["rate"]
    of = f" (median of {rounds} rounds)" if rounds > 1 else ""
    own = own_p99_note(res)
    return (
        f"p99 at {rate:,.0f} req/s{of}, beacon file vs nginx: "
        + "; ".join(parts)
        + "."
        + (f" {own}" if own else "")
        if parts
        else ""
    )


#: A round that lost more of the server's CPU than this to the hypervisor makes the run noisy.
NOISY_STEAL_PCT = 5.0


def max_steal(res: dict[str, Any]) -> tuple[float, str] | None:
    """The largest share of the server's CPU the hypervisor took in one throughput round,
    and that round's shape, or None if the run did not record it."""
    found = [
        (r["steal_pct"], res["shapes"][shape]["label"])
        for shape, rows in res.get("rounds", {}).items()
        for rounds in rows.values()
        for r in rounds
        if r.get("steal_pct") is not None
    ]
    return max(found) if found else None


def noise_note(res: dict[str, Any]) -> str:
    """What the host did to the run: its load average and, past NOISY_STEAL_PCT, the worst
    steal."""
    h = res["host"]
    load = h.get("loadavg_1min", {})
    text = f" 1-min load average up to {load['max']:.1f}" if load else ""
    noisy = bool(load) and load["max"] > h["cores"] + 0.5
    steal = max_steal(res)
    if steal is not None and steal[0] > NOISY_STEAL_PCT:
        pct, shape = steal
        text += f"; the hypervisor took up to {pct:.1f}% of the server's CPU in a {shape} round"
        noisy = True
    if noisy:
        return (
            text
            + ": a shared, busy machine, so these figures are noisy (see the rounds in the JSON)."
        )
    return text + "."


def section(res: dict[str, Any], path: Path) -> str:
    h, st = res["host"], res["settings"]
    lines = [
        BEGIN,
        f"Latest full run: **{res['date'][:10]}** on {h['summary']}; beacon {h['beacon_git']};"
        f" `{path.relative_to(REPO)}` (and `.txt`, the printed tables)." + noise_note(res),
        "",
        f"Medians of {st['rounds']} alternating rounds, {st['duration_s']} s measured for the"
        f" bare GET and {st['shape_duration_s']} s for the other shapes; server on CPU "
        f"{st['server_cpu']}, wrk on CPU {st['client_cpu']} (the 2-worker rows unpinned).",
        "",
        *throughput_table(res),
        "",
        *targets_table(res),
    ]
    fixed = fixed_rate_line(res)
    return "\n".join([*lines, *(["", fixed] if fixed else []), END])


def update(text: str, new: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} markers")
    return text[:start] + new + text[end + len(END) :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", type=Path, help="a results JSON (default: latest full run)")
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is not up to date")
    a = ap.parse_args()
    path = (a.results or latest_full() or Path()).resolve()
    if not path.is_file():
        raise SystemExit("bench-readme: no full run in bench/results/ (make bench-load)")
    res = json.loads(path.read_text())
    old = README.read_text()
    new = update(old, section(res, path))
    if a.check:
        raise SystemExit(0 if new == old else 1)
    README.write_text(new)
    print(f"bench-readme: README.md's Benchmarks section now shows {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
