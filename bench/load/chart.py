"""Draws the load benchmark's PNG: throughput per request shape (grouped bars, each round a
dot, ratio to nginx on the same shape), the 2-worker pair, p99 under full load, and the
fixed-rate run's p99 per shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
from bench.load.servers import CONTROL

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLORS = {
    "beacon-file": "#1f77b4",
    "beacon-kafka": "#17becf",
    "nginx": "#2ca02c",
    "python-ref": "#ff7f0e",
    "beacon-workers2": "#9467bd",
    "nginx-workers2": "#8c564b",
    CONTROL: "#98df8a",
}
PINNED = ("beacon-file", "beacon-kafka", "nginx", "python-ref")
MULTI = ("beacon-workers2", "nginx-workers2")


def _cells(results: dict[str, Any], rows: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """{shape: {row: summary}} for the rows that ran."""
    return {
        shape: {r: cells[r] for r in rows if r in cells and "unavailable" not in cells[r]}
        for shape, cells in results["summary"].items()
    }


def grouped(
    ax: Axes,
    results: dict[str, Any],
    data: dict[str, dict[str, float]],
    rows: tuple[str, ...],
    note: dict[str, dict[str, str]] | None = None,
    dots: dict[str, dict[str, list[float]]] | None = None,
) -> None:
    """Bars: one group per shape, one bar per row, a text above each bar."""
    shapes = list(data)
    present = [r for r in rows if any(r in data[s] for s in shapes)]
    width = 0.8 / max(1, len(present))
    labels = results["rows"]
    for i, row in enumerate(present):
        xs = [j + (i - (len(present) - 1) / 2) * width for j in range(len(shapes))]
        ys = [data[s].get(row, 0.0) for s in shapes]
        ax.bar(xs, ys, width, label=labels.get(row, row), color=COLORS.get(row, "grey"))
        for x, s, y in zip(xs, shapes, ys, strict=True):
            rounds = (dots or {}).get(s, {}).get(row, [])
            ax.plot([x] * len(rounds), rounds, "k.", ms=3)
            text = (note or {}).get(s, {}).get(row)
            if text and y:
                top = max([y, *rounds])
                ax.annotate(
                    text,
                    (x, top),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(shapes)), [results["shapes"][s]["label"] for s in shapes])
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    ax.margins(y=0.45)  # room for the legend above the bars


def _ratio_notes(cells: dict[str, dict[str, Any]], base: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for shape, rows in cells.items():
        b = rows.get(base, {}).get("rps")
        out[shape] = {
            r: (f"{m['rps'] / 1000:.0f}k" if r == base else f"{m['rps'] / b:.2f}x")
            for r, m in rows.items()
            if b
        }
    return out


def throughput_panel(ax: Axes, results: dict[str, Any], rows: tuple[str, ...], base: str) -> None:
    cells = _cells(results, rows)
    rps = {s: {r: m["rps"] for r, m in c.items()} for s, c in cells.items()}
    dots = {s: {r: m["rps_rounds"] for r, m in c.items()} for s, c in cells.items()}
    grouped(ax, results, rps, rows, _ratio_notes(cells, base), dots)
    ax.set_ylabel("requests/s (median; dots: rounds)")


def p99_panel(ax: Axes, results: dict[str, Any]) -> None:
    cells = _cells(results, PINNED)
    p99 = {s: {r: m["p99_us"] / 1000 for r, m in c.items()} for s, c in cells.items()}
    notes = {s: {r: f"{v:.1f}" for r, v in c.items()} for s, c in p99.items()}
    grouped(ax, results, p99, PINNED, notes)
    ax.set_yscale("log")
    ax.set_ylabel("p99 latency, ms (log)")
    ax.set_title("p99 at full load (wrk --latency, medians)")


def fixed_panel(ax: Axes, results: dict[str, Any]) -> None:
    fixed = {
        s: {r: v["latency_us"]["p99"] / 1000 for r, v in rows.items() if "latency_us" in v}
        for s, rows in results.get("fixed_rate", {}).items()
    }
    st = results["settings"]
    if not any(fixed.values()):
        ax.text(0.5, 0.5, "fixed-rate run not done", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    notes: dict[str, dict[str, str]] = {}
    for s, rows in fixed.items():
        n = rows.get("nginx")
        notes[s] = {
            r: (f"{v:.2f}ms" if r == "nginx" or not n else f"{v / n:.2f}x") for r, v in rows.items()
        }
    grouped(ax, results, fixed, ("beacon-file", "nginx", CONTROL), notes)
    ax.set_ylabel("p99 latency, ms (from scheduled send)")
    ax.set_title(
        f"Fixed rate {st['rate']:,.0f} req/s, {st['rate_duration_s']} s a round, open loop: p99"
    )


def draw(results: dict[str, Any], path: Path) -> Path:
    st = results["settings"]
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    throughput_panel(axes[0][0], results, PINNED, "nginx")
    axes[0][0].set_title(
        f"Throughput, pinned (server CPU {st['server_cpu']}, wrk CPU {st['client_cpu']}), "
        f"{st['rounds']} round(s); ratio to nginx"
    )
    if any(_cells(results, MULTI).values()):
        throughput_panel(axes[0][1], results, MULTI, "nginx-workers2")
        axes[0][1].set_title("2 workers each, unpinned: wrk shares the cores; ratio to nginx")
    else:
        axes[0][1].set_axis_off()
    p99_panel(axes[1][0], results)
    fixed_panel(axes[1][1], results)
    missing = sorted(
        {
            results["rows"].get(r, r)
            for c in results["summary"].values()
            for r, m in c.items()
            if "unavailable" in m
        }
    )
    if missing:
        fig.text(0.01, 0.005, "unavailable: " + ", ".join(missing), fontsize=8, color="grey")
    mode = "quick mode; " if st["quick"] else ""
    h = results["host"]
    fig.suptitle(
        f"beacon load benchmark, {results['date']} ({mode}{h['cpu_model']}, {h['cores']} CPUs,"
        f" Linux {h['kernel']}; beacon {h['beacon_git']})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
