"""Reads the admin listener of a running test server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def admin_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stats(port: int) -> dict[str, Any]:
    status, body = admin_get(port, "/stats")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc
