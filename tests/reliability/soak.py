"""The soak run (`make soak`; not collected by pytest, not in CI): a steady paced load with both
backends for 30 minutes, the Kafka broker restarted every 5 minutes, /stats sampled every 30 s.

Prints RSS over time and whether it stayed flat (mean of the first 5 minutes against the last
5), GC pauses (avg/max), and the loss figures; exits 1 if anything was lost or duplicated or
RSS grew. Run from tests/: `python -m reliability.soak`. Environment: BEACON_SOAK_MINUTES (30),
BEACON_SOAK_RATE (500 req/s), BEACON_SOAK_RESTART_S (300), BEACON_SOAK_SAMPLE_S (30),
BEACON_SOAK_WINDOW_S (300, the first/last window compared), BEACON_RELIABILITY_OUT (a results
file to append the row to)."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from conftest import FAST_RESTART_PROPS
from reliability.common import (
    Row,
    append_row,
    beacon_config,
    feeder_summary,
    requests,
    scan_files,
    scan_kafka,
    wait_spool_empty,
)
from support.admin import stats
from support.beacon_server import BeaconServer
from support.kafka_broker import KafkaBroker
from support.load import BackgroundLoad

#: RSS may end this much above the first window's mean and still count as flat.
RSS_SLACK = 1.10
RSS_SLACK_BYTES = 8 << 20


@dataclass
class Sample:
    t_s: float
    rss_bytes: int
    gc_pauses: int
    gc_avg_us: float
    gc_max_us: float


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def sample(srv: BeaconServer, t0: float) -> Sample:
    st = stats(srv.admin_port)
    gc = st["gc"]
    return Sample(
        t_s=time.monotonic() - t0,
        rss_bytes=int(st["memory"]["rss_bytes"]),
        gc_pauses=int(gc["pauses"]),
        gc_avg_us=float(gc["pause_avg_us"]),
        gc_max_us=float(gc["pause_max_us"]),
    )


def mean(xs: list[int]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def main() -> int:
    minutes = env_float("BEACON_SOAK_MINUTES", 30)
    rate = env_float("BEACON_SOAK_RATE", 500)
    restart_s = env_float("BEACON_SOAK_RESTART_S", 300)
    sample_s = env_float("BEACON_SOAK_SAMPLE_S", 30)
    window_s = min(env_float("BEACON_SOAK_WINDOW_S", 300), minutes * 60 / 3)
    duration = minutes * 60
    work = Path(tempfile.mkdtemp(prefix="beacon-soak-"))
    print(
        f"soak: {minutes:g} min at {rate:g} req/s, broker restart every {restart_s:g} s, "
        f"samples every {sample_s:g} s; work dir {work}",
        flush=True,
    )
    broker = KafkaBroker(work / "kafka", props=FAST_RESTART_PROPS)
    broker.start()
    topic = f"soak-{uuid.uuid4().hex[:8]}"
    srv = BeaconServer(work / "srv", beacon_config(topic, broker.bootstrap)).start()
    samples: list[Sample] = []
    restarts = 0
    try:
        t0 = time.monotonic()
        load = BackgroundLoad("127.0.0.1", srv.port, requests(), connections=8, rate=rate)
        load.start()
        next_sample, next_restart = t0, t0 + restart_s
        while time.monotonic() < t0 + duration:
            now = time.monotonic()
            if now >= next_sample:
                s = sample(srv, t0)
                samples.append(s)
                print(
                    f"  t={s.t_s:7.0f}s  rss={s.rss_bytes / 2**20:7.1f} MiB  "
                    f"gc pauses={s.gc_pauses} avg={s.gc_avg_us:.0f}us max={s.gc_max_us:.0f}us",
                    flush=True,
                )
                next_sample += sample_s
            if now >= next_restart:
                t_r = time.monotonic()
                broker.restart()
                restarts += 1
                print(
                    f"  t={t_r - t0:7.0f}s  broker restarted ({time.monotonic() - t_r:.1f}s)",
                    flush=True,
                )
                next_restart += restart_s
            time.sleep(max(0.0, min(next_sample, next_restart) - time.monotonic()))
        result = load.stop()
        samples.append(sample(srv, t0))
        elapsed = time.monotonic() - t0
        in_kafka = scan_kafka(broker.bootstrap, topic, result.sent, timeout_s=600)
        left = wait_spool_empty(srv, "kafka", 600)
        code = srv.stop(signal.SIGTERM)
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
        if broker.is_running():
            broker.stop()
    files = scan_files([srv.data_dir])
    sent_ids = set(range(result.sent))
    lost = len(sent_ids - set(files.ids)) + len(sent_ids - set(in_kafka))
    dup_kafka = sum(c - 1 for c in in_kafka.values())
    first = [s.rss_bytes for s in samples if s.t_s <= window_s]
    last = [s.rss_bytes for s in samples if s.t_s >= samples[-1].t_s - window_s]
    flat = mean(last) <= mean(first) * RSS_SLACK + RSS_SLACK_BYTES
    final = samples[-1]
    print(
        f"\nRSS: first {window_s:.0f}s mean {mean(first) / 2**20:.1f} MiB, last {window_s:.0f}s "
        f"mean {mean(last) / 2**20:.1f} MiB, max {max(s.rss_bytes for s in samples) / 2**20:.1f}"
        f" MiB: {'flat' if flat else 'GREW'}\n"
        f"GC: {final.gc_pauses} pauses, avg {final.gc_avg_us:.0f} us, max {final.gc_max_us:.0f}"
        f" us\nload: sent {result.sent}, statuses {dict(result.statuses)}, errors "
        f"{result.errors[:3]}; broker restarts {restarts}\n"
        f"in files {len(files.ids)} (dup {files.duplicates}, torn {len(files.torn)}), in kafka "
        f"{len(in_kafka)} (dup {dup_kafka}), lost {lost}, spool left {left}; "
        f"{feeder_summary(srv.log())}; exit code {code}"
    )
    row = Row(
        fault=f"soak {minutes:g} min, broker restart every {restart_s:g}s",
        sent=result.sent,
        accepted=result.statuses.get(200, 0),
        in_files=len(files.ids),
        in_kafka=len(in_kafka),
        dup_kafka=dup_kafka,
        dup_files=files.duplicates,
        lost=lost,
        failed=result.sent - result.statuses.get(200, 0),
        seconds=round(elapsed, 1),
        notes=f"RSS {mean(first) / 2**20:.1f} -> {mean(last) / 2**20:.1f} MiB "
        f"({'flat' if flat else 'grew'}); GC avg {final.gc_avg_us:.0f} us max "
        f"{final.gc_max_us:.0f} us",
    )
    out = os.environ.get("BEACON_RELIABILITY_OUT")
    if out:
        append_row(Path(out), row)
    ok = (
        code == 0
        and lost == 0
        and dup_kafka == 0
        and files.duplicates == 0
        and not files.torn
        and not left
        and flat
        and result.statuses == {200: result.sent}
    )
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
