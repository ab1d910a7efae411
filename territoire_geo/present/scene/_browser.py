"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

Headless Chromium is driven through two anonymous pipes (the browser reads
commands on its fd 3 and writes answers on fd 4, messages separated by NUL),
so no TCP port is opened and no third-party package is needed. Used by
:func:`territoire_geo.present.scene.snapshot`, the browser tests and the benchmark.

The browser is started offline: DNS is mapped to nothing
(``--host-resolver-rules``), background networking, component updates and
sync are off, and the profile is a fresh temporary folder.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from territoire_geo.errors import ExportError

__all__ = ["CHROMIUM_FLAGS", "Browser", "file_url", "find_chromium"]

#: Flags of stack.md §5 (software WebGL through SwiftShader) plus the offline set.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--password-store=basic",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

_MISSING = "install chromium (apt-get install chromium) or drop --png"


def find_chromium(executable: str | os.PathLike[str] | None = None) -> str:
    """Path of a Chromium executable, or ExportError with the install hint."""
    candidates = [str(executable)] if executable else ["chromium", "chromium-browser", "google-chrome"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise ExportError(f"headless Chromium not found; {_MISSING}")


def _high_fd(fd: int) -> int:
    """Move ``fd`` above 10 so that dup2 onto 3/4 in the child cannot clobber it."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """One headless Chromium with one page, driven over the DevTools pipe.

    Parameters
    ----------
    executable
        Chromium binary; default: ``chromium`` on the PATH.
    width, height
        Viewport size in CSS pixels.
    extra_args
        More command-line flags.

    Notes
    -----
    Use as a context manager; ``events`` keeps every protocol event received
    (console calls, exceptions, network requests) for the caller to inspect.
    """

    def __init__(self, executable: str | os.PathLike[str] | None = None, *, width: int = 1200,
                 height: int = 800, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = find_chromium(executable)
        self.width, self.height = width, height
        self.events: list[dict[str, Any]] = []
        self._profile = tempfile.mkdtemp(prefix="territoire_geo_chromium_")
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        self._session: str | None = None
        self._start(extra_args)

    # -- process and transport -------------------------------------------------------------
    def _start(self, extra_args: tuple[str, ...]) -> None:
        cmd_r, cmd_w = (_high_fd(fd) for fd in os.pipe())
        res_r, res_w = (_high_fd(fd) for fd in os.pipe())

        def child_fds() -> None:  # runs in the child between fork and exec
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        args = [self.binary, *CHROMIUM_FLAGS, *extra_args, f"--user-data-dir={self._profile}",
                f"--window-size={self.width},{self.height}", "--remote-debugging-pipe", "about:blank"]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=child_fds)
        os.close(cmd_r)
        os.close(res_w)
        self._out = os.fdopen(cmd_w, "wb", buffering=0)
        self._in = os.fdopen(res_r, "rb", buffering=0)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._in.read(65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                self._dispatch(json.loads(raw))

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._cond:
            if "id" in message:
                self._answers[message["id"]] = message
            else:
                self.events.append(message)
            self._cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30,
             browser_level: bool = False) -> dict[str, Any]:
        """Send one command and return its ``result``; RuntimeError on a protocol error."""
        with self._cond:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if self._session and not browser_level:
            message["sessionId"] = self._session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self._proc.poll() is not None:
                    raise TimeoutError(f"no answer to {method} within {timeout:.0f} s")
                self._cond.wait(min(left, 0.5))
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    # -- page ------------------------------------------------------------------------------
    def open(self, url: str, *, timeout: float = 30) -> None:
        """Attach to the page, enable console/network reporting, then navigate to ``url``."""
        targets = self.send("Target.getTargets", timeout=timeout, browser_level=True)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self._session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                  timeout=timeout, browser_level=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", timeout=timeout)
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url}, timeout=timeout)

    def evaluate(self, expression: str, *, timeout: float = 30) -> Any:
        """Value of a JavaScript expression in the page (JSON-serialisable results only)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float = 60, poll: float = 0.1) -> float:
        """Poll until ``expression`` is truthy; return the seconds waited (TimeoutError otherwise)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.evaluate(expression):
                return time.monotonic() - start
            time.sleep(poll)
        raise TimeoutError(f"page never satisfied {expression!r} within {timeout:.0f} s")

    def screenshot(self) -> bytes:
        """PNG bytes of the viewport."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, timeout=60)["data"]
        return base64.b64decode(data)

    def mouse_move(self, x: float, y: float) -> None:
        """Move the mouse to viewport coordinates (CSS pixels)."""
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def console_errors(self) -> list[str]:
        """Text of console errors, uncaught exceptions and error log entries seen so far."""
        found = []
        for event in list(self.events):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def requested_urls(self) -> list[str]:
        """URLs of every request the page started (network events)."""
        return [e["params"]["request"]["url"] for e in list(self.events)
                if e.get("method") == "Network.requestWillBeSent"]

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the browser and remove its temporary profile."""
        try:
            self.send("Browser.close", timeout=5, browser_level=True)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        for stream in (self._out, self._in):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_url(path: str | os.PathLike[str]) -> str:
    """``file://`` URL of a local path."""
    return Path(path).resolve().as_uri()
