"""An S3-protocol server on 127.0.0.1 for tests and benchmarks: moto's server app, a request log, faults.

moto's WSGI application (the one its ``moto_server`` command runs) is served by werkzeug on a free
loopback port, wrapped so that the tests can see each request and make object bodies misbehave. Nothing
here reaches beyond the loopback interface, and the storage library finds the server through the usual
configuration only (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...: see :meth:`S3Server.environment`)::

    with S3Server() as server, server.configured():   # sets the AWS_* variables for this process
        url = server.put("bucket", "w/model.bin", data)   # "s3://bucket/w/model.bin"
        server.cut("bucket", "w/model.bin", after=1000)   # the next GET sends 1000 bytes, then drops
        ...
        assert [r.range for r in server.log("GET", "bucket", "w/model.bin")] == [None, "bytes=1000-"]

``server.requests`` lists ``(method, bucket, key, range)`` in arrival order.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["S3Request", "S3Server"]

CHUNK = 64 * 1024


@dataclass(frozen=True)
class S3Request:
    """One request the server received."""

    method: str
    bucket: str
    key: str
    range: str | None  # the ``Range`` header as sent, e.g. ``bytes=1000-``


class S3Server:
    """moto's S3 on ``http://127.0.0.1:<free port>``, threaded, started on ``__enter__``."""

    def __init__(self) -> None:
        self.requests: list[S3Request] = []
        self._cuts: dict[tuple[str, str], list[int]] = {}
        self._delays: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._server = None
        self._fs = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> S3Server:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log(self, type, message, *args):  # the dropped connections are on purpose
                pass

        self._app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, name="s3-loopback", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def environment(self, config_dir: str = os.devnull) -> dict[str, str]:
        """The variables that point the AWS libraries at this server with dummy credentials, and away from
        anything else: no profile or config file, no instance-metadata lookup."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.path.join(config_dir, "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(config_dir, "aws-credentials")}

    @contextlib.contextmanager
    def configured(self, config_dir: str = os.devnull) -> Iterator[S3Server]:
        """Set :meth:`environment` in ``os.environ`` (children inherit it) and restore it afterwards."""
        names = [*self.environment(config_dir), "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"]
        saved = {name: os.environ.get(name) for name in names}
        for name in names:
            os.environ.pop(name, None)
        os.environ.update(self.environment(config_dir))
        try:
            yield self
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- objects (through s3fs, configured like the code under test) ------------------------------------
    def filesystem(self):
        """An s3fs filesystem of its own (no listing cache) for setting up and reading objects; the first call
        must come while :meth:`configured` is active."""
        if self._fs is None:
            import s3fs

            self._fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
        return self._fs

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Store ``data`` as ``s3://bucket/key`` (creating the bucket); return that URL."""
        fs = self.filesystem()
        if not fs.exists(bucket):
            fs.mkdir(bucket)
        fs.pipe_file(f"{bucket}/{key}", data)
        return f"s3://{bucket}/{key}"

    def preload(self, bucket: str, key: str, path: str | os.PathLike) -> str:
        """Store a large local file as ``s3://bucket/key`` straight into moto's backend; return that URL.

        An upload through the protocol would hold the body several times over in the server's memory
        (moto keeps whole bodies); this holds it once, briefly.
        """
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, "us-east-1")
        with open(path, "rb") as handle:
            backend.put_object(bucket, key, handle.read())
        return f"s3://{bucket}/{key}"

    def get(self, bucket: str, key: str) -> bytes:
        return self.filesystem().cat_file(f"{bucket}/{key}")

    def delete(self, bucket: str, key: str) -> None:
        self.filesystem().rm_file(f"{bucket}/{key}")

    # -- faults and the log ------------------------------------------------------------------------
    def cut(self, bucket: str, key: str, after: int) -> None:
        """The next GET of the object sends ``after`` body bytes, then closes the connection."""
        with self._lock:
            self._cuts.setdefault((bucket, key), []).append(after)

    def slow(self, bucket: str, key: str, delay: float) -> None:
        """Every GET of the object sends its body in 64 KiB pieces, ``delay`` seconds apart."""
        self._delays[(bucket, key)] = delay

    def log(self, method: str, bucket: str, key: str) -> list[S3Request]:
        return [r for r in self.requests if (r.method, r.bucket, r.key) == (method, bucket, key)]

    def clear_log(self) -> None:
        self.requests.clear()

    def _wsgi(self, environ, start_response):
        bucket, _, key = unquote(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
        method = environ["REQUEST_METHOD"]
        self.requests.append(S3Request(method, bucket, key, environ.get("HTTP_RANGE")))
        body = self._app(environ, start_response)
        if method != "GET" or not key:
            return body
        with self._lock:
            cuts = self._cuts.get((bucket, key))
            cut = cuts.pop(0) if cuts else None
        delay = self._delays.get((bucket, key), 0.0)
        if cut is None and not delay:
            return body
        return _misbehave(body, cut, delay)


def _misbehave(body, cut: int | None, delay: float):
    """Re-send ``body`` in 64 KiB pieces, ``delay`` apart, and drop the connection after ``cut`` bytes."""
    sent = 0
    try:
        for block in body:
            for start in range(0, len(block), CHUNK):
                piece = block[start:start + CHUNK]
                if cut is not None and sent + len(piece) >= cut:
                    yield piece[:cut - sent]
                    raise ConnectionAbortedError(f"cut after {cut} bytes (a test fault)")
                yield piece
                sent += len(piece)
                if delay:
                    time.sleep(delay)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
