"""Medians over rounds, per shape and row, and issue 13's targets judged on them."""

from __future__ import annotations

import statistics
from typing import Any

from bench.load.servers import CONTROL

_UNITS = {"_ns": 1e-3, "_us": 1.0, "_ms": 1e3, "_seconds": 1e6, "_s": 1e6}

# Issue 13, item 2: the figures beacon must reach on every shape (printed, never asserted).
FILE_RATIO = 0.8
KAFKA_RATIO = 0.7
P99_RATIO = 1.2
RSS_MB = 60.0
GC_AVG_US = 100.0
KAFKA_KEEPS_UP = 0.99  # delivered/s over accepted/s
BEACON_ROWS = ("beacon-file", "beacon-kafka")
#: What the p99 target's second figure is (the printed targets and the README's line say it).
OWN_P99 = (
    "\"nginx's own\" is a second, identical nginx's p99 over the first's in the same fixed-rate"
    " run: how far apart two copies of one server land on this host."
)


def own_p99_note(res: dict[str, Any]) -> str:
    """OWN_P99 for a run whose fixed-rate runs had the control row, else "" (older runs)."""
    return OWN_P99 if any(CONTROL in rows for rows in res.get("fixed_rate", {}).values()) else ""


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def gc_summary(gc: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(avg, max) GC pause in µs from beacon's /stats `gc` object, found by name: a key (or
    nested key path) with avg/mean or max in it and a unit suffix (_ns, _us, _ms, _s)."""
    if not gc:
        return None, None
    avg = mx = None
    for path, v in _flatten(gc).items():
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        parts = path.lower().split(".")
        unit = next((f for part in parts for suf, f in _UNITS.items() if part.endswith(suf)), None)
        if unit is None or "window" in path or "last" in path:
            continue
        if any(w in part for part in parts for w in ("avg", "mean", "average")):
            avg = v * unit
        elif any("max" in part for part in parts):
            mx = v * unit
    return avg, mx


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _med_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return med(values) if values else None


def feeder_us_per_message(r: dict[str, Any]) -> float | None:
    """CPU time of the Kafka feeder thread per message delivered over the measured run, in
    µs: what the Kafka backend costs the server's core. The feeder is the Python thread
    other than the main one that works (`python`: the executor's threads idle meanwhile;
    Python 3.11 names no thread)."""
    cpu = r.get("thread_cpu_s", {}).get("python")
    delivered = r.get("kafka_delivered_per_s")
    if cpu is None or not delivered:
        return None
    return float(cpu) / (float(delivered) * float(r["duration_us"]) / 1e6) * 1e6


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One (shape, row) cell: medians of the rounds (max for RSS and GC max)."""
    ok = [r for r in runs if "unavailable" not in r]
    if not ok:
        return {"unavailable": runs[0]["unavailable"] if runs else "not run"}
    gcs = [gc_summary(r.get("gc")) for r in ok]
    avgs = [a for a, _ in gcs if a is not None]
    maxes = [m for _, m in gcs if m is not None]
    stored = [r for r in ok if r["lines_written"] is not None]
    lat = {k: med([r["latency_us"][k] for r in ok]) for k in ("p50", "p90", "p99", "p99.9", "max")}
    return {
        "rps": med([r["rps"] for r in ok]),
        "rps_rounds": [r["rps"] for r in ok],
        "p50_us": lat["p50"],
        "p90_us": lat["p90"],
        "p99_us": lat["p99"],
        "p999_us": lat["p99.9"],
        "max_us": lat["max"],
        "rss_mb": max(r["rss_max_mb"] for r in ok),
        "gc_avg_us": med(avgs) if avgs else None,
        "gc_max_us": max(maxes) if maxes else None,
        "errors": sum(sum(r["errors"].values()) for r in ok),
        # None: the server does not store this shape (nginx and a POST body).
        "kept_up": all(r["lines_written"] >= r["answered_ok"] for r in stored) if stored else None,
        "lines_vs_answered": [(r["lines_written"], r["answered_ok"]) for r in stored],
        "cors": all(r["probe"]["cors"] for r in ok),
        "kafka_backlog": [r["kafka_backlog"] for r in ok if "kafka_backlog" in r],
        "accepted_per_s": _med_of(ok, "accepted_per_s"),
        "kafka_delivered_per_s": _med_of(ok, "kafka_delivered_per_s"),
        "feeder_us_per_msg": [
            round(f, 2) for r in ok if (f := feeder_us_per_message(r)) is not None
        ],
        "loadavg_1min_max": max(max(r.get("loadavg_1min", [0.0])) for r in ok),
        "steal_pct": [round(r["steal_pct"], 1) for r in ok if r.get("steal_pct") is not None],
    }


def summarize_fixed(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One server's fixed-rate rounds on one shape: the median of each latency figure over
    the rounds (the max of the maxima), each round's p99 kept beside it. A single round's
    p99 at 1,000 req/s is its worst 1%, which one neighbour's burst on a shared host sets."""
    ok = [r for r in runs if "unavailable" not in r]
    if not ok:
        return {"unavailable": runs[0]["unavailable"] if runs else "not run"}

    def med_of(key: str) -> dict[str, float]:
        figures = ok[0][key].keys()
        out = {k: med([r[key][k] for r in ok]) for k in figures if k != "max"}
        if "max" in figures:
            out["max"] = max(r[key]["max"] for r in ok)
        return out

    return {
        "rounds": len(ok),
        "achieved_rate": med([r["achieved_rate"] for r in ok]),
        "errors": sum(r["errors"] for r in ok),
        "latency_us": med_of("latency_us"),
        "service_latency_us": med_of("service_latency_us"),
        "send_lag_us": med_of("send_lag_us"),
        "p99_rounds_us": [r["latency_us"]["p99"] for r in ok],
        "rss_max_mb": max(r["rss_max_mb"] for r in ok),
    }


def ratio(cells: dict[str, Any], row: str, base: str) -> float | None:
    """Median req/s of `row` over `base`'s on the same shape (None if either did not run)."""
    a, b = cells.get(row, {}).get("rps"), cells.get(base, {}).get("rps")
    return a / b if a and b else None


def _target(name: str, value: float | None, met: bool | None, text: str) -> dict[str, Any]:
    return {"target": name, "value": value, "met": met if value is not None else None, "text": text}


def targets(cells: dict[str, Any], fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's item 2 on one shape: each target with the run's figure and met/not met
    (met None: not measured in this run)."""
    out = []
    f = ratio(cells, "beacon-file", "nginx")
    out.append(
        _target(
            f"beacon file >= {FILE_RATIO}x nginx",
            f,
            f is not None and f >= FILE_RATIO,
            f"{f:.2f}x" if f else "n/a",
        )
    )
    k = ratio(cells, "beacon-kafka", "nginx")
    out.append(
        _target(
            f"file + Kafka >= {KAFKA_RATIO}x nginx",
            k,
            k is not None and k >= KAFKA_RATIO,
            f"{k:.2f}x" if k else "n/a",
        )
    )
    p99, aa = _p99_ratio(fixed, "beacon-file"), _p99_ratio(fixed, CONTROL)
    out.append(
        _target(
            f"p99 at fixed rate <= {P99_RATIO}x nginx's",
            p99,
            p99 is not None and p99 <= P99_RATIO,
            (f"{p99:.2f}x" if p99 else "n/a") + (f"; nginx's own {aa:.2f}x" if p99 and aa else ""),
        )
    )
    rss = [cells[r]["rss_mb"] for r in BEACON_ROWS if "rss_mb" in cells.get(r, {})]
    top = max(rss) if rss else None
    out.append(
        _target(
            f"RSS < {RSS_MB:.0f} MB",
            top,
            top is not None and top < RSS_MB,
            f"{top:.1f} MB" if top is not None else "n/a",
        )
    )
    gcs = [cells[r]["gc_avg_us"] for r in BEACON_ROWS if cells.get(r, {}).get("gc_avg_us")]
    gc = max(gcs) if gcs else None
    out.append(
        _target(
            f"GC avg pause < {GC_AVG_US:.0f} µs",
            gc,
            gc is not None and gc < GC_AVG_US,
            f"{gc:.0f} µs" if gc is not None else "n/a",
        )
    )
    out.append(_kafka_target(cells.get("beacon-kafka", {})))
    return out


def _p99_ratio(fixed: dict[str, Any], row: str) -> float | None:
    """`row`'s fixed-rate p99 over nginx's; for the control row (a second nginx), the ratio
    two identical servers printed in this run: its noise floor."""
    b, n = fixed.get(row, {}), fixed.get("nginx", {})
    if "latency_us" not in b or "latency_us" not in n or not n["latency_us"]["p99"]:
        return None
    return float(b["latency_us"]["p99"] / n["latency_us"]["p99"])


def _kafka_target(k: dict[str, Any]) -> dict[str, Any]:
    """Kafka keeps up: delivered/s >= 99% of accepted/s over the measured runs (medians)."""
    acc, dlv = k.get("accepted_per_s"), k.get("kafka_delivered_per_s")
    if not acc or dlv is None:
        return _target("Kafka keeps up", None, None, "n/a")
    share = dlv / acc
    return _target(
        "Kafka keeps up", share, share >= KAFKA_KEEPS_UP, f"{100 * share:.1f}% delivered"
    )
