"""Runs the curl command-line tool and reads its verbose (-v) output."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

#: curl gives up after this: a server that never answers fails the test with exit 28.
MAX_TIME_S = 10


@dataclass
class Response:
    """One response curl received: its status line and headers, as `-v` printed them."""

    status_line: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    rc: int
    out: str  # what -w printed: one line per transfer
    err: str  # -v

    def check(self) -> Run:
        assert self.rc == 0, f"curl exited {self.rc} (28: gave up waiting):\n{self.err[-4000:]}"
        return self

    @property
    def codes(self) -> list[str]:
        """Each transfer's status code."""
        return [line.split()[0] for line in self.out.splitlines()]

    @property
    def uploaded(self) -> list[int]:
        """How many body bytes curl sent, per transfer."""
        return [int(line.split()[1]) for line in self.out.splitlines()]

    @property
    def responses(self) -> list[Response]:
        out: list[Response] = []
        for line in self.err.splitlines():
            if not line.startswith("< "):
                continue
            text = line[2:].strip()
            if text.startswith("HTTP/"):
                out.append(Response(text))
            elif ":" in text and out:
                name, value = text.split(":", 1)
                out[-1].headers[name.strip().lower()] = value.strip()
        return out

    @property
    def reused(self) -> int:
        """How many times curl sent a request on a connection it already had."""
        return self.err.count("Re-using existing connection")


def transfer(*urls: str, opts: tuple[str, ...] = ()) -> list[str]:
    """curl options for `urls` (each body discarded; `-w` prints each status), capped at
    MAX_TIME_S."""
    args = ["--max-time", str(MAX_TIME_S), "-w", "%{http_code} %{size_upload}\\n", *opts]
    for url in urls:
        args += ["-o", "/dev/null", url]
    return args


def curl(*groups: list[str]) -> Run:
    """One `curl -sS -v` command running each group of `transfer` options after the other
    (`--next`): one process, so its connections are reused from one group to the next."""
    cmd = ["curl", "-sS", "-v"]
    for i, group in enumerate(groups):
        cmd += (["--next"] if i else []) + group
    p = subprocess.run(cmd, capture_output=True, timeout=MAX_TIME_S * (len(groups) + 3))
    return Run(p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace"))
