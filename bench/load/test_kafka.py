"""The broker's placement (kafka.py): every thread of a real multi-threaded process, pinned to
wrk's CPU at idle priority, as the file + Kafka row runs the broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.load.kafka import pin_broker

# A stand-in for the JVM: a process with a second thread, both waiting.
TWO_THREADS = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start()"


def test_every_thread_of_the_broker_is_pinned_at_idle_priority(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", TWO_THREADS])
    try:
        tasks = Path(f"/proc/{proc.pid}/task")
        while len(list(tasks.iterdir())) < 2:
            time.sleep(0.01)
        (tmp_path / "kafka.pid").write_text(f"{proc.pid}\n")
        cpu = str(max(os.sched_getaffinity(0)))

        note = pin_broker(tmp_path, cpu)

        assert note.endswith("at idle priority (SCHED_IDLE: it runs when wrk waits)."), note
        for task in tasks.iterdir():
            tid = int(task.name)
            assert os.sched_getaffinity(tid) == {int(cpu)}
            assert os.sched_getscheduler(tid) == os.SCHED_IDLE
    finally:
        proc.kill()
        proc.wait()


def test_without_a_pid_file_the_report_says_the_broker_is_unpinned(tmp_path: Path) -> None:
    assert pin_broker(tmp_path, "1").startswith("Kafka broker unpinned (no pid file")
    assert pin_broker(tmp_path, None) == "Kafka broker (JVM) unpinned on this machine."
