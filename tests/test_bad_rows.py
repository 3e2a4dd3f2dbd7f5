"""Bad rows end to end (README "Bad rows"): the real server keeps every refused request to a
tracked path in `<data_dir>/_bad/<UTC date>.jsonl` and in Kafka, within its limits; `beacon
reprocess` turns the rows a fixed config accepts into events, once."""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from confluent_kafka import TIMESTAMP_CREATE_TIME

from support.admin import admin_get, stats
from support.beacon_server import BeaconServer
from support.http_client import Conn
from support.kafka_broker import KafkaBroker, consume_all
from support.load import run_load

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
T = TypeVar("T")


def ts_ms(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(milliseconds=1)


def wait_for(what: Callable[[], T], timeout_s: float = 20.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def bad_rows(srv: BeaconServer) -> list[dict[str, Any]]:
    """Every kept row, oldest file first."""
    out: list[dict[str, Any]] = []
    for path in sorted((srv.data_dir / "_bad").glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def shop(**over: Any) -> dict[str, Any]:
    """The one flavor: Host shop.example, `uid` required, Athens time."""
    return {
        "name": "shop",
        "hosts": ["shop.example"],
        "timezone": "Europe/Athens",
        "required_params": ["uid"],
        **over,
    }


def send_refusals(srv: BeaconServer) -> None:
    """Four refusals of the tracked path, a 404 elsewhere, broken HTTP, one accepted."""
    url = srv.url

    def status(r: requests.Response) -> int:
        return r.status_code

    ua = {"User-Agent": "ua/1", "Accept": "image/*"}
    assert (
        status(requests.get(url("/track?ev=view&uid=7"), headers={"Host": "new.example", **ua}))
        == 400
    )
    referer = {"Host": "shop.example", "Referer": "https://shop.example/p"}
    assert status(requests.get(url("/track?ev=view"), headers=referer)) == 400
    beacon = {"Host": "shop.example", "Content-Type": "text/plain;charset=UTF-8"}
    assert status(requests.post(url("/track?ev=buy"), data=b"sku=42&qty=1", headers=beacon)) == 400
    png = {"Host": "shop.example", "Content-Type": "image/png"}
    assert status(requests.post(url("/track?uid=7"), data=b"\x89PNG\r\n", headers=png)) == 415
    assert status(requests.get(url("/elsewhere?uid=7"), headers={"Host": "shop.example"})) == 404
    with Conn(srv.port) as c:
        c.send(b"GET /track?uid=7 HTTP/1.1\r\nHost shop.example\r\n\r\n")
        assert c.read_response().status == 400
    ok = requests.get(url("/track?ev=view&uid=7"), headers={"Host": "shop.example"})
    assert status(ok) == 200


def check_rows(rows: list[dict[str, Any]]) -> None:
    """The four refusals of `send_refusals`, in order, with the fields README promises."""
    assert [(r["reason"], r["status"], r.get("flavor")) for r in rows] == [
        ("unknown_host", 400, None),
        ("missing_param", 400, "shop"),
        ("missing_param", 400, "shop"),
        ("unsupported_media_type", 415, "shop"),
    ]
    for r in rows:
        assert TS.match(r["ts"]), r["ts"]
        assert uuid.UUID(r["id"]).version == 7
        assert (uuid.UUID(r["id"]).int >> 80) == ts_ms(r["ts"])
    unknown, get, post, png = (r["request"] for r in rows)
    assert unknown == {
        "method": "GET",
        "target": "/track?ev=view&uid=7",
        "host": "new.example",
        "headers": {"User-Agent": "ua/1"},  # Accept is not a header beacon reads
    }
    assert get["headers"]["Referer"] == "https://shop.example/p" and "body_b64" not in get
    assert post["method"] == "POST" and post["target"] == "/track?ev=buy"
    assert post["headers"]["Content-Type"] == "text/plain;charset=UTF-8"
    assert base64.b64decode(post["body_b64"]) == b"sku=42&qty=1"
    assert base64.b64decode(png["body_b64"]) == b"\x89PNG\r\n"


def reprocess(srv: BeaconServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "beacon", "reprocess", "--config", str(srv.config_path), *args],
        cwd=srv.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refused_requests_are_kept_whole_and_counted(tmp_path: Path) -> None:
    config = {
        "default_flavor": None,
        "flavors": [shop()],
        "backends": {"file": {"flush_interval_ms": 20}},
    }
    with BeaconServer(tmp_path, config) as srv:
        send_refusals(srv)
        rows = wait_for(lambda: len(bad_rows(srv)) == 4 and bad_rows(srv))
        check_rows(rows)
        # The file of each row's UTC date.
        for path in (srv.data_dir / "_bad").glob("*.jsonl"):
            for line in path.read_text().splitlines():
                assert json.loads(line)["ts"].startswith(path.name.removesuffix(".jsonl"))
        s = stats(srv.admin_port)
        assert s["flavors"]["shop"]["bad_rows_kept"] == 3
        assert (s["requests"]["bad_rows_kept"], s["requests"]["bad_rows_dropped"]) == (4, 0)
        _, metrics = admin_get(srv.admin_port, "/metrics")
        assert 'beacon_flavor_counts_total{counter="bad_rows_kept",flavor="shop"} 3.0' in metrics
        assert 'beacon_flavor_counts_total{counter="bad_rows_kept",flavor=""} 1.0' in metrics
        # Only the accepted request is an event (written by the next flush, maybe not yet).
        assert wait_for(lambda: srv.lines("shop")) and [e["params"] for e in srv.lines("shop")] == [
            {"ev": "view", "uid": "7"}
        ]


def test_bad_rows_can_be_turned_off(tmp_path: Path) -> None:
    config = {"default_flavor": None, "flavors": [shop()], "bad_rows": {"enabled": False}}
    with BeaconServer(tmp_path, config) as srv:
        r = requests.get(srv.url("/track?ev=view"), headers={"Host": "shop.example"})
        assert r.status_code == 400
        s = stats(srv.admin_port)["requests"]
        assert (s["missing_param"], s["bad_rows_kept"], s["bad_rows_dropped"]) == (1, 0, 0)
    assert not (srv.data_dir / "_bad").exists()


def uuid7(ms: int) -> str:
    rand = secrets.randbits(74)
    n = (ms << 80) | (7 << 76) | (rand >> 62 << 64) | (2 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=n))


@pytest.mark.kafka
def test_reprocess_turns_fixed_rows_into_events_once(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    config: dict[str, Any] = {
        "default_flavor": None,
        "flavors": [shop(kafka_topic=f"shop-{tag}")],
        "backends": {
            "file": {"flush_interval_ms": 20},
            "kafka": {"enabled": True, "bootstrap_servers": kafka_broker.bootstrap},
        },
        "bad_rows": {"topic": f"bad-{tag}"},
    }
    srv = BeaconServer(tmp_path, config)
    with srv:
        send_refusals(srv)
        rows = wait_for(lambda: len(bad_rows(srv)) == 4 and bad_rows(srv))
        check_rows(rows)
        # The same rows in the bad rows' topic, with the header id and the receipt time.
        msgs = consume_all(kafka_broker.bootstrap, f"bad-{tag}", 4, 60.0)
        assert sorted(json.loads(m.value())["id"] for m in msgs) == sorted(r["id"] for r in rows)
        for m in msgs:
            row = json.loads(m.value())
            assert m.headers() == [("id", row["id"].encode())]
            assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts_ms(row["ts"]))
        # Not while the server runs: both would append to the same daily files.
        busy = reprocess(srv)
        assert busy.returncode == 1 and "stop it first" in busy.stderr, busy
        assert srv.stop() == 0, srv.log()[-3000:]

    # The config is fixed: the new host is the shop's, `uid` no longer required.
    srv.config["flavors"] = [shop(hosts=["shop.example", "new.example"], required_params=[])]
    srv.config["flavors"][0]["kafka_topic"] = f"shop-{tag}"
    srv.config_path.write_text(json.dumps(srv.config))
    # A row of an older day: 23:30 UTC is 01:30 the next day in Athens, the shop's zone.
    old = {**rows[1], "ts": "2025-03-01T23:30:00.000+00:00"}
    old["id"] = uuid7(ts_ms(old["ts"]))
    (srv.data_dir / "_bad" / "2025-03-01.jsonl").write_text(json.dumps(old) + "\n")
    accepted = [*rows[:3], old]

    # One day first (today's rows), then every day (the older row).
    today = rows[0]["ts"][:10]
    run = reprocess(srv, "--date", today)
    assert run.returncode == 0, run
    assert "accepted 3 (refused then for: missing_param 2, unknown_host 1)" in run.stdout
    assert "kept 1 (refused now for: unsupported_media_type 1)" in run.stdout
    assert not (srv.data_dir / "shop" / "2025-03-02.jsonl").exists()
    run = reprocess(srv)
    assert run.returncode == 0, run
    assert "accepted 1 (refused then for: missing_param 1)" in run.stdout
    events = {e["id"]: e for e in srv.lines("shop")}
    assert len(events) == 5  # the one accepted live, and the four
    for row in accepted:
        ev = events[row["id"]]
        assert datetime.fromisoformat(ev["ts"]) == datetime.fromisoformat(row["ts"])
        assert ev["ts"].endswith("+02:00")
    assert events[rows[2]["id"]]["params"] == {"ev": "buy", "sku": "42", "qty": "1"}
    old_day = (srv.data_dir / "shop" / "2025-03-02.jsonl").read_text().splitlines()
    assert [json.loads(ln)["id"] for ln in old_day] == [old["id"]]
    msgs = consume_all(kafka_broker.bootstrap, f"shop-{tag}", 5, 60.0)
    by_id = {json.loads(m.value())["id"]: m for m in msgs}
    for row in accepted:
        m = by_id[row["id"]]
        assert m.headers() == [("id", row["id"].encode())]
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts_ms(row["ts"]))

    # Twice adds nothing twice; the row still refused is tried again, and stays.
    files = {p: p.read_bytes() for p in (srv.data_dir / "shop").glob("*.jsonl")}
    again = reprocess(srv)
    assert again.returncode == 0, again
    assert "accepted 0" in again.stdout and "kept 1" in again.stdout, again.stdout
    assert {p: p.read_bytes() for p in (srv.data_dir / "shop").glob("*.jsonl")} == files
    assert len(consume_all(kafka_broker.bootstrap, f"shop-{tag}", None, 60.0, idle_s=3)) == 5
    assert len(bad_rows(srv)) == 5  # the rows themselves stay where they were kept


def test_a_flood_of_garbage_stays_within_the_day_budget(tmp_path: Path) -> None:
    budget = 40_000
    config = {
        "default_flavor": None,
        "flavors": [shop(required_params=[])],
        "backends": {"file": {"flush_interval_ms": 20}},
        "bad_rows": {"max_bytes_per_day": budget},
    }
    n = 20_000
    with BeaconServer(tmp_path, config) as srv:
        junk = ((f"junk{i % 7}.example", f"/track?junk={i}&pad={'x' * 200}") for i in range(n))
        result = run_load("127.0.0.1", srv.port, junk, connections=8, pipeline=32)
        assert result.errors == [] and result.statuses == {400: n}
        # Good requests are still answered and stored.
        r = requests.get(srv.url("/track?ev=after"), headers={"Host": "shop.example"})
        assert r.status_code == 200
        events = wait_for(lambda: srv.lines("shop"))
        assert [e["params"] for e in events] == [{"ev": "after"}]
        s = stats(srv.admin_port)
        kept, dropped = s["requests"]["bad_rows_kept"], s["requests"]["bad_rows_dropped"]
        assert kept + dropped == n and kept > 0 and dropped > 0, (kept, dropped)
        assert wait_for(lambda: len(bad_rows(srv)) == kept)
        size = sum(p.stat().st_size for p in (srv.data_dir / "_bad").glob("*.jsonl"))
        row = size // kept
        assert budget - row < size <= budget, (size, row)
        _, metrics = admin_get(srv.admin_port, "/metrics")
        assert (
            f'beacon_flavor_counts_total{{counter="bad_rows_dropped",flavor=""}} {dropped}.0'
            in metrics
        )


def test_a_server_waits_for_reprocess_to_finish_with_its_data_dir(tmp_path: Path) -> None:
    """The data directory's lock (README "Reprocessing"): while it is held alone, as
    `reprocess` holds it, a server starting on the directory waits, saying so, and serves as
    soon as it is free."""
    from beacon.datalock import alone

    srv = BeaconServer(tmp_path)
    srv.config_path.write_text(json.dumps(srv.config))
    cmd = [sys.executable, "-m", "beacon", "serve", "--config", str(srv.config_path)]
    proc = None
    try:
        with alone(srv.data_dir):
            proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert "waiting for beacon reprocess to finish with" in line, line
            assert proc.poll() is None
        assert wait_for(lambda: _get_ok(srv), timeout_s=30), "no answer once the lock was free"
        proc.terminate()
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()


def _get_ok(srv: BeaconServer) -> bool:
    try:
        return requests.get(srv.url("/track?ev=1"), timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
