"""A broker stall under load, and what it does to a file + Kafka server's memory
(docs/performance.md, "Memory"; `make bench-stall`).

The load benchmark's pinning (server on CPU 0; wrk and the broker, at idle priority, on CPU
1), wrk's bare GET for `--seconds`; `--stall-at` seconds in, every broker thread is stopped
(SIGSTOP) for `--stall` seconds, so librdkafka's buffer fills, the rest spools, and the
spool is replayed once the broker is back. Prints the server's peak RSS (sampled every
0.1 s), its RSS at the end and what the Kafka sink spooled and replayed. Compare builds by
running it on each, alternating: the host's noise is larger than one run.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path

from bench.load.clients import wrk
from bench.load.kafka import WithBroker, broker_dir, broker_pid, with_broker
from bench.load.procs import RssSampler, tree_rss_kb
from bench.load.servers import Beacon
from bench.load.shapes import SHAPES


def broker_signal(tmp: Path, sig: int) -> None:
    """Sends `sig` to the broker's JVM (SIGSTOP stops all its threads at once)."""
    os.kill(int(broker_pid(broker_dir(tmp))), sig)


def stall_later(tmp: Path, at_s: float, for_s: float) -> threading.Thread:
    def run() -> None:
        time.sleep(at_s)
        broker_signal(tmp, signal.SIGSTOP)
        try:
            time.sleep(for_s)
        finally:
            broker_signal(tmp, signal.SIGCONT)

    return threading.Thread(target=run, daemon=True)


def measure(w: WithBroker, a: argparse.Namespace) -> None:
    """One server under wrk with the broker stalled once; prints what it did."""
    srv = Beacon(w.reaper, bootstrap=w.bootstrap)
    srv.start(w.tmp / "beacon", "0")
    stall = stall_later(w.tmp, a.stall_at, a.stall)
    with RssSampler(srv.pid) as rss:
        stall.start()
        r = wrk(srv.port, SHAPES["bare"], a.seconds, connections=64, threads=1, cpu="1")
        stall.join()
    end_kb = tree_rss_kb(srv.pid)
    kafka = ((srv.admin_stats() or {}).get("backends") or {}).get("kafka") or {}
    srv.stop()
    print(
        f"bench-stall: {r['rps']:,.0f} req/s; broker stopped {a.stall:g} s at "
        f"{a.stall_at:g} s; RSS peak {rss.max_kb / 1024:.1f} MB, at the end "
        f"{end_kb / 1024:.1f} MB; Kafka spooled {kafka.get('spooled')}, replayed "
        f"{kafka.get('replayed')}, still in the spool {kafka.get('spool_pending')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=40)
    ap.add_argument("--stall-at", type=float, default=6.0)
    ap.add_argument("--stall", type=float, default=3.0)
    a = ap.parse_args()
    with with_broker("bench-stall") as w:
        measure(w, a)


if __name__ == "__main__":
    main()
