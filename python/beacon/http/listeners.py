"""Listening sockets: passed by systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`,
sd_listen_fds(3)), or bound here."""

from __future__ import annotations

import os
import socket

from beacon.config import Address

SD_LISTEN_FDS_START = 3


def activated_sockets() -> list[socket.socket]:
    """The sockets systemd passed to this process, if any. The variables are removed so
    children do not inherit them."""
    pid, fds = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    if pid is None or fds is None or not fds.isdigit():
        return []
    if pid.isdigit() and int(pid) != os.getpid():
        return []
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(fds)):
        os.set_inheritable(fd, False)
        s = socket.socket(fileno=fd)
        s.setblocking(False)
        socks.append(s)
    return socks


def bind(addr: Address, backlog: int = 4096, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket; `reuse_port` lets `--workers` processes each bind the same
    address and the kernel spread connections over them (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((addr.host, addr.port))
    s.listen(backlog)
    s.setblocking(False)
    return s


def describe(s: socket.socket) -> str:
    name = s.getsockname()
    if isinstance(name, tuple):
        host = f"[{name[0]}]" if ":" in name[0] else name[0]
        return f"{host}:{name[1]}"
    return str(name)
