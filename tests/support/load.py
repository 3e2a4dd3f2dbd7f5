"""A small HTTP/1.1 load generator for end-to-end tests: keep-alive connections over raw
asyncio sockets, optional pipelining and pacing, every response's status counted.

Usage::

    reqs = ((f"site{i % 3}.test", f"/track?n={i}") for i in range(200_000))
    result = run_load("127.0.0.1", port, reqs, connections=32)
    assert result.statuses == {200: 200_000}

``requests`` is any iterable of ``(host, target)``; the connections share it, so an
unbounded generator works with ``stop`` (a ``threading.Event``) or ``duration_s``. Requests are
sent in order per connection and answered in order (HTTP/1.1), so every request sent is matched
to its status; requests whose connection broke before an answer count as ``unanswered``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    #: requests sent whose connection closed or failed before the answer came
    unanswered: int = 0
    #: up to 100 (host, target, status) of answers other than 200/204, for messages
    refused: list[tuple[str, str, int]] = field(default_factory=list)
    #: connection-level errors (connect refused, reset), as strings
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Pacer:
    """Shared token bucket: at most ``rate`` requests/s over all connections."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.issued = 0

    async def take(self, n: int) -> None:
        if self.rate is None:
            return
        self.issued += n
        due = self.start + self.issued / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _parse_responses(buf: bytearray) -> tuple[list[int], int]:
    """Complete responses at the front of ``buf``: their statuses and the bytes they take."""
    statuses: list[int] = []
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = bytes(buf[pos:end])
        length = 0
        lower = head.lower()
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            j = lower.find(b"\r\n", i + 2)
            length = int(head[i + 17 : j if j >= 0 else len(head)].strip())
        total = end + 4 + length
        if total > len(buf):
            break
        statuses.append(int(head[9:12]))
        pos = total
    return statuses, pos


async def _connection(
    host_addr: str,
    port: int,
    it: Iterator[tuple[str, str]],
    result: LoadResult,
    pacer: _Pacer,
    pipeline: int,
    done: threading.Event,
    deadline: float | None,
    extra_headers: bytes,
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host_addr, port)
    except OSError as e:
        result.errors.append(f"connect: {e}")
        return
    outstanding: list[tuple[str, str]] = []
    buf = bytearray()
    try:
        while True:
            # Fill the pipeline.
            chunk: list[bytes] = []
            while len(outstanding) < pipeline and not done.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    done.set()
                    break
                try:
                    host, target = next(it)
                except StopIteration:
                    done.set()
                    break
                outstanding.append((host, target))
                chunk.append(
                    f"GET {target} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra_headers + b"\r\n"
                )
                if pacer.rate is not None:
                    break  # paced: one request at a time per connection
            if chunk:
                await pacer.take(len(chunk))
                result.sent += len(chunk)
                writer.write(b"".join(chunk))
            if not outstanding:
                return
            data = await reader.read(65536)
            if not data:
                raise ConnectionResetError("server closed the connection")
            buf += data
            statuses, used = _parse_responses(buf)
            del buf[:used]
            for status in statuses:
                host, target = outstanding.pop(0)
                result.statuses[status] += 1
                if status not in (200, 204) and len(result.refused) < 100:
                    result.refused.append((host, target, status))
    except OSError as e:
        result.errors.append(f"{type(e).__name__}: {e}")
        result.unanswered += len(outstanding)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def load(
    host_addr: str,
    port: int,
    requests: Iterable[tuple[str, str]],
    *,
    connections: int = 32,
    pipeline: int = 16,
    rate: float | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    extra_headers: dict[str, str] | None = None,
) -> LoadResult:
    """Sends ``requests`` over ``connections`` keep-alive connections; see the module doc.

    ``pipeline``: requests in flight per connection (1 = plain keep-alive). ``rate``: total
    requests/s (pacing turns pipelining off). Stops when ``requests`` runs out, after
    ``duration_s``, or once ``stop`` is set, always waiting for the answers in flight."""
    result = LoadResult()
    done = stop if stop is not None else threading.Event()
    pacer = _Pacer(rate)
    headers = "".join(f"{k}: {v}\r\n" for k, v in (extra_headers or {}).items()).encode()
    deadline = time.monotonic() + duration_s if duration_s is not None else None
    it = iter(requests)
    t0 = time.monotonic()
    await asyncio.gather(
        *(
            _connection(host_addr, port, it, result, pacer, pipeline, done, deadline, headers)
            for _ in range(connections)
        )
    )
    result.elapsed_s = time.monotonic() - t0
    return result


def run_load(
    host_addr: str, port: int, requests: Iterable[tuple[str, str]], **kwargs: object
) -> LoadResult:
    """Blocking wrapper around :func:`load` (own event loop; uvloop when installed)."""
    try:
        import uvloop

        return uvloop.run(load(host_addr, port, requests, **kwargs))  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(load(host_addr, port, requests, **kwargs))  # type: ignore[arg-type]


class BackgroundLoad:
    """``run_load`` on a thread: ``start()``, later ``stop()`` returns the LoadResult."""

    def __init__(
        self, host_addr: str, port: int, requests: Iterable[tuple[str, str]], **kwargs: object
    ) -> None:
        self._stop = threading.Event()
        self._args = (host_addr, port, requests)
        self._kwargs = {**kwargs, "stop": self._stop}
        self._result: LoadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def _run(self) -> None:
        try:
            self._result = run_load(*self._args, **self._kwargs)
        except BaseException as e:
            self._error = e

    def start(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> LoadResult:
        self._stop.set()
        self._thread.join(timeout_s)
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise TimeoutError("load thread did not finish")
        return self._result
