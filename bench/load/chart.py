"""Draws the load benchmark's PNG: throughput bars (median, each round as a dot, ratio to
nginx), latency percentiles under load (log scale), and the fixed-rate run's latencies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {
    "beacon-file": "#1f77b4",
    "beacon-kafka": "#17becf",
    "beacon-workers2": "#9467bd",
    "nginx": "#2ca02c",
    "python-ref": "#ff7f0e",
}


def draw(results: dict[str, Any], labels: dict[str, str], path: Path) -> Path:
    summary = {k: v for k, v in results["summary"].items() if "unavailable" not in v}
    names = list(summary)
    st = results["settings"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.8), gridspec_kw={"width_ratios": [1.1, 1.3, 1]})

    ax = axes[0]
    nginx = summary.get("nginx", {}).get("rps")
    xs = range(len(names))
    bars = ax.bar(
        xs,
        [summary[n]["rps"] for n in names],
        color=[COLORS.get(n, "grey") for n in names],
    )
    for x, n in zip(xs, names, strict=True):
        rounds = summary[n]["rps_rounds"]
        ax.plot([x] * len(rounds), rounds, "k.", ms=5)
    for bar, n in zip(bars, names, strict=True):
        rps = summary[n]["rps"]
        text = f"{rps / 1000:.1f}k" + (f"\n{rps / nginx:.2f}x nginx" if nginx else "")
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, max(rps, *summary[n]["rps_rounds"])),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_xticks(list(xs), [labels[n].replace(" ", "\n", 1) for n in names], fontsize=9)
    ax.set_ylabel("requests/s (median; dots: rounds)")
    ax.set_title(f"Throughput, wrk -c{st['connections']}, {st['duration_s']} s x {st['rounds']}")
    ax.margins(y=0.18)

    ax = axes[1]
    pct = [("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"), ("p99.9", "p999_us")]
    pct.append(("max", "max_us"))
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        ax.bar(
            [j + i * width for j in range(len(pct))],
            [summary[n][k] / 1000 for _, k in pct],
            width,
            label=labels[n],
            color=COLORS.get(n, "grey"),
        )
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(pct))], [p for p, _ in pct])
    ax.set_yscale("log")
    ax.set_ylabel("latency, ms (log)")
    ax.set_title("Latency at full load (wrk --latency, medians)")
    ax.legend(fontsize=8)

    ax = axes[2]
    fixed = {k: v for k, v in results.get("fixed_rate", {}).items() if "unavailable" not in v}
    if fixed:
        keys = ["p50", "p90", "p99", "p99.9", "max"]
        width = 0.8 / len(fixed)
        for i, (n, r) in enumerate(fixed.items()):
            ax.bar(
                [j + i * width for j in range(len(keys))],
                [r["latency_us"][k] / 1000 for k in keys],
                width,
                label=labels.get(n, n),
                color=COLORS.get(n, "grey"),
            )
        ax.set_xticks([j + width * (len(fixed) - 1) / 2 for j in range(len(keys))], keys)
        ax.axhline(1.0, color="red", lw=0.8, ls="--", label="1 ms target (p99)")
        ax.set_yscale("log")
        ax.set_ylabel("latency, ms (log)")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "fixed-rate run not done", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(f"Fixed rate {st['rate']:,.0f} req/s, {st['rate_duration_s']} s, open loop")

    missing = [labels.get(n, n) for n, v in results["summary"].items() if "unavailable" in v]
    if missing:
        fig.text(0.01, 0.01, "unavailable: " + ", ".join(missing), fontsize=8, color="grey")
    mode = "quick mode, " if st["quick"] else ""
    fig.suptitle(
        f"beacon load benchmark, {results['date']} ({mode}{results['machine']['nproc']} CPUs,"
        f" server CPU {st['server_cpu']}, wrk CPU {st['client_cpu']})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
