"""Fetchers for source URL schemes: ``http``/``https`` (requests), ``file``, ``hf`` (huggingface_hub);
object storage (``s3://`` and the other fsspec protocols) lives in :mod:`mhub.hub.objectstore`.

A fetcher implements the protocol documented in :mod:`mhub.hub`; plugins add schemes through the
``register_sources`` hook. requests, huggingface_hub and fsspec are imported only when a fetch starts.
"""

from __future__ import annotations

import contextvars
import email.utils
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from .. import __version__
from .._errors import IntegrityError, MhubError, NetworkError

CHUNK = 1 << 20
BUILTIN_SCHEMES = ("http", "https", "file", "hf")
INDEX_LIMIT = 1 << 20  # bytes: a mirror's name index is a few hundred


# Whether the running pull shows progress; fetchers with their own bars (huggingface_hub's) read it.
SHOW_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("mhub_show_progress", default=False)
# ``(bytes, why)``: the most the running fetch may deliver from its offset on, and what sets that limit.
# The hub stops reading past it whatever the fetcher does; a fetcher that learns the length up front
# (an HTTP Content-Length) refuses at once instead.
BODY_LIMIT: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar("mhub_body_limit",
                                                                                     default=None)


class Source(Protocol):
    """A fetcher: ``fetcher(url, *, offset, staging) -> Iterable[bytes] | os.PathLike``.

    See the :mod:`mhub.hub` module docstring for the contract.
    """

    def __call__(self, url: str, *, offset: int, staging: Path) -> Iterable[bytes] | os.PathLike: ...


class TransientError(NetworkError):
    """A failure worth retrying (connection error, timeout, 429, 5xx); may carry ``Retry-After`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ResumeUnsupported(NetworkError):
    """The source cannot start at the requested offset; the hub starts the file over from byte 0."""


def env_number(name: str, default: float) -> float:
    """The non-negative number in environment variable ``name`` (``default`` when unset or empty).

    Raises:
        MhubError: the value is not a non-negative number (the message names the variable).
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise MhubError(f"{name}={value!r} is not a non-negative number")
    return number


def timeouts() -> tuple[float, float]:
    """``(connect, read)`` timeouts in seconds; ``MHUB_TIMEOUT`` sets the read timeout (default 30)."""
    read = env_number("MHUB_TIMEOUT", 30.0)
    return min(10.0, read), read


def fetcher_for(url: str) -> Source:
    """The fetcher for ``url``'s scheme: a built-in one, one a plugin registered, or object storage through
    fsspec (:mod:`mhub.hub.objectstore`) for any other protocol fsspec knows.

    Raises:
        NetworkError: no fetcher handles the scheme (the message lists the known ones).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return fetch_http
    if scheme == "file":
        return fetch_file
    if scheme == "hf":
        return fetch_hf
    from .._lazy import import_string
    from .._registry import get_registry

    sources = get_registry().sources
    if scheme in sources:
        return import_string(sources[scheme][0])
    from . import objectstore

    if objectstore.handles(scheme):
        return objectstore.fetch_object
    known = ", ".join(sorted({*BUILTIN_SCHEMES, *sources}))
    raise NetworkError(f"{url}: no fetcher for scheme '{scheme}://' (known: {known}, and the protocols fsspec "
                       "knows, s3:// with mhub[s3]); a plugin can add one with the register_sources hook")


# -- http(s) ----------------------------------------------------------------------------------------
_local = threading.local()


def _session():
    """One requests.Session per thread (connection reuse; Session is not documented as thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        import requests

        session = _local.session = requests.Session()
        session.headers["User-Agent"] = f"mhub/{__version__}"
    return session


def retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After``: delta seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def fetch_http(url: str, *, offset: int = 0, staging: Path | None = None) -> Iterator[bytes]:
    """Stream ``url`` from byte ``offset`` (``Range: bytes=offset-``), following redirects.

    Chunks are handed on as they arrive (``read1``), so the hub sees a slow drip as it happens.

    Raises:
        TransientError: connection errors, timeouts, a dropped stream, 429, 5xx (retried by the hub).
        ResumeUnsupported: ``offset > 0`` and the server answered 200 or 416 instead of the range.
        IntegrityError: the announced ``Content-Length`` exceeds :data:`BODY_LIMIT` (nothing is read).
        NetworkError: any other 4xx (not retried).
    """
    import requests

    headers = {"Accept-Encoding": "identity"}  # the bytes as stored, so the digest and Range agree
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = _session().get(url, headers=headers, stream=True, timeout=timeouts())
    except requests.Timeout as error:
        raise TransientError(f"{url}: timed out ({error.__class__.__name__})") from error
    except requests.ConnectionError as error:
        raise TransientError(f"{url}: connection failed: {error_reason(error)}") from error
    except requests.RequestException as error:
        raise NetworkError(f"{url}: request failed: {error_reason(error)}") from error
    with response:
        status = response.status_code
        if status == 416 and offset:
            raise ResumeUnsupported(f"{url}: range from byte {offset} not satisfiable")
        if status == 429 or status >= 500:
            raise TransientError(f"{url}: HTTP {status} {response.reason or ''}".rstrip(),
                                 retry_after=retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 400:
            raise NetworkError(f"{url}: HTTP {status} {response.reason or ''}".rstrip())
        if offset and (status != 206 or not range_starts_at(response.headers.get("Content-Range"), offset)):
            raise ResumeUnsupported(f"{url}: server ignored Range (HTTP {status})")
        check_announced_length(url, response.headers.get("Content-Length"))
        raw = response.raw
        try:
            while chunk := raw.read1(CHUNK):
                yield chunk
        except Exception as error:  # urllib3 ProtocolError/ReadTimeoutError, socket errors: a drop
            if isinstance(error, MhubError):
                raise
            raise TransientError(f"{url}: connection lost mid-stream: {error_reason(error)}") from error


def check_announced_length(url: str, length: str | None) -> None:
    """Refuse at once a body whose announced length exceeds :data:`BODY_LIMIT` (an :class:`IntegrityError`)."""
    limit = BODY_LIMIT.get()
    if limit is not None and length and length.strip().isdigit() and int(length) > limit[0]:
        raise IntegrityError(f"{url}: the server announces {int(length)} bytes, more than the {limit[0]} "
                             f"allowed ({limit[1]}); nothing was cached")


def range_starts_at(content_range: str | None, offset: int) -> bool:
    """True when a ``Content-Range`` (``bytes 100-199/200``) starts at byte ``offset``."""
    if not content_range or not content_range.startswith("bytes "):
        return False
    first = content_range[6:].split("-", 1)[0]
    return first.isdigit() and int(first) == offset


def error_reason(error: BaseException) -> str:
    """The first line of an exception's message (its class name when empty), at most 300 characters."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:300]


def fetch_small(url: str, limit: int = INDEX_LIMIT) -> bytes:
    """GET a small document (a mirror's name index) through the scheme's fetcher, once.

    Bounded in memory and time: at most ``limit`` bytes, all within the read timeout (``MHUB_TIMEOUT``).

    Raises:
        NetworkError: the source failed, sent more than ``limit`` bytes, or was too slow.
    """
    deadline = time.monotonic() + timeouts()[1]
    token = BODY_LIMIT.set((limit, "a name index"))
    try:
        result = fetcher_for(url)(url, offset=0, staging=Path(os.devnull))
        if isinstance(result, os.PathLike):
            if Path(result).stat().st_size > limit:
                raise NetworkError(f"{url}: larger than {limit} bytes")
            return Path(result).read_bytes()
        data = bytearray()
        try:
            for chunk in result:
                data += chunk
                if len(data) > limit:
                    raise NetworkError(f"{url}: larger than {limit} bytes")
                if time.monotonic() > deadline:
                    raise NetworkError(f"{url}: not complete within MHUB_TIMEOUT ({timeouts()[1]:g} s)")
        finally:
            close_stream(result)
        return bytes(data)
    finally:
        BODY_LIMIT.reset(token)


def close_stream(chunks: Iterable[bytes]) -> None:
    """Close an abandoned chunk generator now (its connection), not whenever it is garbage-collected."""
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


# -- file -------------------------------------------------------------------------------------------
def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL (``file:///abs`` or ``file://localhost/abs``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise NetworkError(f"{url}: file:// URLs must be local (file:///path)")
    return Path(unquote(parts.path))


def fetch_file(url: str, *, offset: int = 0, staging: Path | None = None) -> Iterator[bytes]:
    """Read a local file from ``offset``; a missing file is a (non-retried) :class:`NetworkError`."""
    path = file_url_path(url)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise NetworkError(f"{url}: cannot read {path}: {error.strerror or error}") from error
    with handle:
        handle.seek(offset)
        while chunk := handle.read(CHUNK):
            yield chunk


# -- hf ---------------------------------------------------------------------------------------------
def parse_hf_url(url: str) -> tuple[str, str, str]:
    """Split ``hf://org/repo/path/in/repo[@revision]`` into ``(repo_id, filename, revision)``."""
    body = url[len("hf://"):]
    revision = "main"
    if "@" in body:
        body, revision = body.rsplit("@", 1)
    parts = body.split("/")
    if len(parts) < 3 or not all(parts) or not revision:
        raise NetworkError(f"{url}: hf:// sources are hf://org/repo/path[@revision]")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision


def fetch_hf(url: str, *, offset: int = 0, staging: Path) -> Path:
    """Download through ``huggingface_hub.hf_hub_download`` into ``staging`` and return the file.

    ``HF_ENDPOINT`` is read at call time (huggingface_hub reads it once, at import). Its own resume
    state lives in ``staging``, which the hub keeps across interrupted runs.
    """
    from huggingface_hub import hf_hub_download

    repo_id, filename, revision = parse_hf_url(url)
    progress = SHOW_PROGRESS.get()
    try:
        path = hf_hub_download(
            repo_id, filename, revision=revision, local_dir=staging, library_name="mhub",
            library_version=__version__,
            endpoint=os.environ.get("HF_ENDPOINT") or None, etag_timeout=timeouts()[1],
            tqdm_class=None if progress else _SilentTqdm.get(),
        )
    except OSError as error:
        from .cache import is_no_space

        if is_no_space(error):
            raise
        # huggingface_hub retries its metadata request (and drops mid-download) itself, so those
        # verdicts are final here; a 429/5xx on the file's GET it does not retry, so we do.
        status, method = _status_and_method(error)
        if method == "GET" and status is not None and (status == 429 or status >= 500):
            raise TransientError(f"{url}: {error_reason(error)}") from error
        raise NetworkError(f"{url}: {error_reason(error)}") from error
    except Exception as error:  # httpx2 transport errors that escaped huggingface_hub's handling
        raise NetworkError(f"{url}: {type(error).__name__}: {error_reason(error)}") from error
    return Path(path)


def _status_and_method(error: BaseException) -> tuple[int | None, str | None]:
    response = getattr(error, "response", None)
    try:
        return getattr(response, "status_code", None), response.request.method
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return getattr(response, "status_code", None), None


class _SilentTqdm:
    """A tqdm class with ``disable=True`` for huggingface_hub when progress is off (built on first use)."""

    _cls: Any = None

    @classmethod
    def get(cls):
        if cls._cls is None:
            from tqdm.auto import tqdm

            class Silent(tqdm):
                def __init__(self, *args, **kwargs):
                    kwargs["disable"] = True
                    super().__init__(*args, **kwargs)

            cls._cls = Silent
        return cls._cls
