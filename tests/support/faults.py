"""Fault-injection helpers for the reliability suite: a TCP proxy that can blackhole its
traffic, a tmpfs that can be filled and grown, an HAProxy runner, and paced closed-loop clients.

Every helper works on 127.0.0.1 only and cleans up after itself (``close()`` / ``stop()``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from support.beacon_server import REPO
from support.http_client import SteadyClients


class BlackholeProxy:
    """A TCP proxy ``127.0.0.1:listen_port`` → ``127.0.0.1:target_port`` on its own thread.

    ``cut()`` models a network partition, not a crash: nothing is closed or reset, the proxy
    simply stops moving bytes in either direction (so the kernel buffers fill and the peers see
    silence) and new connections are accepted but never connected upstream. ``heal()`` resumes
    every held connection and connects the pending ones."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._open: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blackhole-proxy", daemon=True)

    def start(self) -> BlackholeProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._open = asyncio.Event()
        self._open.set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        try:
            while True:
                await self._open.wait()
                data = await reader.read(65536)
                if not data:
                    break
                # Bytes read just before a cut are held too: a partition drops the wire.
                await self._open.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        self.connections += 1
        self._writers.add(c_writer)
        try:
            await self._open.wait()
            try:
                u_reader, u_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                c_writer.close()
                return
            self._writers.add(u_writer)
            await asyncio.gather(self._pump(c_reader, u_writer), self._pump(u_reader, c_writer))
            self._writers.discard(u_writer)
        finally:
            self._writers.discard(c_writer)

    def _call(self, fn: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def cut(self) -> None:
        assert self._open is not None
        self._call(self._open.clear)

    def heal(self) -> None:
        assert self._open is not None
        self._call(self._open.set)

    def close(self) -> None:
        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()
            if self._open is not None:
                self._open.set()

        if self._thread.is_alive():
            self._call(shutdown)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


class Tmpfs:
    """A size-limited tmpfs mounted on ``path`` (root only): ``grow()`` remounts it bigger."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size
        self.mounted = False

    def mount(self) -> Tmpfs:
        self.path.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path)])
        self.mounted = True
        return self

    def grow(self, size: str) -> None:
        _run(["mount", "-o", f"remount,size={size}", str(self.path)])
        self.size = size

    def used_bytes(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def unmount(self) -> None:
        if self.mounted:
            _run(["umount", "-l", str(self.path)])
            self.mounted = False


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")


HAPROXY_EXAMPLE = REPO / "packaging" / "haproxy.cfg.example"


def ensure_haproxy() -> str:
    """Path of the haproxy binary, installing the Debian package first if it is missing."""
    found = shutil.which("haproxy")
    if found is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "haproxy"], check=True, env=env, timeout=600
        )
        found = shutil.which("haproxy")
    if found is None:
        raise RuntimeError("haproxy is not on PATH after apt-get install haproxy")
    return found


def haproxy_config(listen_port: int, servers: list[tuple[int, int]], stats_port: int) -> str:
    """``packaging/haproxy.cfg.example`` with its addresses replaced: the frontend on
    ``listen_port``, one server line per ``(port, admin_port)`` (options copied from the
    example's first server line), the stats page on ``stats_port``. Everything else (timeouts,
    checks, retries) is exactly the example's. For a foreground, unprivileged run the
    daemon/chroot/user/group/stats-socket lines are dropped, logs go to stderr and the global
    `maxconn` is lowered to 4000 (descriptor limits of a sandbox)."""
    out: list[str] = []
    for line in HAPROXY_EXAMPLE.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        key = words[0]
        if key in ("daemon", "chroot", "user", "group") or words[:2] == ["stats", "socket"]:
            continue
        if key == "maxconn":
            # 20,000 connections need 40,000 descriptors: more than a test sandbox may allow.
            out.append("    maxconn 4000")
        elif key == "log" and words[1] != "global":
            out.append("    log stderr format raw local0 info")
        elif key == "bind" and words[1].endswith(":8080"):
            out.append(f"    bind 127.0.0.1:{listen_port}")
        elif key == "bind":
            out.append(f"    bind 127.0.0.1:{stats_port}")
        elif key == "server" and words[1] == "beacon1":
            opts = " ".join(words[3:])
            for i, (port, admin) in enumerate(servers, 1):
                server_opts = re.sub(r"\bport \d+", f"port {admin}", opts)
                out.append(f"    server beacon{i} 127.0.0.1:{port} {server_opts}")
        elif key == "server":
            continue
        else:
            out.append(line)
    return "\n".join(out) + "\n"


class HAProxy:
    """HAProxy in the foreground (``-db``) as a subprocess, with a generated config."""

    def __init__(self, workdir: Path, config: str) -> None:
        self.workdir = workdir
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int) -> HAProxy:
        binary = ensure_haproxy()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config)
        _run([binary, "-c", "-f", str(self.config_path)])
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited {self.proc.returncode}: {self.log()}")
            try:
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"haproxy did not listen: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PacedClients(SteadyClients):
    """:class:`SteadyClients` with a total rate limit (requests/s over all threads): the same
    keep-alive, reconnect and retry behaviour, without saturating a small machine."""

    def __init__(self, port: int, threads: int = 4, *, rate: float, **kwargs: object) -> None:
        super().__init__(port, threads, **kwargs)  # type: ignore[arg-type]
        self.rate = rate
        self._t0 = time.monotonic()

    def _take_id(self) -> int | None:
        n = super()._take_id()
        if n is not None:
            delay = self._t0 + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return n

    def start(self) -> PacedClients:
        self._t0 = time.monotonic()
        super().start()
        return self

    def next_id(self) -> int:
        """The id the next request will get (every id below it has been handed out)."""
        with self._lock:
            return self._next + 1
