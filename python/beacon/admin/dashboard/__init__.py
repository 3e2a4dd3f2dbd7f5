"""The live dashboard (`GET /` on the admin listener): a static page and its scripts, read
from package data once at import. The page polls `/stats` every second and keeps its own 15
minutes of history, so the server does nothing for it between polls (index.html,
dashboard.js). uPlot, the charting library, is vendored under `vendor/` (see its README)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def _walk(node: Traversable, prefix: str) -> dict[bytes, tuple[str, bytes]]:
    out: dict[bytes, tuple[str, bytes]] = {}
    for item in node.iterdir():
        if item.is_dir():
            out.update(_walk(item, f"{prefix}{item.name}/"))
            continue
        ctype = TYPES.get("." + item.name.rpartition(".")[2])
        if ctype is not None:  # not the notes and the licence, nor Python files
            out[f"{prefix}{item.name}".encode()] = (ctype, item.read_bytes())
    return out


def load_assets() -> dict[bytes, tuple[str, bytes]]:
    """URL path -> (content type, body): every page file at `/<its path>`, and index.html
    at `/` too."""
    assets = _walk(files(__name__), "/")
    assets[b"/"] = assets[b"/index.html"]
    return assets


ASSETS = load_assets()
