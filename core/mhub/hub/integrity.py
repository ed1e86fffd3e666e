"""sha256 digests computed while bytes stream, and their checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
