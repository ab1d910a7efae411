"""Loopback servers for tests: a Range-capable static server with faults, and rustac.

Both bind to 127.0.0.1 on a free port and stop cleanly; neither talks to
anything but the loopback interface.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["Fault", "RangeHTTPServer", "Request", "Response", "RouteServer", "StacApiServer", "free_port"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour for one request.

    kind
        ``status`` (answer ``status`` with a short body, ``Retry-After`` if
        ``retry_after``), ``reset`` (send headers and ``after`` bytes then
        drop the connection), ``truncate`` (announce the full length, send
        ``after`` bytes, close), ``html`` (200 with an HTML page),
        ``delay`` (sleep ``seconds`` then answer normally), ``trickle``
        (send the body in 1-byte writes ``seconds`` apart, at most ``after``
        bytes before closing), ``length`` (announce a wrong
        ``Content-Length`` of ``after`` bytes, send the real body, close),
        ``expire`` (on a server built with ``signed=True``: every signature
        issued so far becomes stale, so this request gets 403 until the URL
        is signed again with :meth:`RangeHTTPServer.sign`).
    """

    kind: str
    status: int = 500
    after: int = 0
    seconds: float = 0.0
    retry_after: int | None = None


class _Handler(SimpleHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        path, _, query = self.path.partition("?")
        self.server.record(self.command, path, self.headers.get("Range"), dict(self.headers))
        fault = self.server.next_fault(path)
        if fault and fault.kind == "delay":
            time.sleep(fault.seconds)
            fault = None
        if fault and fault.kind == "expire":
            self.server.expire_signatures()
            fault = None
        if self.server.signed and not self.server.signature_ok(query):
            self._plain(403, b"signature expired or missing\n")
            return
        if fault and fault.kind in {"status", "html"}:
            self._send_fault(fault)
            return
        file = self.server.root / path.lstrip("/")
        if not file.is_file() or ".." in Path(path).parts:
            self._plain(404, b"not found\n")
            return
        self._send_file(file, fault, send_body)

    def _plain(self, status: int, body: bytes, ctype: str = "text/plain",
               extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":  # a body after a HEAD answer would corrupt the kept-alive connection
            self.wfile.write(body)

    def _send_fault(self, fault: Fault) -> None:
        if fault.kind == "html":
            self._plain(200, b"<html><body><h1>Maintenance</h1></body></html>", "text/html")
            return
        extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        self._plain(fault.status, f"error {fault.status}\n".encode(), extra=extra)

    def _send_file(self, file: Path, fault: Fault | None, send_body: bool) -> None:
        size = file.stat().st_size
        span = self._range(size)
        if span is None:
            self._plain(416, b"", extra={"Content-Range": f"bytes */{size}"})
            return
        start, end, partial = span
        length = end - start + 1
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", self.guess_type(str(file)))
        self.send_header("Accept-Ranges", "bytes")
        announced = fault.after if fault is not None and fault.kind == "length" else length
        self.send_header("Content-Length", str(announced))
        self.send_header("ETag", f'"{int(file.stat().st_mtime)}-{size}"')
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if send_body:
            self._write_body(file, start, length, fault)

    def _range(self, size: int) -> tuple[int, int, bool] | None:
        header = self.headers.get("Range")
        match = _RANGE.match(header.strip()) if header else None
        if not match:
            return 0, max(size - 1, 0), False
        first, last = match.groups()
        if first == "":
            start, end = max(size - int(last or 0), 0), size - 1
        else:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        if start >= size or start > end:
            return None
        return start, end, True

    def _write_body(self, file: Path, start: int, length: int, fault: Fault | None) -> None:
        with file.open("rb") as src:
            src.seek(start)
            data = src.read(length)
        if fault is None:
            self.wfile.write(data)
            return
        if fault.kind == "trickle":
            _send_and_drop(self, data[: fault.after or len(data)], fault.seconds)
        else:
            _send_and_drop(self, data if fault.kind == "length" else data[: fault.after], None)


def _send_and_drop(handler: Any, data: bytes, trickle: float | None) -> None:
    """Send ``data`` (byte by byte ``trickle`` seconds apart when given), then drop the connection."""
    try:
        if trickle is not None:
            _trickle(handler.wfile, data, trickle)
        else:
            handler.wfile.write(data)
            handler.wfile.flush()
    except OSError:  # the client gave up (timeout): expected with these faults
        pass
    handler.close_connection = True
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _trickle(out: Any, data: bytes, seconds: float) -> None:
    """Write ``data`` one byte at a time, ``seconds`` apart."""
    for byte in data:
        out.write(bytes([byte]))
        out.flush()
        time.sleep(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, signed: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.signed = signed
        self.signature = 0  # the only valid ``sig`` value (0: none issued yet)
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.requests: list[tuple[str, str, str | None, dict[str, str]]] = []
        self._lock = threading.Lock()

    def issue_signature(self) -> int:
        with self._lock:
            self.signature += 1
            return self.signature

    def expire_signatures(self) -> None:
        with self._lock:
            self.signature += 1  # burnt: no URL carries it, so every issued one is stale

    def signature_ok(self, query: str) -> bool:
        from urllib.parse import parse_qs

        with self._lock:
            return parse_qs(query).get("sig") == [str(self.signature)]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the client dropped (expected with injected faults) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def record(self, method: str, path: str, rng: str | None, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path, rng, headers))

    def next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(path)
            return queue.popleft() if queue else None


class RangeHTTPServer:
    """Serve a folder on 127.0.0.1 with HTTP Range support and injected faults.

    Use as a context manager; ``url`` is the base URL. ``inject(path, *faults)``
    queues faults for the next requests to ``path`` (``/red.tif``); each is
    used once, in order. With ``signed=True`` every request must carry the
    newest signature ``?sig=N`` given by :meth:`sign` (a stand-in for expiring
    signed URLs such as SAS tokens), else it gets 403.

    Examples
    --------
    >>> with RangeHTTPServer(tmp_path) as server:  # doctest: +SKIP
    ...     server.inject("/red.tif", Fault("status", 503), Fault("reset", after=100))
    ...     rasterio.open(server.url + "/red.tif")
    """

    def __init__(self, root: str | os.PathLike[str], *, signed: bool = False) -> None:
        self.root = Path(root)
        self._server = _Server(self.root, signed)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, str, str | None, dict[str, str]]]:
        """(method, path, Range header, headers) of every request so far."""
        return list(self._server.requests)

    def inject(self, path: str, *faults: Fault) -> None:
        """Queue faults for the next requests to ``path``."""
        self._server.faults[path].extend(faults)

    def count(self, path: str, method: str = "GET") -> int:
        """How many requests of ``method`` reached ``path``."""
        return sum(1 for m, p, _, _ in self._server.requests if p == path and m == method)

    def sign(self, href: str) -> str:
        """``href`` with a fresh ``sig=N``; every signature issued before becomes stale.

        Usable as the ``sign`` hook of :func:`territoire_geo.imagery.fetch`.
        """
        return f"{href}{'&' if '?' in href else '?'}sig={self._server.issue_signature()}"

    def expire_signatures(self) -> None:
        """Make every signature issued so far stale (the next requests get 403)."""
        self._server.expire_signatures()

    def __enter__(self) -> RangeHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class StacApiServer:
    """``rustac serve`` (memory backend) on 127.0.0.1, serving given JSON files.

    Parameters
    ----------
    collections_and_items
        Paths to a collection JSON and an items NDJSON/JSON file, as
        ``rustac serve`` takes them.
    """

    startup_timeout: ClassVar[float] = 30.0

    def __init__(self, *paths: str | os.PathLike[str]) -> None:
        exe = shutil.which("rustac")
        if exe is None:
            raise RuntimeError("rustac is not installed; pip install rustac")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._cmd = [exe, "serve", "--addr", f"127.0.0.1:{self.port}", *map(str, paths)]
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> StacApiServer:
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"rustac serve exited: {err.strip()[:500]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("rustac serve did not answer in time")

    def __exit__(self, *exc: object) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._proc and self._proc.stderr:
            self._proc.stderr.close()


@dataclass
class Request:
    """What a :class:`RouteServer` handler receives."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        import json

        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a :class:`RouteServer` handler returns."""

    status: int = 200
    body: bytes | str | Any = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    #: Announce the whole body but send only this many bytes, then drop the connection.
    cut_after: int | None = None
    #: Announce this ``Content-Length`` instead of the real one (then drop the connection).
    content_length: int | None = None
    #: Send the body one byte at a time, this many seconds apart (then drop the connection).
    trickle: float | None = None

    def encoded(self) -> bytes:
        """The body as bytes (dicts and lists are JSON-encoded)."""
        import json

        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class _RouteHandler(SimpleHTTPRequestHandler):
    server: _RouteHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _handle(self) -> None:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers),
                          self.rfile.read(length) if length else b"")
        self.server.log.append(request)
        handler = self.server.routes.get((self.command, parts.path)) or self.server.routes.get(("*", parts.path))
        response = handler(request) if handler else Response(404, {"error": "not found"})
        body = response.encoded()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        announced = len(body) if response.content_length is None else response.content_length
        self.send_header("Content-Length", str(announced))
        for key, value in (response.headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.cut_after is None and response.trickle is None and response.content_length is None:
            self.wfile.write(body)
            return
        sent = body if response.cut_after is None else body[: response.cut_after]
        _send_and_drop(self, sent, response.trickle)

    do_GET = do_POST = do_HEAD = _handle


class _RouteHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        super().__init__(("127.0.0.1", 0), _RouteHandler)
        self.routes = routes
        self.log: list[Request] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection the client dropped (expected with injected faults) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RouteServer:
    """A loopback HTTP server answering hand-written responses per (method, path).

    ``routes`` maps ``("GET", "/search")`` (or ``("*", path)``) to a callable
    taking a :class:`Request` and returning a :class:`Response`; ``{base}`` in
    string bodies is not expanded — use :attr:`url` in the handler.
    """

    def __init__(self, routes: dict[tuple[str, str], Any] | None = None) -> None:
        self._server = _RouteHTTPServer(routes or {})
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def routes(self) -> dict[tuple[str, str], Any]:
        """The route table (mutable while the server runs)."""
        return self._server.routes

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Request]:
        """Every request received so far."""
        return list(self._server.log)

    def __enter__(self) -> RouteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
