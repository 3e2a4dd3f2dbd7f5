"""scripts/check-toolchain, run before the first build: a too-old or missing cargo is told
how to get a new one (Debian 12's cargo 1.63 is too old), a new enough one passes."""

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


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_httptools_parses_with_sse42_where_the_cpu_has_it() -> None:
    """scripts/httptools-sse42 (run by the Makefile's venv set-up): on an x86-64 CPU with
    SSE4.2 the venv's llhttp has its PCMPESTRI loops, which PyPI's baseline wheel leaves
    out; elsewhere the baseline wheel stays, without them."""
    import platform

    import httptools.parser.parser as parser

    sse42 = platform.machine() == "x86_64" and "sse4_2" in _cpu_flags()
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(parser.__file__)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ("pcmpestri" in out) == sse42, parser.__file__
