"""Go's net/http (tests/support/clients/goclient, stdlib only): a pixel with url.Values, a
form POST, a multipart POST with a file part, a gzip body, and keep-alive reuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import clients
from support.beacon_server import BeaconServer

pytestmark = pytest.mark.clients

SOURCE = clients.HERE / "goclient" / "main.go"


@pytest.fixture(scope="module")
def goclient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    out = tmp_path_factory.mktemp("go") / "goclient"
    env = {
        **os.environ,
        "CGO_ENABLED": "0",  # no C toolchain needed
        "GOTOOLCHAIN": "local",  # never fetch another toolchain
        "GOPROXY": "off",  # stdlib only: nothing to download
        "GOFLAGS": "",
    }
    env.setdefault("HOME", str(out.parent))  # Go's build cache lives under $HOME
    subprocess.run([go, "build", "-o", str(out), str(SOURCE)], env=env, check=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def results(beacon: BeaconServer, goclient: Path) -> dict[str, Any]:
    """What the Go program did, the counters it moved and the events it stored."""
    run, since, before = clients.tag(), clients.mark(beacon), clients.counters(beacon)
    p = subprocess.run(
        [str(goclient), "-track", beacon.url("/track"), "-run", run],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    out["moved"] = clients.delta(beacon, before)
    out["stored"] = clients.stored_since(beacon, since, expect=8)
    out["run"] = run
    return out


def stored(results: dict[str, Any], ev: str) -> list[dict[str, Any]]:
    return [p for p in results["stored"] if p.get("ev") == ev]


def sent(result: dict[str, Any]) -> dict[str, Any]:
    return clients.flat([(k, v) for k, v in result["sent"]])


def test_pixel_with_url_values(results: dict[str, Any]) -> None:
    pixel = results["pixel"]
    assert (pixel["status"], pixel["content_type"], pixel["body_len"]) == (200, "image/gif", 43)
    assert stored(results, "pixel") == [sent(pixel)]
    assert sent(pixel)["q"] == "ελληνικά 😀"  # what the test means to send went


def test_form_post(results: dict[str, Any]) -> None:
    assert results["form"]["status"] == 204, results["form"]
    assert stored(results, "form") == [sent(results["form"])]


def test_multipart_post_skips_the_file_part(results: dict[str, Any]) -> None:
    mp = results["multipart"]
    assert mp["status"] == 204, mp
    [event] = stored(results, "multipart")
    assert list(event.items()) == list(sent(mp).items())  # the text fields, in order
    assert results["moved"].get("multipart_file_skipped") == 1


def test_gzip_body(results: dict[str, Any]) -> None:
    assert results["gzip"]["status"] == 204, results["gzip"]
    assert stored(results, "gzip") == [sent(results["gzip"])]


def test_keep_alive_reuses_the_connection(results: dict[str, Any]) -> None:
    ka = results["keepalive"]
    assert ka.get("statuses") == [200] * 4, ka
    assert ka["reused"] == [False, True, True, True]
    assert stored(results, "ka") == [
        {"ev": "ka", "r": results["run"], "n": str(i)} for i in range(4)
    ]


def test_every_request_counted_once_and_nothing_else_stored(results: dict[str, Any]) -> None:
    moved = dict(results["moved"])
    # One connection for the four one-off requests, one for the keep-alive series.
    assert moved.pop("connections.total") == 2
    moved.pop("multipart_file_skipped", None)  # checked above
    assert moved == {"accepted": 8}
    assert len(results["stored"]) == 8
