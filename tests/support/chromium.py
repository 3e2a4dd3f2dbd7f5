"""A small Chrome DevTools Protocol driver for Debian's headless Chromium.

Chromium runs with `--remote-debugging-pipe`: it reads commands on fd 3 and writes answers
and events on fd 4, each one JSON message ended by a NUL byte. Pages are attached with flat
sessions (`Target.attachToTarget` with `flatten: true`): a command for a page carries its
`sessionId`. Playwright and Puppeteer download their own browser builds, which cannot be
fetched here; this needs only the `chromium` package."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Without the background-networking flags Chromium keeps calling home (updates, sync,
# safe browsing) on a network that has nothing to answer it.
FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
]


class CdpError(RuntimeError):
    """A command answered with an error, or a page threw."""


class Chromium:
    """`with Chromium() as browser: page = browser.new_page()`."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._profile = Path(tempfile.mkdtemp(prefix="beacon-chromium-"))
        self.log_path = self._profile / "chromium.log"
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._answers: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._closed = False
        self.pid = 0
        self._to_chrome = self._from_chrome = -1

    def start(self) -> Chromium:
        exe = shutil.which("chromium")
        if exe is None:
            raise RuntimeError("chromium is not installed: run scripts/system-deps")
        cmd_r, self._to_chrome = os.pipe()
        self._from_chrome, out_w = os.pipe()
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        argv = [exe, *FLAGS, f"--user-data-dir={self._profile / 'profile'}", "about:blank"]
        # posix_spawn's dup2 puts the pipes exactly on fds 3 and 4 of the child.
        self.pid = os.posix_spawn(
            exe,
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
                (os.POSIX_SPAWN_DUP2, cmd_r, 3),
                (os.POSIX_SPAWN_DUP2, out_w, 4),
            ],
        )
        for fd in (cmd_r, out_w, log):
            os.close(fd)
        threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True).start()
        self.call("Browser.getVersion")  # answers once the browser is up
        return self

    def close(self) -> None:
        if self.pid:
            try:
                self.call("Browser.close", timeout_s=5)
            except (CdpError, TimeoutError, OSError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
        for fd in (self._to_chrome, self._from_chrome):
            if fd >= 0:
                os.close(fd)
        self._to_chrome = self._from_chrome = -1
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # the protocol

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> int:
        """Sends one command; `wait_answer` collects its result."""
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._to_chrome, data) :]
        return msg_id

    def wait_answer(self, msg_id: int, timeout_s: float | None = None) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(
                lambda: msg_id in self._answers or self._closed, timeout_s or self.timeout_s
            ):
                raise TimeoutError(f"no answer to CDP command {msg_id}")
            if msg_id not in self._answers:
                raise CdpError(f"chromium went away:\n{self.log()[-3000:]}")
            answer = self._answers.pop(msg_id)
        if "error" in answer:
            raise CdpError(str(answer["error"]))
        result: dict[str, Any] = answer.get("result", {})
        return result

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str = "",
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        return self.wait_answer(self.send(method, params, session), timeout_s)

    def wait_event(
        self,
        method: str,
        session: str,
        since: int,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """The first `method` event of `session` at or after position `since` (from
        `event_mark()`, taken before the command that causes it)."""

        def find() -> dict[str, Any] | None:
            for ev in self._events[since:]:
                same = ev["method"] == method and ev.get("sessionId", "") == session
                if same and match(ev.get("params", {})):
                    return ev
            return None

        with self._cond:
            found = self._cond.wait_for(find, timeout_s or self.timeout_s)
        if found is None:
            raise TimeoutError(f"no {method} event within {timeout_s or self.timeout_s}s")
        return found

    def event_mark(self) -> int:
        with self._lock:
            return len(self._events)

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # pages

    def new_page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, target, session["sessionId"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        return page


class Page:
    """One tab, driven through its flat session."""

    def __init__(self, browser: Chromium, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def goto(self, url: str) -> None:
        """Navigates and waits for the new document's load event."""
        mark = self.browser.event_mark()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigation to {url} failed: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session, mark)

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression; a promise is awaited. A throw raises CdpError."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"page threw: {text}")
        return result["result"].get("value")

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})
