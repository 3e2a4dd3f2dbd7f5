"""The request shapes the load benchmark sends: wrk's bare GET, a browser's `<img>` GET and
a `navigator.sendBeacon` POST. Each is a file, `requests/<name>.http`, that both wrk (through
`wrk_shape.lua`) and the Python clients (fixed-rate run, probe) send byte for byte.

    python -m bench.load.shapes browser --host 127.0.0.1:8080   # prints the exact request
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUESTS = HERE / "requests"

# A realistic 311-byte pageview beacon (ids, URL-encoded page and referrer URLs, viewport,
# language...): the same query as REALISTIC in bench/test_encode_query.py. The GETs carry it
# as the query, the POST as its body.
QUERY = (
    "ev=pageview&uid=7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10&sid=9a8b7c6d&ts=1795508102123"
    "&url=https%3A%2F%2Fwww.example.gr%2Fsearch%3Fq%3Dlaptop%2B15%26page%3D2%26sort%3Dprice"
    "&ref=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dfthina%2Blaptop&vw=1920&vh=1080"
    "&lang=el-GR&tz=Europe%2FAthens&cat=computers&price=749.90&pos=3"
)
#: The page's origin in post.http: every server under test must allow it (CORS).
ORIGIN = "https://www.example.gr"


@dataclass(frozen=True)
class Shape:
    name: str
    label: str
    what: str
    status: int  # the answer every server must give

    @property
    def path(self) -> Path:
        return REQUESTS / f"{self.name}.http"

    @property
    def is_post(self) -> bool:
        return self.path.read_text().startswith("POST ")

    def render(self, host: str) -> bytes:
        """The exact bytes sent, as wrk_shape.lua renders them."""
        return render(self.path.read_text(), host)

    def header_bytes(self, host: str) -> int:
        """Bytes of the header fields (request line, blank line and body not counted)."""
        head = self.render(host).split(b"\r\n\r\n", 1)[0]
        return len(head) - len(head.split(b"\r\n", 1)[0]) - 2


def render(text: str, host: str) -> bytes:
    """@HOST@ and @LENGTH@ filled in, CRLF line ends, the body without its final newline."""
    text = text.replace("\r\n", "\n")
    head, sep, body = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line after the headers")
    body = body.removesuffix("\n")
    head = head.replace("@HOST@", host).replace("@LENGTH@", str(len(body.encode())))
    return (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("bare", "bare GET", "wrk's own request: the query and a Host header", 200),
        Shape(
            "browser",
            "browser GET",
            "a Chrome <img> pixel: client hints, Accept*, Referer, Cookie",
            200,
        ),
        Shape(
            "post",
            "sendBeacon POST",
            "text/plain body, allowed Origin (CORS answer), Chrome's headers and Cookie",
            204,
        ),
    )
}


def pick(names: str) -> list[Shape]:
    """Shapes by comma-separated names ('' = all), in the canonical order."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(SHAPES)}")
    return [s for n, s in SHAPES.items() if not wanted or n in wanted]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("shape", choices=list(SHAPES))
    ap.add_argument("--host", default="127.0.0.1:8080")
    a = ap.parse_args()
    sys.stdout.buffer.write(SHAPES[a.shape].render(a.host))


if __name__ == "__main__":
    main()
