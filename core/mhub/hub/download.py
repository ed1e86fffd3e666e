"""Fetch one file into the cache: retries with backoff, Range resume, hashing on arrival, atomic placement.

The caller holds the blob's file lock. Bytes go to ``tmp/<key>.part`` (kept across interruptions so the
next run resumes with ``Range``), are hashed while they arrive, and are renamed to
``blobs/sha256/<hex>`` only after the digest and size check out. Nothing unverified gets a final name.

Every source gets a bounded effort: at most 1 + ``MHUB_RETRIES`` attempts (the first, then up to
``MHUB_RETRIES`` retries), whether or not an attempt delivered some bytes first, each failure but the last
followed by a backoff; a transfer slower than ``MHUB_MIN_SPEED`` over ``MHUB_TIMEOUT`` seconds is a failed
attempt; reading stops past the entry's ``size`` (or, for an entry without one, past ``MHUB_MAX_SIZE``).

Environment: ``MHUB_RETRIES`` (retries per source after its first failed attempt, default 5: a source is
given up after 1 + ``MHUB_RETRIES`` failed attempts), ``MHUB_BACKOFF`` (first delay in seconds, default 1;
doubled per retry, with jitter, at most ``MHUB_MAX_WAIT``, default 60), ``MHUB_TIMEOUT`` (read timeout,
default 30 s; also the window of the speed check), ``MHUB_MIN_SPEED`` (bytes per second, default 1024; 0
turns the check off), ``MHUB_MAX_SIZE`` (bytes, with an optional K/M/G/T suffix, default 16G).
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import re
import shutil
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import IntegrityError, MhubError, NetworkError
from .cache import Cache, is_no_space, no_space, remove_entry
from .integrity import StreamHasher, check_digest, sha256_file
from .sources import (BODY_LIMIT, SHOW_PROGRESS, ResumeUnsupported, TransientError, close_stream, env_number,
                      fetcher_for, timeouts)

MAX_SIZE = 16 << 30  # default MHUB_MAX_SIZE: far above any vision checkpoint, far below an endless stream
SIZE_RE = re.compile(r"^(\d+)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)


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
    """Retry, speed and size policy (see the module docstring for the environment variables)."""

    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 60.0
    min_speed: float = 1024.0
    window: float = 30.0
    max_size: int = MAX_SIZE

    @classmethod
    def from_env(cls) -> Policy:
        """The policy the ``MHUB_*`` variables set.

        Raises:
            MhubError: a variable holds something other than a non-negative number (or size).
        """
        return cls(retries=int(env_number("MHUB_RETRIES", 5)), backoff=env_number("MHUB_BACKOFF", 1.0),
                   max_wait=env_number("MHUB_MAX_WAIT", 60.0), min_speed=env_number("MHUB_MIN_SPEED", 1024.0),
                   window=timeouts()[1], max_size=env_size("MHUB_MAX_SIZE", MAX_SIZE))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): ``Retry-After`` when the server sent one,
        else exponential backoff with jitter (so N clients that failed together do not retry together)."""
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        base = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
        return base * random.uniform(0.5, 1.0)


def env_size(name: str, default: int) -> int:
    """A byte count from environment variable ``name``: digits with an optional K, M, G or T (powers of 1024).

    Raises:
        MhubError: anything else (the message names the variable).
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    match = SIZE_RE.match(value)
    if not match:
        raise MhubError(f"{name}={value!r} is not a size in bytes (e.g. 2000000, 512M, 16G)")
    return int(match.group(1)) << (10 * " kmgt".index(match.group(2).lower() or " "))


class _Speed:
    """Fails an attempt (:class:`TransientError`) that delivers fewer than ``min_speed`` bytes per second,
    averaged over each ``window`` seconds: a slow drip that never trips the read timeout ends too."""

    def __init__(self, url: str, policy: Policy):
        self.url, self.min_speed, self.window = url, policy.min_speed, policy.window
        self.start, self.count = time.monotonic(), 0

    def add(self, count: int) -> None:
        self.count += count
        elapsed = time.monotonic() - self.start
        if elapsed < self.window or not self.min_speed:
            return
        if self.count < self.min_speed * elapsed:
            raise TransientError(f"{self.url}: too slow: {self.count / elapsed:.0f} bytes/s over {elapsed:.1f} s, "
                                 f"below MHUB_MIN_SPEED={self.min_speed:g}")
        self.start, self.count = time.monotonic(), 0


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
    cache.ensure_dir(part.parent)
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
            cache.stamp(digest)
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
    """Download ``url`` into ``part`` (resuming what is there), retrying transient errors; verify it.

    At most ``1 + policy.retries`` attempts fail, progress or not, each but the last followed by a backoff.
    A source that cannot serve a range is asked for the whole file from then on.
    """
    fetcher = fetcher_for(url)
    staging = cache.staging_dir(key)
    if expected.size is not None:
        limit, why = expected.size, "the entry's size"
    else:
        limit, why = policy.max_size, "MHUB_MAX_SIZE, as the entry gives no size"
    attempts = failures = 0
    resumable = True
    fresh_retry_done = False
    while True:
        offset = _kept_bytes(part) if resumable else 0
        if not resumable or offset > limit:
            remove_entry(part)
            offset = 0
        bar.restart(offset)
        hasher = StreamHasher()
        try:
            if offset:
                hasher.update_from_file(part, offset)
            if offset and offset == expected.size:  # all here (an answer overstated its length): verify only
                digest, size = hasher.hexdigest(), offset
            else:
                attempts += 1
                _own_folder(staging)
                digest, size = _attempt(fetcher(url, offset=offset, staging=staging), url, offset, part, staging,
                                        hasher, (limit, why), policy, bar)
        except ResumeUnsupported:
            if offset == 0:
                hasher.close()
                raise NetworkError(f"{url}: the source refused to serve the file from its start") from None
            digest, size = hasher.hexdigest(), offset
            if not _verifies(digest, size, expected):  # (a 416 may mean the kept bytes are the whole file)
                resumable = False
                remove_entry(part)
                continue
        except TransientError as error:
            hasher.close()
            failures += 1
            if failures > policy.retries:
                raise NetworkError(f"{error} (gave up after {attempts} attempts)") from error
            time.sleep(policy.delay(failures, error.retry_after))
            continue
        except IntegrityError:
            hasher.close()
            remove_entry(part)
            raise
        except MhubError:
            hasher.close()
            raise
        except OSError as error:
            hasher.close()
            if is_no_space(error):
                remove_entry(part)
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
            remove_entry(part)
            shutil.rmtree(staging, ignore_errors=True)
            if offset and not fresh_retry_done:  # the kept part may have been the bad bytes: start over once
                fresh_retry_done = True
                continue
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return digest, size


def _attempt(result, url: str, offset: int, part: Path, staging: Path, hasher: StreamHasher,
             limit: tuple[int, str], policy: Policy, bar: _Progress) -> tuple[str, int]:
    """Take one answer of a fetcher: append its chunks to ``part`` (or adopt its file); return the file's
    ``(sha256, size)``. Stops reading past ``limit`` and fails an attempt slower than the policy allows."""
    if isinstance(result, os.PathLike):
        hasher.close()
        if os.stat(result).st_size > limit[0]:
            raise IntegrityError(f"{url}: the fetched file is larger than {limit[0]} bytes ({limit[1]}); "
                                 "nothing was cached")
        digest, size = _adopt_file(Path(result), staging, part)
        bar.update(size)
        return digest, size
    most, why = limit
    token = BODY_LIMIT.set((most - offset, why))
    chunks = iter(result)
    received = 0
    try:
        first = next(chunks, b"")  # the request happens here: no empty part file on a refusal
        speed = _Speed(url, policy)
        # O_NOFOLLOW: a link planted at the part's name is refused, never written through
        descriptor = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with open(descriptor, "ab") as handle:
            for chunk in itertools.chain((first,), chunks):
                received += len(chunk)
                if offset + received > most:
                    raise IntegrityError(f"{url}: sent more than {most} bytes ({why}); stopped reading, "
                                         "nothing was cached")
                hasher.update(chunk)
                handle.write(chunk)
                bar.update(len(chunk))
                speed.add(len(chunk))
    finally:
        BODY_LIMIT.reset(token)
        close_stream(chunks)
    return hasher.hexdigest(), offset + received


def _verifies(digest: str, size: int, expected: Expected) -> bool:
    try:
        check_digest(digest, sha256=expected.sha256, prefix=expected.prefix, what="", size=size,
                     expected_size=expected.size)
    except IntegrityError:
        return False
    return True


def _kept_bytes(part: Path) -> int:
    """Bytes of an interrupted download kept in ``part``; anything but a regular file there is removed."""
    try:
        info = part.lstat()
    except FileNotFoundError:
        return 0
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    remove_entry(part)
    return 0


def _own_folder(path: Path) -> None:
    """Make ``path`` a real folder: a link planted at its name is removed, never followed."""
    if path.is_symlink() or path.exists() and not path.is_dir():
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)


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
