"""Fetch one file into the cache: retries with backoff, Range resume, hashing on arrival, atomic placement.

The caller holds the blob's file lock. Bytes go to ``tmp/<key>.part`` (kept across interruptions so the
next run resumes with ``Range``), are hashed while they arrive, and are renamed to
``blobs/sha256/<hex>`` only after the digest and size check out. Nothing unverified gets a final name.

Environment: ``MHUB_RETRIES`` (default 5 retries per source), ``MHUB_BACKOFF`` (first delay in seconds,
default 1; doubled per retry, with jitter, at most ``MHUB_MAX_WAIT``, default 60), ``MHUB_TIMEOUT``
(read timeout, default 30 s).
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import IntegrityError, MhubError, NetworkError
from .cache import Cache, is_no_space, no_space
from .integrity import StreamHasher, check_digest, sha256_file
from .sources import SHOW_PROGRESS, ResumeUnsupported, TransientError, fetcher_for


@dataclass(frozen=True)
class Expected:
    """What the bytes must be: a full sha256 or an upstream prefix, and the size when known."""

    sha256: str | None
    prefix: str | None = None
    size: int | None = None

    @property
    def key(self) -> str:
        """Names the lock, the partial file and the staging folder of this blob."""
        return self.sha256 or f"prefix-{self.prefix}"


@dataclass(frozen=True)
class Policy:
    """Retry policy (see the module docstring for the environment variables)."""

    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0

    @classmethod
    def from_env(cls) -> Policy:
        return cls(retries=int(os.environ.get("MHUB_RETRIES") or 5),
                   backoff=float(os.environ.get("MHUB_BACKOFF") or 1.0),
                   max_wait=float(os.environ.get("MHUB_MAX_WAIT") or 60.0))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): ``Retry-After`` when the server sent one,
        else exponential backoff with jitter (so N clients that failed together do not retry together)."""
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        base = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
        return base * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Fetched:
    """A verified blob: its digest, size and the URL that served it."""

    sha256: str
    size: int
    url: str


class _Progress:
    """A tqdm bar on stderr when enabled, else nothing (tqdm is imported only when shown)."""

    def __init__(self, enabled: bool, label: str, total: int | None):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                            file=sys.stderr, leave=False, dynamic_ncols=True)

    def restart(self, initial: int) -> None:
        if self.bar is not None:
            self.bar.reset(total=self.bar.total)
            self.bar.update(initial)

    def update(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def download(cache: Cache, candidates: list[tuple[str, Expected]], *, key: str, label: str,
             progress: bool = False, policy: Policy | None = None) -> Fetched:
    """Fetch the first candidate that yields verified bytes and store it as a blob.

    Args:
        cache: the cache to write into.
        candidates: ``(url, expected)`` pairs, tried in order (mirror first, then the manifest's sources).
        key: the lock/partial-file key (the caller holds ``cache.lock(key)``).
        label: what to call the file in progress bars.
        progress: show a progress bar.
        policy: retry policy; default from the environment.

    Raises:
        IntegrityError: every source served wrong bytes (nothing is cached).
        NetworkError: every source failed; the message names each URL and why.
        NoSpaceError: the disk filled up (the partial file is removed).
    """
    policy = policy or Policy.from_env()
    part = cache.part_path(key)
    part.parent.mkdir(parents=True, exist_ok=True)
    errors: list[MhubError] = []
    size_hint = next((e.size for _, e in candidates if e.size is not None), None)
    _check_free_space(part, size_hint)
    bar = _Progress(progress, label, size_hint)
    token = SHOW_PROGRESS.set(progress)
    try:
        for url, expected in candidates:
            try:
                digest, size = _fetch_verified(cache, url, expected, part, key, policy, bar)
            except (IntegrityError, NetworkError) as error:
                errors.append(error)
                continue
            cache.add_blob(part, digest)
            return Fetched(digest, size, url)
    finally:
        SHOW_PROGRESS.reset(token)
        bar.close()
        _remove_if_empty(cache.staging_dir(key))
    if len(errors) == 1:
        raise errors[0]
    kind = type(errors[0]) if all(type(e) is type(errors[0]) for e in errors) else NetworkError
    raise kind(f"{label}: every source failed: " + "; ".join(str(e) for e in errors))


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # absent, or holds a fetcher's resume state (huggingface_hub's)
        pass


def _check_free_space(part: Path, size: int | None) -> None:
    if size is None:
        return
    have = part.stat().st_size if part.exists() else 0
    try:
        free = shutil.disk_usage(part.parent).free
    except OSError:
        return
    if free < size - have:
        error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise no_space(part, error, needed=size - have)


def _fetch_verified(cache: Cache, url: str, expected: Expected, part: Path, key: str, policy: Policy,
                    bar: _Progress) -> tuple[str, int]:
    """Download ``url`` into ``part`` (resuming what is there), retrying transient errors; verify it."""
    fetcher = fetcher_for(url)
    staging = cache.staging_dir(key)
    failures = 0
    fresh_retry_done = False
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if expected.size is not None and offset > expected.size:
            part.unlink()
            offset = 0
        bar.restart(offset)
        hasher = StreamHasher()
        received = 0
        try:
            if offset:
                hasher.update_from_file(part, offset)
            staging.mkdir(parents=True, exist_ok=True)
            result = fetcher(url, offset=offset, staging=staging)
            if isinstance(result, os.PathLike):
                hasher.close()
                digest, size = _adopt_file(Path(result), staging, part)
                bar.update(size)
            else:
                chunks = iter(result)
                first = next(chunks, b"")  # the request happens here: no empty part file on a refusal
                with open(part, "ab") as handle:
                    for chunk in itertools.chain((first,), chunks):
                        received += len(chunk)
                        if expected.size is not None and offset + received > expected.size:
                            raise IntegrityError(f"{url}: sent more than the expected {expected.size} bytes; "
                                                 "nothing was cached")
                        hasher.update(chunk)
                        handle.write(chunk)
                        bar.update(len(chunk))
                size = offset + received
                digest = hasher.hexdigest()
        except ResumeUnsupported:
            hasher.close()
            part.unlink(missing_ok=True)
            if offset == 0:
                raise NetworkError(f"{url}: the source refused to serve the file from its start") from None
            continue
        except TransientError as error:
            hasher.close()
            failures = 0 if received else failures + 1  # progress resets the count: a drop is resumed
            if failures > policy.retries:
                raise NetworkError(f"{error} (gave up after {failures} attempts)") from error
            time.sleep(policy.delay(max(failures, 1), error.retry_after))
            continue
        except IntegrityError:
            hasher.close()
            part.unlink(missing_ok=True)
            raise
        except MhubError:
            hasher.close()
            raise
        except OSError as error:
            hasher.close()
            if is_no_space(error):
                part.unlink(missing_ok=True)
                shutil.rmtree(staging, ignore_errors=True)
                raise no_space(part, error, needed=expected.size) from error
            raise
        except Exception as error:  # a plugin fetcher outside the protocol: still one clear line
            hasher.close()
            raise NetworkError(f"{url}: fetcher failed: {type(error).__name__}: {error}") from error
        try:
            check_digest(digest, sha256=expected.sha256, prefix=expected.prefix, what=url, size=size,
                         expected_size=expected.size)
        except IntegrityError:
            part.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            if offset and not fresh_retry_done:  # the kept part may have been the bad bytes: start over once
                fresh_retry_done = True
                continue
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return digest, size


def _adopt_file(path: Path, staging: Path, part: Path) -> tuple[str, int]:
    """Take a complete file a fetcher returned: move it when it lies in ``staging``, else copy it."""
    digest, size = sha256_file(path)
    try:
        inside = path.resolve().is_relative_to(staging.resolve())
    except OSError:
        inside = False
    if inside:
        os.replace(path, part)
    else:
        tmp = part.with_suffix(".copy")
        shutil.copyfile(path, tmp)
        os.replace(tmp, part)
    return digest, size
