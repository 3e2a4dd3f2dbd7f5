"""bench-profile's grouping (profile.py): the shared objects beacon really loads, and a real
`perf record` / `perf report` of a process, split as the table splits them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import confluent_kafka.cimpl
import httptools.parser.parser
import uvloop.loop
from bench.load.profile import GROUPS, OTHER, Profile, dso_report, group_of, split_dsos, table
from bench.load.shapes import SHAPES

import beacon._beacon


def test_each_library_of_the_server_falls_in_its_group() -> None:
    libs = Path(confluent_kafka.cimpl.__file__).parent.parent / "confluent_kafka.libs"
    cases = {
        Path(beacon._beacon.__file__).name: "_beacon",
        Path(httptools.parser.parser.__file__).name: "llhttp",
        Path(uvloop.loop.__file__).name: "uvloop",
        Path(confluent_kafka.cimpl.__file__).name: "librdkafka",
        next(libs.glob("librdkafka*")).name: "librdkafka",
        "[kernel.kallsyms]": "kernel",
        "libc.so.6": "libc",
        "nginx": "nginx",
        "libz.so.1": OTHER,
    }
    assert {dso: group_of(dso, GROUPS) for dso in cases} == cases


def test_a_python_loop_profiles_as_cpython(tmp_path: Path) -> None:
    data = tmp_path / "perf.data"
    loop = [sys.executable, "-c", "sum(i * i for i in range(3_000_000))"]
    subprocess.run(["perf", "record", "-q", "-F", "999", "-o", str(data), *loop], check=True)

    split = split_dsos(dso_report(data))

    assert split["CPython"] > 50, split
    assert 99 < sum(split.values()) < 101, split


def test_the_table_gives_each_library_its_share_of_the_cpu() -> None:
    threads = {"event loop": 8.0, "librdkafka": 2.0}
    p = Profile(rps=50_000, threads=threads, dsos={"kernel": 60.0}, steal=0.5)

    text = table(SHAPES["bare"], {"beacon file+kafka": p})

    line = text.splitlines()[-1]
    assert line.startswith("| beacon file+kafka | 50,000 | 0.5 | 10.00 | 6.00 | 0.00 |"), line
    assert line.endswith("| event loop 8.00, librdkafka 2.00 |"), line
