"""The weights hub client: sources, verified cache, mirrors, offline mode and pretrained loading.

``mhub.pull(name)`` fetches a weight set into the cache (``MHUB_HOME``) once, however many processes ask,
verifies its sha256 while the bytes arrive, converts it to safetensors in our layout when needed, and
returns the path. ``mhub.create(name, pretrained=True)`` loads it (:mod:`mhub.hub.loading`).

Every fault ends in one :class:`~mhub.MhubError` (or a warning) within bounded time and memory, with
nothing unverified cached:

- Effort per source is bounded: at most 1 + ``MHUB_RETRIES`` attempts (the first and ``MHUB_RETRIES``
  retries), progress or not, each failure but the last followed by a backoff; a transfer slower than
  ``MHUB_MIN_SPEED`` over ``MHUB_TIMEOUT`` seconds fails its attempt; reading stops past the entry's
  ``size`` (or ``MHUB_MAX_SIZE`` for an entry without one, or an announced ``Content-Length`` over that
  limit before reading). A mirror's name index is read within 1 MiB and
  ``MHUB_TIMEOUT``.
- An entry with only an upstream ``sha256_prefix`` is a weak (32-bit for 8 hex digits) check: pulling it
  warns once, ``MHUB_REQUIRE_FULL_HASH=1`` refuses it, and neither a mirror's name index nor the cache
  can supply or upgrade the digest it is held to.
- The cache may be shared by a team: each user re-hashes a blob whose stat differs from the stamp they
  recorded when verifying it, and nothing follows a link out of the cache (:mod:`mhub.hub.cache`).
- A file's format is its entry's ``format`` (the cache names it accordingly); a file malformed despite a
  matching hash is a :class:`~mhub.ConversionError`; a full disk, a :class:`NoSpaceError`.

Environment:
    ``MHUB_HOME``: cache root (default: the platform user cache directory + ``/mhub``).
    ``MHUB_ENDPOINT``: a mirror serving ``<endpoint>/blobs/sha256/<hex>`` (``http(s)://``, ``file://`` or
    object storage such as ``s3://bucket/prefix``), tried before the sources.
    ``MHUB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: use the cache only; a missing file is an ``OfflineError``.
    ``MHUB_REQUIRE_FULL_HASH=1``: refuse prefix-only entries (an ``IntegrityError``).
    ``MHUB_RETRIES``, ``MHUB_BACKOFF``, ``MHUB_MAX_WAIT``, ``MHUB_TIMEOUT``, ``MHUB_MIN_SPEED``,
    ``MHUB_MAX_SIZE``: see :mod:`mhub.hub.download`.
    ``HF_ENDPOINT``: where ``hf://`` sources go (read at each fetch).

Source fetchers (the ``register_sources`` hook)
-----------------------------------------------
A plugin adds a URL scheme with ``register("ipfs", "mhub_ipfs.fetch:fetch")``. The fetcher is called as::

    fetcher(url: str, *, offset: int, staging: pathlib.Path) -> Iterable[bytes] | os.PathLike

- Return an iterable of byte chunks holding the file from byte ``offset`` on (``offset`` is non-zero
  when a kept partial download is being resumed). The hub hashes the chunks as they arrive, writes them
  to a temporary file under the blob's lock and renames it into place only once verified: a fetcher never
  writes into the cache itself.
- Or download with your own client into ``staging`` (an empty folder on the cache's filesystem, kept
  across interrupted runs for your own resume state) and return the complete file's path; the hub hashes
  it and moves it into place (a path outside ``staging`` is copied instead).
- Raise :class:`TransientError` (optionally with ``retry_after`` seconds) for failures worth retrying:
  the hub retries with exponential backoff and jitter, resuming at the bytes it already holds, at most
  ``MHUB_RETRIES`` times per source. Hand chunks on as they arrive: the hub measures the speed per chunk
  and stops reading past the size limit; ``mhub.hub.sources.BODY_LIMIT`` holds that limit during the
  call, for fetchers that learn the length up front and can refuse at once.
- Raise :class:`ResumeUnsupported` when you cannot start at ``offset``: the hub starts over from 0.
- Raise :class:`mhub.NetworkError` for final failures (not found, forbidden): the hub moves on to the
  next source. The message should name the URL.

Built in: ``http``/``https`` (requests: streaming, ``Range`` resume, redirects, retry on connection
errors, timeouts, 429 and 5xx honouring ``Retry-After``, no retry on other 4xx), ``file`` and ``hf``
(``hf://org/repo/path@revision`` through ``huggingface_hub.hf_hub_download``); after plugins' schemes,
object storage: ``s3://`` (the ``mhub[s3]`` extra) and any protocol fsspec knows, configured by the
storage library's own settings (:mod:`mhub.hub.objectstore`).
"""

from .cache import Cache, NoSpaceError, home
from .client import Pulled, fetch, offline_reason, pull
from .sources import ResumeUnsupported, Source, TransientError

__all__ = sorted([
    "Cache", "NoSpaceError", "Pulled", "ResumeUnsupported", "Source", "TransientError", "fetch", "home",
    "offline_reason", "pull",
])
