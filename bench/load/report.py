"""The printed report: host, one throughput table per request shape, the 2-worker pair,
issue 13's targets per shape, the fixed-rate and idle tables. Built as lines so the same
text is printed and saved (bench/results/<stem>.txt)."""

from __future__ import annotations

from typing import Any

from bench.load.servers import CONTROL
from bench.load.summary import own_p99_note

MULTI = ("beacon-workers2", "nginx-workers2")


def fmt_us(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1000:.2f}ms" if v >= 1000 else f"{v:.0f}µs"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return [line, "-" * len(line), *body]


def host_lines(res: dict[str, Any]) -> list[str]:
    h = res["host"]
    load = h.get("loadavg_1min", {})
    out = [
        f"beacon load benchmark, {res['date']}{' (quick)' if res['settings']['quick'] else ''}:"
        f" beacon {h['beacon_git']}",
        f"Host: {h['summary']}",
    ]
    if "elapsed_s" in res:
        out.append(f"Run time: {res['elapsed_s'] // 60} min {res['elapsed_s'] % 60} s.")
    if load:
        noisy = load["max"] > h["cores"] + 0.5
        out.append(
            f"1-min load average during the run: min {load['min']:.1f}, median "
            f"{load['median']:.1f}, max {load['max']:.1f} on {h['cores']} CPUs (the benchmark "
            f"itself accounts for ~2){': NOISY, other work shared the machine' if noisy else ''}."
        )
    return out


def kept_up_cell(m: dict[str, Any]) -> str:
    if m["kept_up"] is None:
        return "n/a (stores nothing)"
    lines = sum(lw for lw, _ in m["lines_vs_answered"])
    answered = sum(a for _, a in m["lines_vs_answered"])
    return f"{'yes' if m['kept_up'] else 'NO'} {lines}/{answered}"


def throughput_rows(cells: dict[str, Any], labels: dict[str, str], base: str) -> list[list[str]]:
    rows = []
    base_rps = cells.get(base, {}).get("rps")
    for name, m in cells.items():
        if "unavailable" in m:
            rows.append([labels[name], "unavailable", *[""] * 7])
            continue
        gc = f"{fmt_us(m['gc_avg_us'])}/{fmt_us(m['gc_max_us'])}" if m["gc_avg_us"] else ""
        rows.append(
            [
                labels[name],
                f"{m['rps']:,.0f}",
                f"{m['rps'] / base_rps:.2f}x" if base_rps else "n/a",
                fmt_us(m["p50_us"]),
                fmt_us(m["p99_us"]),
                fmt_us(m["max_us"]),
                f"{m['rss_mb']:.1f}",
                gc,
                kept_up_cell(m),
            ]
        )
    return rows


THROUGHPUT_HEADERS = ["server", "req/s", "vs nginx", "p50", "p99", "max", "RSS MB", "GC avg/max"]


def shape_lines(res: dict[str, Any], shape: str, labels: dict[str, str]) -> list[str]:
    st, sh = res["settings"], res["shapes"][shape]
    measured = st["duration_s"] if shape == "bare" else st["shape_duration_s"]
    cells = {k: v for k, v in res["summary"][shape].items() if k not in MULTI}
    out = [
        "",
        f"Throughput, {sh['label']}: {sh['what']} ({sh['bytes']}-byte request, "
        f"{sh['header_bytes']} bytes of header fields).",
        f"  wrk -t{st['threads']} -c{st['connections']} --latency, {st['warmup_s']} s warm-up +"
        f" {measured} s measured, {st['rounds']} round(s) alternating, medians; server on CPU "
        f"{st['server_cpu']}, wrk on CPU {st['client_cpu']}.",
    ]
    if cells:
        out += table([*THROUGHPUT_HEADERS, "kept up"], throughput_rows(cells, labels, "nginx"))
    return out + notes(res, shape, cells, labels)


def notes(
    res: dict[str, Any], shape: str, cells: dict[str, Any], labels: dict[str, str]
) -> list[str]:
    out = [
        f"  {labels[n]}: unavailable: {m['unavailable']}"
        for n, m in cells.items()
        if "unavailable" in m
    ]
    if res["shapes"][shape]["post"]:
        cors = [labels[n] for n, m in cells.items() if "cors" in m and not m["cors"]]
        out.append(
            "  POST: nginx answers `return 204` (CORS headers as beacon's) and stores nothing: its"
            " log line has $args only, not the body."
            + (f" No CORS header from: {', '.join(cors)}." if cors else "")
        )
    loads = [m["loadavg_1min_max"] for m in cells.values() if "loadavg_1min_max" in m]
    if loads:
        out.append(f"  1-min load average around these runs: up to {max(loads):.1f}.")
    steal = [
        f"{labels[n]} {', '.join(f'{p:.1f}' for p in m['steal_pct'])}"
        for n, m in cells.items()
        if m.get("steal_pct")
    ]
    if steal:
        rounds = "; ".join(steal)
        out.append(f"  Server CPU's time the hypervisor took (steal), % each round: {rounds}.")
    k = cells.get("beacon-kafka", {})
    if k.get("kafka_backlog"):
        out.append(
            f"  Kafka backlog at the end of each run: {', '.join(map(str, k['kafka_backlog']))}."
        )
    if k.get("feeder_us_per_msg"):
        per_round = ", ".join(f"{f:.2f}" for f in k["feeder_us_per_msg"])
        out.append(f"  Kafka feeder thread CPU per delivered message, each round: {per_round} µs.")
    return out


def multi_lines(res: dict[str, Any], labels: dict[str, str]) -> list[str]:
    st = res["settings"]
    rows: list[list[str]] = []
    gone: list[str] = []
    for shape, cells in res["summary"].items():
        b, n = cells.get(MULTI[0]), cells.get(MULTI[1])
        if b is None or n is None:
            continue
        if "unavailable" in b or "unavailable" in n:
            why = b.get("unavailable") or n.get("unavailable")
            rows.append([res["shapes"][shape]["label"], "unavailable", *[""] * 6])
            gone.append(f"  {res['shapes'][shape]['label']}: unavailable: {why}")
            continue
        rows.append(
            [
                res["shapes"][shape]["label"],
                f"{b['rps']:,.0f}",
                f"{n['rps']:,.0f}",
                f"{b['rps'] / n['rps']:.2f}x",
                fmt_us(b["p99_us"]),
                fmt_us(n["p99_us"]),
                f"{b['rss_mb']:.1f}",
                kept_up_cell(b),
            ]
        )
    if not rows:
        return []
    return [
        "",
        f"Multi-core: beacon serve --workers 2 vs nginx with worker_processes 2, both unpinned;"
        f" wrk -t2 -c{st['connections']} unpinned too: the load generator SHARES the "
        f"{res['host']['cores']} cores with the server (the pinned tables above give wrk its own).",
        *table(
            [
                "shape",
                "beacon x2 req/s",
                "nginx x2 req/s",
                "ratio",
                "beacon p99",
                "nginx p99",
                "beacon RSS MB",
                "beacon kept up",
            ],
            rows,
        ),
        *gone,
    ]


def target_lines(res: dict[str, Any]) -> list[str]:
    shapes = [s for s in res["targets"]]
    if not shapes:
        return []
    names = [t["target"] for t in res["targets"][shapes[0]]]
    rows = []
    for i, name in enumerate(names):
        row = [name]
        for s in shapes:
            t = res["targets"][s][i]
            verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT met")
            row.append(f"{verdict} ({t['text']})" if t["met"] is not None else "n/a")
        rows.append(row)
    own = own_p99_note(res)
    return [
        "",
        "Issue 13 targets (medians of this run; the aim beyond them: 0.9x nginx, then parity):",
        *table(["target", *(res["shapes"][s]["label"] for s in shapes)], rows),
        *([f"  p99: {own}"] if own else []),
    ]


def fixed_rate_lines(res: dict[str, Any], labels: dict[str, str]) -> list[str]:
    st = res["settings"]
    rows: list[list[str]] = []
    gone: list[str] = []
    for shape, servers in res["fixed_rate"].items():
        for name, r in servers.items():
            label = [res["shapes"][shape]["label"], labels.get(name, name)]
            if "unavailable" in r:
                rows.append([*label, "unavailable", *[""] * 7])
                gone.append(f"  {' / '.join(label)}: unavailable: {r['unavailable']}")
                continue
            lat, svc = r["latency_us"], r["service_latency_us"]
            p99s = r.get("p99_rounds_us", [lat["p99"]])  # runs before rounds had one
            rows.append(
                [
                    *label,
                    f"{r['achieved_rate']:,.0f}",
                    fmt_us(lat["p50"]),
                    fmt_us(lat["p99"]),
                    " ".join(fmt_us(x) for x in p99s),
                    fmt_us(lat["max"]),
                    fmt_us(svc["p99"]),
                    fmt_us(r["send_lag_us"]["p99"]),
                    str(r["errors"]),
                ]
            )
    if not rows:
        return []
    # Runs before the fixed rate had rounds hold one run per server and shape.
    rounds = max(r.get("rounds", 1) for v in res["fixed_rate"].values() for r in v.values())
    return [
        "",
        f"Fixed rate: {st['rate']:,.0f} req/s open loop to each server for "
        f"{st['rate_duration_s']} s, 32 connections each (latency from each request's scheduled"
        " send time: no coordinated omission); beacon and nginx side by side, both on CPU "
        f"{st['server_cpu']}, on one interleaved schedule, so the host's noise falls on both "
        f"alike; {rounds} round(s), medians (max: the largest)."
        + (
            f" {labels[CONTROL]}: a second nginx on the same schedule, the control: what"
            " separates two identical servers here is noise."
            if CONTROL in labels
            else ""
        ),
        *table(
            [
                "shape",
                "server",
                "req/s",
                "p50",
                "p99",
                "p99 each round",
                "max",
                "p99 from send",
                "send delay p99",
                "errors",
            ],
            rows,
        ),
        *gone,
    ]


def idle_lines(res: dict[str, Any], labels: dict[str, str]) -> list[str]:
    rows: list[list[str]] = []
    gone: list[str] = []
    for name, r in res["idle"].items():
        if "unavailable" in r:
            rows.append([labels.get(name, name), "unavailable", "", ""])
            gone.append(f"  {labels.get(name, name)}: unavailable: {r['unavailable']}")
            continue
        rows.append(
            [
                labels.get(name, name),
                f"{r['rss_before_mb']:.1f}",
                f"{r['rss_idle_mb']:.1f}",
                f"{r['kb_per_connection']:.1f}",
            ]
        )
    if not rows:
        return []
    n = res["settings"]["idle_connections"]
    return [
        "",
        f"Idle: {n:,} keep-alive connections open, one bare GET each.",
        *table(["server", "RSS MB before", "RSS MB idle", "KB/conn"], rows),
        *gone,
    ]


def report(res: dict[str, Any]) -> str:
    labels = res["rows"]
    st = res["settings"]
    lines = host_lines(res)
    for shape in res["summary"]:
        lines += shape_lines(res, shape, labels)
    lines += [
        "",
        "  kept up: lines the server wrote (beacon: data dir after shutdown; nginx: access log;"
        " python: its file) / requests answered below 400 (probe + warm-up + measured), summed"
        " over rounds; a few more lines than answers is normal (requests in flight when wrk"
        " stopped).",
    ]
    others = [s for s in res["summary"] if s != "bare"]
    if others and st["shape_duration_s"] != st["duration_s"]:
        lines.append(
            f"  Measured {st['duration_s']} s for the bare GET, {st['shape_duration_s']} s for the"
            " other shapes (shorter: three shapes must not triple the run time)."
        )
    if res.get("kafka_note"):
        lines.append(f"  {res['kafka_note']}")
    lines += multi_lines(res, labels)
    lines += target_lines(res)
    lines += fixed_rate_lines(res, labels)
    lines += idle_lines(res, labels)
    return "\n".join(lines) + "\n"
