"""sd_notify(3) without libsystemd: tell systemd "READY=1", "STOPPING=1", "STATUS=..."."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send `state` (newline-separated VAR=value assignments) to $NOTIFY_SOCKET.

    Returns True when the datagram was sent, False when not running under a systemd that asked
    for notifications (no NOTIFY_SOCKET) or when the socket cannot be reached: a service must
    never fail because its supervisor went away. A NOTIFY_SOCKET starting with "@" names a
    socket in the Linux abstract namespace.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
