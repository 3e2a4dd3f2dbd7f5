"""A real single-node Kafka broker for tests, driven through ``scripts/kafka``.

Usage::

    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    ...  # use broker.bootstrap with confluent_kafka
    broker.stop()      # graceful; broker.start()/restart() brings it back on the same port
    broker.kill()      # SIGKILL, for fault-injection tests

The broker keeps its data, ports and logs (``<workdir>/logs/server.log``) in ``workdir``, so a
restart with the same ``KafkaBroker`` keeps every topic and message.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka"

_BOOTSTRAP_RE = re.compile(r"^bootstrap=(\S+):(\d+)$", re.MULTILINE)


class KafkaBrokerError(RuntimeError):
    """``scripts/kafka`` failed; the message carries its output."""


class KafkaBroker:
    """A KRaft single-node broker in ``workdir``, listening on 127.0.0.1:``port``.

    ``port=None`` lets the script pick a free port on the first start; later starts reuse it.
    ``props`` are extra ``server.properties`` entries (e.g. ``{"log.retention.ms": "60000"}``).
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        props: Mapping[str, str] | None = None,
        start_timeout_s: float = 180.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port
        self.props = dict(props or {})
        self.start_timeout_s = start_timeout_s
        self._host: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Start the broker (fetching the jars on first use); returns the bootstrap address."""
        args = ["start", "--dir", str(self.workdir)]
        if self.port is not None:
            args += ["--port", str(self.port)]
        for key, value in self.props.items():
            args += ["--prop", f"{key}={value}"]
        out = self._run(*args, timeout_s=self.start_timeout_s + 300.0)
        match = _BOOTSTRAP_RE.search(out)
        if match is None:
            raise KafkaBrokerError(f"scripts/kafka start printed no bootstrap line:\n{out}")
        self._host = match.group(1)
        self.port = int(match.group(2))
        return self.bootstrap

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM, SIGKILL after the script's timeout)."""
        self._run("stop", "--dir", str(self.workdir), timeout_s=180.0)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would."""
        self._run("kill", "--dir", str(self.workdir), timeout_s=60.0)

    def restart(self) -> str:
        """Stop (if running) and start again with the same directory and port."""
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        proc = subprocess.run(
            [str(KAFKA_SCRIPT), "status", "--dir", str(self.workdir)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return proc.returncode == 0

    @property
    def bootstrap(self) -> str:
        if self.port is None or self._host is None:
            raise KafkaBrokerError("broker has not been started")
        return f"{self._host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "logs" / "server.log"

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _run(self, *args: str, timeout_s: float) -> str:
        proc = subprocess.run(
            [str(KAFKA_SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if proc.returncode != 0:
            raise KafkaBrokerError(
                f"scripts/kafka {' '.join(args)} failed with exit code {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc.stdout


def consume_all(
    bootstrap: str,
    topic: str,
    expected_count: int | None = None,
    timeout_s: float = 60.0,
    *,
    idle_s: float = 5.0,
) -> list[Message]:
    """Read ``topic`` from the beginning with a fresh consumer group.

    Returns once ``expected_count`` messages have arrived, or, when ``expected_count`` is None or
    not reached, once no message has arrived for ``idle_s`` seconds after partitions were
    assigned. Never waits longer than ``timeout_s`` overall. Raises on consumer errors other
    than end-of-partition and a not-yet-existing topic.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"consume-all-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "session.timeout.ms": 10000,
        }
    )
    assigned_at: list[float] = []

    def on_assign(_consumer: Consumer, partitions: list[object]) -> None:
        if partitions and not assigned_at:
            assigned_at.append(time.monotonic())

    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    last_progress: float | None = None
    try:
        consumer.subscribe([topic], on_assign=on_assign)
        while time.monotonic() < deadline:
            if expected_count is not None and len(messages) >= expected_count:
                break
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            now = time.monotonic()
            for msg in batch:
                err = msg.error()
                if err is None:
                    messages.append(msg)
                    last_progress = now
                elif err.code() in (
                    KafkaError._PARTITION_EOF,
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                ):
                    continue
                else:
                    raise KafkaException(err)
            if assigned_at:
                since = max(assigned_at[0], last_progress or 0.0)
                if now - since >= idle_s:
                    break
    finally:
        consumer.close()
    return messages
