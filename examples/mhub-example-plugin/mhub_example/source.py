"""The ``tiny://`` source scheme: files on a TinyHub server (an example of a custom source).

``tiny://NAME`` is fetched from ``$TINYHUB_URL/files/NAME`` (default ``https://tinyhub.example.invalid``),
with ``Authorization: Bearer $TINYHUB_TOKEN`` when that is set. :func:`fetch` follows mhub's source
protocol (docs/plugins.md, "register_sources"): it yields the file's bytes from ``offset`` on and signals
retryable failures, a refused resume and final failures with mhub's exceptions. The hub verifies the
sha256, retries, resumes, caches and names the file; a fetcher does none of that.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mhub import NetworkError
from mhub.hub import ResumeUnsupported, TransientError

DEFAULT_URL = "https://tinyhub.example.invalid"
CHUNK = 1 << 16


def http_url(url: str) -> str:
    """The HTTP address of ``tiny://NAME``."""
    name = url[len("tiny://"):]
    if not name or "/" in name or name in (".", ".."):
        raise NetworkError(f"{url}: expected tiny://NAME (a plain file name)")
    return f"{os.environ.get('TINYHUB_URL', DEFAULT_URL).rstrip('/')}/files/{name}"


def fetch(url: str, *, offset: int, staging: Path) -> Iterator[bytes]:
    """Stream ``tiny://NAME`` from byte ``offset``.

    Raises:
        TransientError: connection problems, 429 and 5xx: the hub retries, resuming where it stopped.
        ResumeUnsupported: the server ignored the ``Range`` request: the hub starts over from byte 0.
        NetworkError: any other failure (not found, forbidden): the hub moves on to the next source.
    """
    import requests

    target = http_url(url)
    headers = {"Accept-Encoding": "identity"}  # the stored bytes, so the digest and Range agree
    if offset:
        headers["Range"] = f"bytes={offset}-"
    if os.environ.get("TINYHUB_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['TINYHUB_TOKEN']}"
    try:
        response = requests.get(target, headers=headers, stream=True, timeout=(10, 30))
    except requests.RequestException as error:
        raise TransientError(f"{url}: {target}: {type(error).__name__}") from error
    with response:
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After", "")
            raise TransientError(f"{url}: HTTP {status}",
                                 retry_after=float(retry_after) if retry_after.isdigit() else None)
        if status >= 400:
            raise NetworkError(f"{url}: {target}: HTTP {status}")
        if offset and status != 206:
            raise ResumeUnsupported(f"{url}: the server ignored the range request")
        try:
            yield from response.raw.stream(CHUNK, decode_content=False)
        except Exception as error:  # urllib3's ProtocolError and friends: the connection dropped
            raise TransientError(f"{url}: connection lost: {type(error).__name__}") from error
