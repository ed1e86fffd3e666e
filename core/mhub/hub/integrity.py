"""sha256 digests computed while bytes stream, and their checks."""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path

from .._errors import IntegrityError

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> tuple[str, int]:
    """Return ``(hex sha256, size in bytes)`` of a file, read once in 1 MiB chunks (hashlib runs OpenSSL)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


class StreamHasher:
    """sha256 of a byte stream, fed chunk by chunk as the bytes arrive.

    With ``threaded=True`` the hashing runs on a worker thread: hashlib releases the GIL for large
    updates, so the digest is computed while the caller waits on the socket and the disk, instead of
    after each chunk. Chunks must not be mutated after :meth:`update` (``bytes`` are safe).

    Args:
        threaded: hash on a worker thread (the project's pull-throughput benchmark measures the gain).
        depth: chunks the worker may lag behind before :meth:`update` blocks (bounds the memory held).
    """

    def __init__(self, *, threaded: bool = True, depth: int = 32):
        self._digest = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=depth)
            self._worker = threading.Thread(target=self._run, name="mhub-sha256", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` to the digest."""
        self.size += len(chunk)
        if self._queue is None:
            self._digest.update(chunk)
        else:
            self._queue.put(chunk)

    def update_from_file(self, path: str | Path, length: int) -> None:
        """Feed the first ``length`` bytes of ``path`` (the kept part of an interrupted download)."""
        with open(path, "rb") as handle:
            while length > 0 and (chunk := handle.read(min(CHUNK, length))):
                self.update(chunk)
                length -= len(chunk)

    def hexdigest(self) -> str:
        """Finish and return the hex digest (waits for the worker to catch up)."""
        self.close()
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stop the worker thread (idempotent); call it when abandoning a stream too."""
        if self._worker is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._worker.join()
            self._worker = None


def check_digest(actual: str, *, sha256: str | None, prefix: str | None, what: str, size: int | None = None,
                 expected_size: int | None = None) -> None:
    """Raise :class:`IntegrityError` unless ``actual`` matches the full digest or the upstream prefix.

    Args:
        actual: hex sha256 of the bytes received.
        sha256: expected full digest, when known.
        prefix: expected upstream prefix (torch.hub style), used when no full digest is known.
        what: the URL or path the bytes came from, named in the message.
        size: bytes received; expected_size: bytes the manifest promises (checked first when both given).
    """
    if size is not None and expected_size is not None and size != expected_size:
        raise IntegrityError(f"{what}: received {size} bytes, expected {expected_size} "
                             f"(sha256 {actual}); nothing was cached")
    if sha256 is not None and actual != sha256:
        raise IntegrityError(f"{what}: sha256 mismatch: expected {sha256}, got {actual}; nothing was cached")
    if sha256 is None and prefix is not None and not actual.startswith(prefix):
        raise IntegrityError(f"{what}: sha256 mismatch: expected a digest starting with {prefix} "
                             f"(upstream prefix), got {actual}; nothing was cached")
    if sha256 is None and prefix is None:
        raise IntegrityError(f"{what}: no expected sha256 to check against")
