"""A threaded HTTP server on 127.0.0.1 for tests: static files, Range, HF resolve routes and faults.

Nothing here reaches beyond the loopback interface. Typical use::

    from loopback import Fault, LoopbackServer      # tests/ is on sys.path under pytest

    with LoopbackServer() as server:
        url = server.add("/w/model.bin", data, faults=[Fault.status(500), Fault.drop(after=1000)])
        ...                                         # GETs of /w/model.bin: 500, then a dropped body, then OK
        assert server.count("/w/model.bin") == 3
        assert server.requests[-1].range == (1000, None)   # the last GET asked for bytes=1000-

Faults are consumed one per GET of their path, in order; once a path's queue is empty it is served
normally (with ``Range`` support unless ``range_support=False``), or with its ``always`` fault, which
answers every later GET (a server that misbehaves every time). HEAD requests never consume faults.
``server.sent(path)`` counts the body bytes written for a path, so a test can bound what a client read.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

__all__ = ["Fault", "LoopbackServer", "Request", "wait_for"]

CHUNK = 64 * 1024
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Request:
    """One request the server received (the log keeps them in arrival order)."""

    method: str
    path: str
    headers: Mapping[str, str]
    range: tuple[int, int | None] | None  # parsed ``Range: bytes=a-b`` (b None for open-ended)
    fault: str | None  # kind of the fault that answered it, None when served normally
    time: float  # time.monotonic() on arrival


@dataclass(frozen=True)
class Fault:
    """A misbehaviour for one GET. Build them with the class methods below."""

    kind: str
    arg: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def status(cls, code: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Fault:
        """Answer with ``code`` (e.g. 500, 404, or 429 with ``{"Retry-After": "1"}``) and ``body``."""
        return cls("status", code, dict(headers or {}), body)

    @classmethod
    def corrupt(cls, offset: int = 0) -> Fault:
        """Serve the file with the byte at ``offset`` flipped (wrong bytes, right length)."""
        return cls("corrupt", offset)

    @classmethod
    def truncate(cls, size: int) -> Fault:
        """Serve only the first ``size`` bytes, with a ``Content-Length`` that agrees (a short file)."""
        return cls("truncate", size)

    @classmethod
    def drop(cls, after: int) -> Fault:
        """Promise the full length, send ``after`` body bytes, then close the connection."""
        return cls("drop", after)

    @classmethod
    def stall(cls, seconds: float, after: int | None = None) -> Fault:
        """Go silent for ``seconds`` (before the headers, or after ``after`` body bytes), then close."""
        return cls("stall", (seconds, after))

    @classmethod
    def overstate(cls, extra: int) -> Fault:
        """Send the whole body with a ``Content-Length`` ``extra`` bytes larger, then close the connection."""
        return cls("overstate", extra)

    @classmethod
    def drip(cls, interval: float, step: int = 1) -> Fault:
        """Promise the full length, then send ``step`` bytes every ``interval`` seconds (a slow-drip server)."""
        return cls("drip", (interval, step))

    @classmethod
    def endless(cls, content_length: int | None = None) -> Fault:
        """Stream zeros until the client hangs up: no ``Content-Length`` (the body ends when the connection
        closes), or the given ``content_length``, however large."""
        return cls("endless", content_length)

    @classmethod
    def redirect(cls, location: str, code: int = 302) -> Fault:
        """Redirect to ``location`` (a path on this server or a full URL)."""
        return cls("redirect", (code, location))

    @classmethod
    def ok(cls) -> Fault:
        """Serve normally (to put a good answer between faults)."""
        return cls("ok")


@dataclass
class _Route:
    data: bytes | Path
    headers: dict[str, str]
    faults: list[Fault]
    chunk_delay: float
    size: int
    redirect: str | None = None  # a route that always answers 302 to this location (HF LFS files)
    always: Fault | None = None  # answers every GET once ``faults`` is used up

    def read(self, start: int, stop: int) -> bytes:
        if isinstance(self.data, bytes):
            return self.data[start:stop]
        with open(self.data, "rb") as handle:
            handle.seek(start)
            return handle.read(stop - start)


class LoopbackServer:
    """An HTTP/1.1 server on ``127.0.0.1`` (an ephemeral port) running in background threads.

    Args:
        range_support: answer ``Range: bytes=a-[b]`` with 206; when False, ignore Range (always 200).
    """

    def __init__(self, *, range_support: bool = True):
        self.range_support = range_support
        self._routes: dict[str, _Route] = {}
        self._log: list[Request] = []
        self._sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- content -----------------------------------------------------------------------------------
    def add(self, path: str, data: bytes | str | os.PathLike, *, headers: Mapping[str, str] | None = None,
            faults: Iterable[Fault] = (), chunk_delay: float = 0.0, always: Fault | None = None) -> str:
        """Serve ``data`` (bytes, or a file path read on each request) at ``path``; return its full URL.

        Args:
            path: URL path starting with ``/`` (stored unquoted).
            data: the body.
            headers: extra response headers (HEAD and GET).
            faults: misbehaviours for the next GETs of this path, one each, in order.
            chunk_delay: seconds to sleep after each 64 KiB of body (a slow server).
            always: the misbehaviour of every GET after ``faults`` (None: serve normally).
        """
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        if not isinstance(data, bytes):
            data = Path(data)
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        with self._lock:
            self._routes[unquote(path)] = _Route(data, dict(headers or {}), list(faults), chunk_delay, size,
                                                 always=always)
        return self.url + quote(path)

    def add_faults(self, path: str, *faults: Fault) -> None:
        """Queue more faults for an existing path."""
        with self._lock:
            self._routes[unquote(path)].faults.extend(faults)

    def add_hf_file(self, repo_id: str, filename: str, data: bytes, *, revision: str = "main",
                    commit: str = "0123456789abcdef0123456789abcdef01234567", lfs: bool = False,
                    faults: Iterable[Fault] = ()) -> str:
        """Emulate the Hugging Face Hub ``resolve`` endpoint for one file; return the ``hf://`` URL.

        Serves HEAD/GET ``/{repo_id}/resolve/{revision}/{filename}`` with the headers huggingface_hub reads
        (``X-Repo-Commit``, ``ETag``; with ``lfs`` a 302 to ``/lfs/<sha256>`` carrying ``X-Linked-Etag`` and
        ``X-Linked-Size``, as the Hub does for LFS files; the redirect names ``localhost`` so that, like a
        CDN, it is another host, which huggingface_hub does not follow for HEAD). Point ``HF_ENDPOINT`` at
        :attr:`url`.
        """
        digest = hashlib.sha256(data).hexdigest()
        resolve = f"/{repo_id}/resolve/{revision}/{filename}"
        common = {"X-Repo-Commit": commit}
        if lfs:
            blob = f"/lfs/{digest}"
            self.add(blob, data, faults=faults)
            redirect_headers = {**common, "X-Linked-Etag": f'"{digest}"',
                                "X-Linked-Size": str(len(data))}
            with self._lock:
                cdn = self.url.replace("127.0.0.1", "localhost") + blob
                self._routes[resolve] = _Route(b"", redirect_headers, [], 0.0, 0, redirect=cdn)
        else:
            self.add(resolve, data, headers={**common, "ETag": f'"{digest}"'}, faults=faults)
        return f"hf://{repo_id}/{filename}@{revision}"

    # -- the log -----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self._log)

    def count(self, path: str, method: str = "GET") -> int:
        """How many ``method`` requests ``path`` received."""
        path = unquote(path)
        return sum(1 for r in self.requests if r.path == path and r.method == method)

    def sent(self, path: str) -> int:
        """Body bytes written so far for ``path`` (every GET together)."""
        with self._lock:
            return self._sent.get(unquote(path), 0)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._sent.clear()

    # -- used by the handler -----------------------------------------------------------------------
    def _take(self, method: str, path: str) -> tuple[_Route | None, Fault | None]:
        with self._lock:
            route = self._routes.get(path)
            fault = None
            if route is not None and method == "GET":
                fault = route.faults.pop(0) if route.faults else route.always
        return route, fault

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    def _count_sent(self, path: str, count: int) -> None:
        with self._lock:
            self._sent[path] = self._sent.get(path, 0) + count


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: LoopbackServer

    def log_message(self, format, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- helpers -----------------------------------------------------------------------------------
    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        route, fault = self.owner._take(self.command, path)
        wanted = _parse_range(self.headers.get("Range"))
        self.owner._record(Request(self.command, path, dict(self.headers.items()), wanted,
                                   fault.kind if fault else None, time.monotonic()))
        if route is None:
            return self._simple(404, b"not found\n", head)
        extra = dict(route.headers)
        if route.redirect is not None:
            return self._simple(302, b"", head, {**extra, "Location": route.redirect})
        kind = fault.kind if fault else "ok"
        if kind == "status":
            return self._simple(fault.arg, fault.body, head, fault.headers)
        if kind == "redirect":
            code, location = fault.arg
            return self._simple(code, b"", head, {"Location": location})
        if kind == "stall" and fault.arg[1] is None:
            self.owner._stopping.wait(fault.arg[0])
            return self._hang_up()
        if kind == "endless":
            return self._endless(path, fault.arg, head, extra)

        size = route.size if kind != "truncate" else min(fault.arg, route.size)
        start, stop, status = 0, size, 200
        if wanted is not None and self.owner.range_support:
            start = wanted[0]
            stop = size if wanted[1] is None else min(wanted[1] + 1, size)
            if start >= size:
                return self._simple(416, b"", head, {"Content-Range": f"bytes */{size}"})
            status = 206
            extra["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(stop - start + (fault.arg if kind == "overstate" else 0)))
        self.send_header("Accept-Ranges", "bytes" if self.owner.range_support else "none")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return

        limit = stop - start  # body bytes to send before a drop/stall
        if kind == "drop":
            limit = min(limit, fault.arg)
        elif kind == "stall":
            limit = min(limit, fault.arg[1])
        plain = kind in ("ok", "truncate") and route.chunk_delay == 0 and isinstance(route.data, Path)
        try:
            if plain:
                with open(route.data, "rb") as handle:  # sendfile: fast enough for 1 GiB benchmarks
                    self.connection.sendfile(handle, offset=start, count=limit)
                self.owner._count_sent(path, limit)
            else:
                self._write_body(path, route, start, start + limit, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if kind == "stall":
            self.owner._stopping.wait(fault.arg[0])
        if kind in ("drop", "stall", "overstate"):
            self._hang_up()

    def _write_body(self, path: str, route: _Route, start: int, stop: int, fault: Fault | None) -> None:
        step, delay = CHUNK, route.chunk_delay
        if fault is not None and fault.kind == "drip":
            delay, step = fault.arg
        for offset in range(start, stop, step):
            chunk = route.read(offset, min(offset + step, stop))
            if fault is not None and fault.kind == "corrupt" and offset <= fault.arg < offset + len(chunk):
                index = fault.arg - offset
                chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1:]
            self.wfile.write(chunk)
            self.owner._count_sent(path, len(chunk))
            if delay:
                self.wfile.flush()
                if self.owner._stopping.wait(delay):
                    raise BrokenPipeError("server stopping")
        self.wfile.flush()

    def _endless(self, path: str, content_length: int | None, head: bool, extra: Mapping[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if content_length is not None:
            self.send_header("Content-Length", str(content_length))
        self.send_header("Connection", "close")  # without a length, the body ends when the connection does
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        if head:
            return
        zeros = bytes(CHUNK)
        try:
            while not self.owner._stopping.is_set():
                self.wfile.write(zeros)
                self.owner._count_sent(path, len(zeros))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _simple(self, code: int, body: bytes, head: bool, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _parse_range(value: str | None) -> tuple[int, int | None] | None:
    match = RANGE_RE.match(value.strip()) if value else None
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(interval)
    return bool(result)
