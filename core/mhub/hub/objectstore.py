"""Object storage through fsspec: ``s3://`` (and ``gs://``, ``az://``, any protocol fsspec knows) as a
source scheme (:func:`fetch_object`), and mirror trees written straight to it (:func:`upload`,
:func:`write_bytes`, used by ``mhub mirror s3://bucket/prefix``).

The storage library does the talking and the scaling; the hub keeps its guarantees, because the fetcher
only hands it chunks (see :mod:`mhub.hub`): the sha256 is computed as they arrive, nothing enters the
cache unverified, an interrupted read resumes at the bytes already held, retries, locks and size caps
apply as for HTTP.

- ``s3://`` (s3fs, the ``mhub[s3]`` extra) is read as one ``GetObject`` stream from the offset on, as
  s3fs's own ``get`` reads, with ``MHUB_TIMEOUT`` as its read timeout.
- Any other protocol is read through the filesystem's file object in ranged windows of
  :data:`WINDOW` bytes (one ranged request each on object stores).

Credentials and endpoints come from the storage library's own configuration (for S3:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, ...), never from a
manifest: a URL carrying a password or an fsspec chain (``a::b``) is refused, as are fsspec's caching
and wrapper protocols, which would write outside ``MHUB_HOME``.

fsspec is imported only when such a URL is fetched or written.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._errors import MhubError, NetworkError
from .sources import (CHUNK, ResumeUnsupported, TransientError, check_announced_length, error_reason, file_url_path,
                      range_starts_at, timeouts)

WINDOW = 8 << 20  # bytes per ranged read of the generic path: few requests, bounded memory
READ_AHEAD = 16  # chunks (of at most CHUNK bytes) an S3 read may run ahead of the hub: bounded memory
EXTRAS = {"s3": "s3", "s3a": "s3"}  # protocol -> the mhub extra that brings its fsspec implementation
# fsspec protocols that cache to local disk or re-dispatch to other URLs: not storage a source may name
WRAPPERS = frozenset({"blockcache", "filecache", "simplecache", "cached", "dir", "reference"})
# object stores named without fsspec installed still get the "install it" line
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
# failures no retry can mend (the hub moves on to the next source at once)
FINAL_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError, TypeError,
                KeyError, NotImplementedError)


def handles(scheme: str) -> bool:
    """True when ``scheme`` is an object-storage protocol fsspec knows (or would know with its package)."""
    if scheme in OBJECT_STORES:
        return True
    try:
        import fsspec
    except ImportError:
        return False
    return scheme in fsspec.available_protocols() or scheme in fsspec.registry  # (classes registered at run time)


def is_url(target: str) -> bool:
    """True when ``target`` names object storage (``scheme://...``) rather than a local folder."""
    scheme = urlsplit(target).scheme.lower()
    return "://" in target and len(scheme) > 1 and scheme != "file"


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` (configured from the environment) and the path inside it.

    Raises:
        NetworkError: the protocol's package is not installed (the message names what to install), or
            the URL carries credentials, chains filesystems or names a caching wrapper.
    """
    protocol = urlsplit(url).scheme.lower()
    if "::" in url:
        raise NetworkError(f"{url}: chained fsspec URLs (a::b) are not accepted; name the storage URL itself")
    if urlsplit(url).password is not None:
        raise NetworkError(f"{url}: a URL may not carry a password; credentials come from the storage library's "
                           "own configuration (for s3://: AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)")
    if protocol in WRAPPERS:
        raise NetworkError(f"{url}: {protocol}:// is an fsspec wrapper, not storage; name the storage URL itself")
    try:
        import fsspec

        cls = fsspec.get_filesystem_class(protocol)
    except ImportError as error:
        raise NetworkError(_missing_package(url, protocol, error)) from None
    except ValueError:  # "Protocol not known"
        raise NetworkError(f"{url}: no storage library knows {protocol}:// (fsspec's protocols: s3, gs, az, "
                           "...)") from None
    options: dict[str, Any] = {}
    if "s3" in _protocols(cls):
        connect, read = timeouts()
        options["config_kwargs"] = {"connect_timeout": connect, "read_timeout": read}
    try:
        fs = cls(**{**cls._get_kwargs_from_urls(url), **options})
    except Exception as error:  # a misconfiguration the library reports while connecting
        raise NetworkError(f"{url}: cannot set up {protocol}://: {type(error).__name__}: "
                           f"{error_reason(error)}") from error
    return fs, cls._strip_protocol(url)


def _protocols(cls) -> tuple[str, ...]:
    protocol = cls.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _missing_package(url: str, protocol: str, error: ImportError) -> str:
    extra = EXTRAS.get(protocol)
    if extra:
        return f'{url}: {protocol}:// needs the {extra} extra, which is not installed: pip install "mhub[{extra}]"'
    return f"{url}: {protocol}:// needs a package that is not installed ({error_reason(error)})"


# -- reading ----------------------------------------------------------------------------------------
def fetch_object(url: str, *, offset: int = 0, staging: Path | None = None) -> Iterator[bytes]:
    """Stream the object at ``url`` from byte ``offset`` (the source-fetcher protocol of :mod:`mhub.hub`).

    Raises:
        TransientError: connection lost, timeouts, server errors (retried by the hub, from the bytes held).
        ResumeUnsupported: ``offset`` lies at or past the object's end.
        IntegrityError: the object is larger than :data:`~mhub.hub.sources.BODY_LIMIT` (nothing is read).
        NetworkError: not found, access denied, no credentials, the protocol's package missing.
    """
    fs, path = filesystem(url)
    if "s3" in _protocols(type(fs)):
        yield from _stream_s3(fs, path, url, offset)
    else:
        yield from _read_windows(fs, path, url, offset)


def _stream_s3(fs, path: str, url: str, offset: int) -> Iterator[bytes]:
    """One ``GetObject`` from ``offset`` on, its body handed on as it arrives (read on s3fs's event loop)."""
    from fsspec.asyn import sync

    bucket, key, version = fs.split_path(path)
    request: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        request["VersionId"] = version
    if offset:
        request["Range"] = f"bytes={offset}-"
    try:
        response = fs.call_s3("get_object", **request)
    except Exception as error:
        raise _failure(url, error, offset) from error
    body, reader = response["Body"], None
    try:
        if offset and not range_starts_at(response.get("ContentRange"), offset):
            raise ResumeUnsupported(f"{url}: the server ignored the range from byte {offset}")
        check_announced_length(url, str(response.get("ContentLength", "")))
        reader = sync(fs.loop, _ReadAhead.start, body)
        while True:
            chunks, ended, error = sync(fs.loop, reader.take)
            yield from chunks  # the bytes that arrived before a failure still count towards the resume
            if error is not None:
                raise _failure(url, error, offset) from error
            if ended:
                return
    finally:
        sync(fs.loop, _stop, reader, body)  # on its own loop: aiohttp connections are not thread-safe


class _ReadAhead:
    """Reads a body on the event loop into a bounded queue while the hub writes and hashes what came
    before: the socket keeps draining, and the hub crosses threads once per batch, not once per read."""

    def __init__(self, body):
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=READ_AHEAD)
        self.ended = False
        self.task = asyncio.ensure_future(self._pump(body))

    @classmethod
    async def start(cls, body) -> _ReadAhead:
        return cls(body)

    async def _pump(self, body) -> None:
        try:
            while chunk := await body.read(CHUNK):
                await self.queue.put(chunk)
            await self.queue.put(b"")
        except Exception as error:  # handed on after the bytes read before it
            await self.queue.put(error)

    async def take(self) -> tuple[list[bytes], bool, BaseException | None]:
        """``(chunks, ended, error)``: what was read since the last call (waiting for something)."""
        chunks: list[bytes] = []
        if self.ended:
            return chunks, True, None
        item = await self.queue.get()
        while True:
            if isinstance(item, BaseException) or not item:
                self.ended = True
                return chunks, True, item if isinstance(item, BaseException) else None
            chunks.append(item)
            if self.queue.empty():
                return chunks, False, None
            item = self.queue.get_nowait()


async def _stop(reader: _ReadAhead | None, body) -> None:
    if reader is not None:
        reader.task.cancel()
    body.close()


def _read_windows(fs, path: str, url: str, offset: int) -> Iterator[bytes]:
    """Any fsspec filesystem: its file object from ``offset``, read in :data:`WINDOW`-byte requests."""
    try:
        handle = fs.open(path, "rb", block_size=WINDOW, cache_type="none")
    except Exception as error:
        raise _failure(url, error, offset) from error
    with handle:
        try:
            size = getattr(handle, "size", None)
            size = fs.size(path) if size is None else size
            if offset and offset >= size:
                raise ResumeUnsupported(f"{url}: the object has {size} bytes, nothing from byte {offset}")
            check_announced_length(url, str(size - offset))
            handle.seek(offset)
            while chunk := handle.read(WINDOW):
                yield chunk
        except MhubError:
            raise
        except Exception as error:
            raise _failure(url, error, offset) from error


def _failure(url: str, error: BaseException, offset: int) -> NetworkError:
    """The hub's error for a storage library's exception: final ones move on, the rest are retried."""
    if isinstance(error, MhubError):
        return error
    reason = error_reason(error)
    if "Credential" in type(error).__name__:  # botocore's NoCredentialsError and kin
        return NetworkError(f"{url}: {reason}: configure the storage library's credentials (for s3://: "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)")
    if isinstance(error, FileNotFoundError):
        return NetworkError(f"{url}: not found ({reason})")
    if isinstance(error, PermissionError):
        return NetworkError(f"{url}: access denied ({reason})")
    if offset and isinstance(error, OSError) and error.errno == 22:  # s3fs's InvalidRange (HTTP 416)
        return ResumeUnsupported(f"{url}: range from byte {offset} not satisfiable")
    if isinstance(error, FINAL_ERRORS):
        return NetworkError(f"{url}: {type(error).__name__}: {reason}")
    return TransientError(f"{url}: {type(error).__name__}: {reason}")


# -- writing (``mhub mirror s3://bucket/prefix``) ------------------------------------------------------
def upload(path: Path, url: str, size: int) -> bool:
    """Upload the local file ``path`` to ``url`` unless an object of ``size`` bytes is already there.

    Returns:
        True when it was written.

    Raises:
        NetworkError: the storage refused the write or could not be reached (the message names ``url``).
    """
    fs, remote = filesystem(url)
    try:
        fs.invalidate_cache(remote)  # a listing cached earlier in this process must not hide a change
        try:
            if int(fs.info(remote)["size"]) == size:
                return False
        except FileNotFoundError:
            pass
        fs.put_file(str(path), remote)
    except Exception as error:
        raise _write_failure(url, error) from error
    return True


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` as the object ``url`` (replacing it).

    Raises:
        NetworkError: the storage refused the write or could not be reached.
    """
    fs, remote = filesystem(url)
    try:
        fs.pipe_file(remote, data)
    except Exception as error:
        raise _write_failure(url, error) from error


def _write_failure(url: str, error: BaseException) -> NetworkError:
    return NetworkError(f"cannot write the mirror: {_failure(url, error, 0)}")


def local_path(target: str) -> Path:
    """The folder a mirror target names when it is not object storage (a path or a ``file://`` URL)."""
    if target.startswith("file://"):
        return file_url_path(target)
    return Path(os.path.expanduser(target))
