"""``pull``: resolve a weight set, fetch and verify it into the cache once, convert it when needed."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import IntegrityError, MhubError, OfflineError
from .._manifest import default_filename
from .._specs import WeightSpec
from .cache import Cache, is_no_space, no_space
from .download import Expected, download

OFFLINE_VARS = ("MHUB_OFFLINE", "HF_HUB_OFFLINE")
TRUTHY = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Pulled:
    """Where a pulled weight set lives.

    Attributes:
        name: ``model.tag``.
        path: the file to load: safetensors in our layout (the converted file when a conversion applies).
        source_path: the file as the source serves it (a name in the cache pointing at its blob).
        sha256: full digest of the source file (for a prefix-only entry: computed here, of bytes that were
            checked against the upstream prefix only).
        size: its size in bytes.
        url: the URL it was downloaded from in this call, or None when it was already cached.
        converted: ``"converter@vN"`` when ``path`` is a conversion, else None.
    """

    name: str
    path: Path
    source_path: Path
    sha256: str
    size: int
    url: str | None = None
    converted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "source_path": str(self.source_path),
                "sha256": self.sha256, "size": self.size, "downloaded_from": self.url,
                "converted": self.converted}


def offline_reason() -> str | None:
    """``"MHUB_OFFLINE=1"`` (or the HF variable) when offline mode is on, else None."""
    for var in OFFLINE_VARS:
        value = os.environ.get(var, "")
        if value.strip().lower() in TRUTHY:
            return f"{var}={value}"
    return None


def require_full_hash(spec: WeightSpec) -> None:
    """Refuse a prefix-only entry when ``MHUB_REQUIRE_FULL_HASH`` is on (as pip's ``--require-hashes``).

    Raises:
        IntegrityError: the entry has only an upstream ``sha256_prefix`` and full digests are required.
    """
    value = os.environ.get("MHUB_REQUIRE_FULL_HASH", "")
    if spec.sha256 or value.strip().lower() not in TRUTHY:
        return
    raise IntegrityError(f"{spec.name}: MHUB_REQUIRE_FULL_HASH={value} refuses it: its manifest "
                         f"({spec.origin or spec.plugin or 'unknown'}) gives only the sha256 prefix "
                         f"{spec.sha256_prefix} ({_bits(spec)}-bit check), not a full sha256")


def _bits(spec: WeightSpec) -> int:
    return 4 * len(spec.sha256_prefix or "")


def _warn_weak(spec: WeightSpec) -> None:
    warnings.warn(f"{spec.name}: only the first {len(spec.sha256_prefix or '')} hex digits of its sha256 were "
                  f"checked ({_bits(spec)} bits: a forged file can match them); MHUB_REQUIRE_FULL_HASH=1 refuses "
                  "such entries", UserWarning, stacklevel=4)


def resolve_spec(name: str | WeightSpec) -> WeightSpec:
    """A weight spec from ``arch[.tag]`` (the default tag for a bare architecture) or a spec itself."""
    if isinstance(name, WeightSpec):
        return name
    from .._registry import get_registry

    return get_registry().weights_for(name)


def pull(name: str | WeightSpec, *, endpoint: str | None = None, progress: bool | None = None) -> Path:
    """Make a weight set available locally and return the path of the file to load.

    Fetches from the mirror (``endpoint`` or ``MHUB_ENDPOINT``) first, then the manifest's sources, verifies
    the sha256 while the bytes arrive, and converts pickled or foreign-layout checkpoints to safetensors in
    our layout (cached, keyed by source digest and converter version). Safe to call from many processes.

    Args:
        name: ``arch`` or ``arch.tag``, or a :class:`~mhub._specs.WeightSpec`.
        endpoint: mirror base URL serving ``<endpoint>/blobs/sha256/<hex>``.
        progress: show progress bars; default only when stderr is a terminal.

    Returns:
        Path of a safetensors file (for a safetensors entry without a converter, the downloaded file).

    A prefix-only entry (``sha256_prefix``, no ``sha256``) is refused when ``MHUB_REQUIRE_FULL_HASH=1``;
    otherwise downloading it warns once that its check is weak.

    Raises:
        OfflineError: offline mode is on and the file is not cached.
        IntegrityError, NetworkError: no source served the right bytes (or full hashes are required).
        ConversionError: the checkpoint could not be read or converted.
        NoSpaceError: the disk holding ``MHUB_HOME`` is full.
    """
    return fetch(name, endpoint=endpoint, progress=progress).path


def fetch(name: str | WeightSpec, *, endpoint: str | None = None, progress: bool | None = None,
          convert: bool = True) -> Pulled:
    """Like :func:`pull` but returns the full :class:`Pulled` record; ``convert=False`` skips conversion."""
    spec = resolve_spec(name)
    if progress is None:
        progress = sys.stderr.isatty()
    cache = Cache.current()
    digest, size, url = ensure_source(cache, spec, endpoint=endpoint, progress=progress)
    source_path = cache.name_path(spec.name, default_filename(spec))
    if not convert or not needs_conversion(spec):
        return Pulled(spec.name, source_path, source_path, digest, size, url)
    from .convert import ensure_converted

    path, label = ensure_converted(cache, spec, digest)
    return Pulled(spec.name, path, source_path, digest, size, url, label)


def needs_conversion(spec: WeightSpec) -> bool:
    """Pickles are always converted to safetensors; safetensors only when a converter is named."""
    return spec.format != "safetensors" or spec.converter is not None


def ensure_source(cache: Cache, spec: WeightSpec, *, endpoint: str | None = None,
                  progress: bool = False) -> tuple[str, int, str | None]:
    """Have the source file of ``spec`` as a verified blob with its name; return ``(sha256, size, url)``.

    The path every command takes to a source file (``pull``, ``create(pretrained=True)``, ``mhub mirror``):
    a prefix-only entry is refused here when ``MHUB_REQUIRE_FULL_HASH`` is on, cached or not. Outside the
    blob's lock only this user's stamp vouches for a cached blob; a blob without a matching stamp is hashed
    once, under the lock (or, offline or in a cache this user cannot lock, without it: nothing is fetched).

    Raises:
        IntegrityError: full hashes are required and the entry has only a prefix; or no source served the
            right bytes.
        OfflineError: offline mode is on and the file is not cached.
        MhubError: the file is not cached and the cache cannot be locked to fetch it (a read-only cache).
    """
    require_full_hash(spec)
    hit = _cached(cache, spec, adopt=False, rehash=False)
    if hit:
        return (*hit, None)
    reason = offline_reason()
    if reason:
        hit = _cached(cache, spec, adopt=False)  # nothing will be fetched: checked here, without the lock
        if hit:
            return (*hit, None)
        wanted = spec.sha256 or f"a digest starting {spec.sha256_prefix}"
        raise OfflineError(f"offline mode ({reason}): {spec.name} is not in the cache {cache.root} "
                           f"(sha256 {wanted}); pull it where the network is reachable, or set MHUB_HOME "
                           "to a cache that has it")
    expected = Expected(spec.sha256, spec.sha256_prefix, spec.size)
    waiting = f"mhub: waiting for another process fetching {spec.name}" if progress else None
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(cache.locked(expected.key, waiting))
        except OSError as error:  # a cache this user cannot write: use what it holds, fetch nothing
            hit = _cached(cache, spec, adopt=False)
            if hit:
                return (*hit, None)
            if is_no_space(error):
                raise no_space(cache.root / "locks", error) from error
            raise MhubError(f"cannot lock {spec.name} in the cache {cache.root} to fetch it "
                            f"({error.strerror or error}); set MHUB_HOME to a cache you can write") from error
        hit = _cached(cache, spec, adopt=True)  # hashed here when no stamp vouched for it; or another
        if hit:                                 # process finished fetching it while we waited
            return (*hit, None)
        fetched = download(cache, candidates(spec, endpoint), key=expected.key, label=spec.name,
                           progress=progress)
        _record(cache, spec, fetched.sha256, fetched.size, fetched.url)
    if not spec.sha256:
        _warn_weak(spec)
    return fetched.sha256, fetched.size, fetched.url


def candidates(spec: WeightSpec, endpoint: str | None = None) -> list[tuple[str, Expected]]:
    """URLs to try, in order, each with what its bytes must be: the mirror first, then the sources.

    Every candidate is held to the manifest's own check. For a prefix-only entry the mirror's name index
    (``<endpoint>/names/<model.tag>.json``, written by ``mhub mirror``) only says where the mirror keeps
    the file: its bytes are checked against the upstream prefix like a source's, and the index never
    supplies or upgrades the digest they are held to.
    """
    expected = Expected(spec.sha256, spec.sha256_prefix, spec.size)
    out: list[tuple[str, Expected]] = []
    endpoint = (endpoint or os.environ.get("MHUB_ENDPOINT") or "").rstrip("/")
    if endpoint:
        from .mirror import blob_url, mirror_location

        digest = spec.sha256 or mirror_location(endpoint, spec)
        if digest:
            out.append((blob_url(endpoint, digest), expected))
    out += [(source, expected) for source in spec.sources]
    return out


def _cached(cache: Cache, spec: WeightSpec, *, adopt: bool, rehash: bool = True) -> tuple[str, int] | None:
    """``(sha256, size)`` of the verified blob the cache holds for ``spec``, its name re-linked when needed.

    With ``adopt`` (only under the blob's lock, so that ``prune`` cannot delete it meanwhile), a blob
    another name fetched is recorded for this one too. Without ``rehash`` only this user's stamp can vouch
    for the blob (no hashing, no warning: the caller checks again under the lock).
    """
    ref = cache.read_ref(spec.name)
    size = ref.get("size") if ref else None
    checked = None
    if ref and _matches(ref["sha256"], spec) and isinstance(size, int) and (spec.size is None or size == spec.size):
        checked = ref["sha256"]
        if cache.verified_blob(checked, size, rehash=rehash):
            _ensure_name(cache, spec, checked)
            return checked, size
    if adopt and spec.sha256 and spec.sha256 != checked and cache.verified_blob(spec.sha256, spec.size):
        size = cache.blob_path(spec.sha256).lstat().st_size  # content-addressed: another name fetched it
        _record(cache, spec, spec.sha256, size, None)
        return spec.sha256, size
    return None


def _ensure_name(cache: Cache, spec: WeightSpec, digest: str) -> None:
    """Point the name at its blob unless it already does; a name leading elsewhere is replaced."""
    filename = default_filename(spec)
    if cache.name_points_at(spec.name, filename, digest):
        return
    path = cache.name_path(spec.name, filename)
    if path.is_symlink() or path.exists():
        warnings.warn(f"{path} did not lead to its blob {digest[:16]}...; it was re-linked", UserWarning,
                      stacklevel=4)
    _link(cache, spec, digest)


def _matches(digest: str, spec: WeightSpec) -> bool:
    if spec.sha256:
        return digest == spec.sha256
    return bool(digest) and digest.startswith(spec.sha256_prefix or "")


def _record(cache: Cache, spec: WeightSpec, digest: str, size: int, url: str | None) -> None:
    """Write the name's ref (full digest included, also for prefix-only entries) and its link."""
    ref = {"name": spec.name, "sha256": digest, "size": size, "filename": default_filename(spec),
           "format": spec.format, "hash": spec.hash_strength, "converter": spec.converter}
    if url:
        ref["url"] = url
    previous = cache.read_ref(spec.name)
    if previous and previous.get("url") and not url:
        ref["url"] = previous["url"]
    cache.write_ref(spec.name, ref)
    _link(cache, spec, digest)


def _link(cache: Cache, spec: WeightSpec, digest: str) -> None:
    try:
        cache.link_name(spec.name, default_filename(spec), digest)
    except OSError as error:
        if is_no_space(error):
            raise no_space(cache.name_path(spec.name, default_filename(spec)), error) from error
        raise MhubError(f"cannot create {cache.name_path(spec.name, default_filename(spec))}: {error}") from error
