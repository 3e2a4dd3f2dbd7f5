"""The build's tools and the parser build they leave: scripts/check-toolchain, run before the
first build (a too-old or missing cargo is told how to get a new one: Debian 12's cargo 1.63
is too old; a new enough one passes), the venv's SSE4.2 httptools, and the Debian package's
choice between its two httptools builds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check-toolchain"


def _run(tmp_path: Path, cargo_version: str | None) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if cargo_version is not None:
        cargo = bin_dir / "cargo"
        cargo.write_text(f"#!/bin/sh\necho 'cargo {cargo_version} (abc 2026-01-01)'\n")
        cargo.chmod(0o755)
    for tool in ("sed", "awk", "sort", "head", "dirname"):
        (bin_dir / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    env = {**os.environ, "PATH": str(bin_dir), "PYTHON": sys.executable}
    return subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True)


def test_debian_12_cargo_is_refused_with_the_rustup_recipe(tmp_path: Path) -> None:
    r = _run(tmp_path, "1.63.0")
    assert r.returncode == 1
    assert "is Rust 1.63.0; beacon needs >= 1.87" in r.stderr
    assert "sh.rustup.rs" in r.stderr


def test_no_cargo_at_all_is_told_the_same(tmp_path: Path) -> None:
    r = _run(tmp_path, None)
    assert r.returncode == 1
    assert "no cargo on PATH" in r.stderr and "sh.rustup.rs" in r.stderr


def test_a_new_enough_cargo_passes(tmp_path: Path) -> None:
    r = _run(tmp_path, "1.95.0")
    assert (r.returncode, r.stderr) == (0, "")


def test_httptools_parses_with_sse42_where_the_cpu_has_it() -> None:
    """scripts/httptools-sse42 (run by the Makefile's venv set-up): on an x86-64 CPU with
    SSE4.2 the venv's llhttp has its PCMPESTRI loops, which PyPI's baseline wheel leaves
    out; elsewhere the baseline wheel stays, without them."""
    import httptools.parser.parser as parser

    from beacon.parser_variant import cpu_has_sse42

    sse42 = cpu_has_sse42()
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(parser.__file__)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ("pcmpestri" in out) == sse42, parser.__file__


# python/beacon/parser_variant.py: the Debian package's two httptools builds. A copy of the
# venv's own httptools stands for the SSE4.2 build; a fresh interpreter makes the choice for
# that copy and a given cpuinfo, then parses a real request with whichever httptools it finds.
_CHOOSE = """
import sys
from pathlib import Path
from beacon.parser_variant import prefer_sse42
chose = prefer_sse42(Path(sys.argv[1]), Path(sys.argv[2]))
import httptools
seen = []
class On:
    def on_url(self, url): seen.append(url)
httptools.HttpRequestParser(On()).feed_data(b"GET /track?e=1 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
print(chose, httptools.__file__, seen[0].decode())
"""


def _choose(tmp_path: Path, flags: str) -> tuple[str, Path]:
    import shutil

    import httptools

    variant = tmp_path / "sse4.2"
    shutil.copytree(Path(httptools.__file__).parent, variant / "httptools")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    out = subprocess.run(
        [sys.executable, "-I", "-c", _CHOOSE, str(variant), str(cpuinfo)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[2] == "/track?e=1", out
    return out[0], Path(out[1])


def test_a_cpu_with_sse42_imports_the_packages_sse42_httptools(tmp_path: Path) -> None:
    import platform

    chose, imported = _choose(tmp_path, "fpu sse4_1 sse4_2 avx2")
    on_x86 = platform.machine() == "x86_64"
    assert chose == str(on_x86)
    assert imported.is_relative_to(tmp_path / "sse4.2") == on_x86, imported


def test_a_cpu_without_sse42_imports_the_baseline_httptools(tmp_path: Path) -> None:
    chose, imported = _choose(tmp_path, "fpu sse4_1 avx")
    assert chose == "False"
    assert not imported.is_relative_to(tmp_path), imported


def test_a_venv_without_the_variant_directory_is_left_alone(tmp_path: Path) -> None:
    from beacon.parser_variant import prefer_sse42

    before = list(sys.path)
    assert not prefer_sse42(tmp_path / "sse4.2", Path("/proc/cpuinfo"))
    assert sys.path == before
