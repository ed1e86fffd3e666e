"""The local cache under ``MHUB_HOME``: content-addressed blobs, names pointing at them, locks.

Layout (every file appears under its final name only once complete, via ``os.replace``)::

    MHUB_HOME/
      blobs/sha256/<hex>                   file contents, named by their sha256 (sources and conversions)
      refs/<model.tag>.json                a name: the blob it points at, its size, file name, hash strength
      names/<model.tag>/<file>             symlink to the blob, with a readable name (what ``pull`` returns)
      converted/<src hex>/<conv>@v<N>.json a conversion: source digest + converter + version -> blob
      locks/<key>.lock                     one file lock per blob being fetched or converted
      tmp/                                 partial downloads (``<key>.part``, kept for Range resume),
                                           staging folders and files being written

Cached blobs are trusted on load (their size is checked); ``mhub cache verify`` re-hashes every one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import NoSpaceError
from .integrity import sha256_file

STALE_TMP_SECONDS = 3600  # `prune` leaves younger unlocked temporary files alone (a write may be running)


def home() -> Path:
    """The cache root: ``MHUB_HOME``, else the platform's user cache directory + ``/mhub``."""
    value = os.environ.get("MHUB_HOME")
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir()) / "mhub"


def no_space(path: Path, error: OSError, needed: int | None = None) -> NoSpaceError:
    """The one-line error for ``ENOSPC``/``EDQUOT`` while writing ``path``."""
    try:
        free = shutil.disk_usage(path.parent if not path.is_dir() else path).free
        free_text = f"{free} bytes free"
    except OSError:
        free_text = "free space unknown"
    need = f", {needed} bytes needed" if needed else ""
    return NoSpaceError(f"no space left on device writing {path} ({free_text}{need}); free some space "
                        f"or point MHUB_HOME at a larger disk ({error.strerror or error})")


def is_no_space(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class Cache:
    """Paths and bookkeeping of one cache root."""

    root: Path

    @classmethod
    def current(cls) -> Cache:
        """The cache that ``MHUB_HOME`` (or the platform default) names now."""
        return cls(home())

    # -- paths -------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest

    def ref_path(self, name: str) -> Path:
        return self.root / "refs" / f"{name}.json"

    def name_path(self, name: str, filename: str) -> Path:
        return self.root / "names" / name / filename

    def conversion_path(self, source_digest: str, converter: str, version: int) -> Path:
        return self.root / "converted" / source_digest / f"{converter}@v{version}.json"

    def part_path(self, key: str) -> Path:
        return self.root / "tmp" / f"{key}.part"

    def staging_dir(self, key: str) -> Path:
        return self.root / "tmp" / f"{key}.staging"

    def tmp_file(self, suffix: str = ".tmp") -> Path:
        """A fresh temporary path in ``tmp/`` (same filesystem as the final names, for ``os.replace``)."""
        directory = self.root / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"

    def lock(self, key: str):
        """The inter-process lock guarding blob ``key`` (filelock: flock on POSIX, freed if we die)."""
        from filelock import FileLock

        path = self.root / "locks" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    @contextlib.contextmanager
    def locked(self, key: str, waiting_message: str | None = None):
        """Hold the lock of ``key``; print ``waiting_message`` to stderr once if another process holds it."""
        from filelock import Timeout

        lock = self.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if waiting_message:
                print(waiting_message, file=sys.stderr)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    # -- writing -----------------------------------------------------------------------------------
    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        """Write ``data`` to ``path`` atomically (temporary file in ``tmp/``, then ``os.replace``)."""
        tmp = self.tmp_file()
        try:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            if is_no_space(error):
                raise no_space(path, error) from error
            raise

    def add_blob(self, file: Path, digest: str) -> Path:
        """Move a verified ``file`` into place as the blob ``digest`` (atomic; same filesystem)."""
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
        return target

    def link_name(self, name: str, filename: str, digest: str) -> Path:
        """Point ``names/<name>/<filename>`` at blob ``digest`` (a relative symlink, atomically replaced).

        Falls back to a hard link where symlinks are not allowed.
        """
        link = self.name_path(name, filename)
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self.blob_path(digest), link.parent)
        tmp = link.parent / f".{filename}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        try:
            os.symlink(target, tmp)
        except OSError:
            os.link(self.blob_path(digest), tmp)
        os.replace(tmp, link)
        return link

    # -- refs and conversions ----------------------------------------------------------------------
    def read_ref(self, name: str) -> dict[str, Any] | None:
        return _read_json(self.ref_path(name))

    def write_ref(self, name: str, data: dict[str, Any]) -> None:
        self.write_json(self.ref_path(name), data)

    def refs(self) -> list[dict[str, Any]]:
        """Every name in the cache, sorted."""
        directory = self.root / "refs"
        out = [ref for path in sorted(directory.glob("*.json")) if (ref := _read_json(path))]
        return sorted(out, key=lambda ref: ref.get("name", ""))

    def read_conversion(self, source_digest: str, converter: str, version: int) -> dict[str, Any] | None:
        return _read_json(self.conversion_path(source_digest, converter, version))

    def conversions(self, source_digest: str) -> list[dict[str, Any]]:
        directory = self.root / "converted" / source_digest
        return [c for path in sorted(directory.glob("*.json")) if (c := _read_json(path))]

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """True when blob ``digest`` exists (and has ``size`` bytes, when given)."""
        try:
            actual = self.blob_path(digest).stat().st_size
        except OSError:
            return False
        return size is None or actual == size

    # -- maintenance (``mhub cache``) --------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """What ``mhub cache ls`` shows: each name, its blob, whether present, and its conversions."""
        out = []
        for ref in self.refs():
            digest = ref.get("sha256", "")
            conversions = [{**c, "path": str(self.blob_path(c["sha256"])), "present": self.has_blob(c["sha256"])}
                           for c in self.conversions(digest)]
            out.append({**ref, "path": str(self.name_path(ref["name"], ref["filename"])),
                        "blob": str(self.blob_path(digest)), "present": self.has_blob(digest, ref.get("size")),
                        "conversions": conversions})
        return out

    def verify(self, *, delete: bool = False) -> dict[str, Any]:
        """Re-hash every blob; report (and with ``delete`` remove) those whose bytes no longer match.

        Returns:
            ``{"checked": n, "bytes": total, "corrupt": [{"blob", "actual", "names"}], "missing": [...]}``.
        """
        by_blob: dict[str, list[str]] = {}
        missing = []
        for ref in self.refs():
            by_blob.setdefault(ref["sha256"], []).append(ref["name"])
            if not self.has_blob(ref["sha256"]):
                missing.append({"name": ref["name"], "blob": ref["sha256"]})
        checked, total, corrupt = 0, 0, []
        directory = self.root / "blobs" / "sha256"
        for path in sorted(directory.iterdir()) if directory.is_dir() else []:
            actual, size = sha256_file(path)
            checked += 1
            total += size
            if actual != path.name:
                corrupt.append({"blob": path.name, "actual": actual, "names": by_blob.get(path.name, [])})
                if delete:
                    path.unlink(missing_ok=True)
        return {"checked": checked, "bytes": total, "corrupt": corrupt, "missing": missing}

    def remove(self, name: str) -> dict[str, Any]:
        """Forget ``name`` (``model.tag``, or ``model`` for all its tags) and free blobs nothing else uses.

        Returns:
            ``{"removed": [names], "freed": bytes}``; ``removed`` is empty when nothing matched.
        """
        refs = self.refs()
        doomed = [r for r in refs if r["name"] == name or r["name"].split(".", 1)[0] == name]
        for ref in doomed:
            self.ref_path(ref["name"]).unlink(missing_ok=True)
            shutil.rmtree(self.root / "names" / ref["name"], ignore_errors=True)
        kept = {r["sha256"] for r in refs if r not in doomed}
        freed = 0
        for digest in {r["sha256"] for r in doomed} - kept:
            freed += self._drop_source(digest)
        return {"removed": [r["name"] for r in doomed], "freed": freed}

    def prune(self, *, dry_run: bool = False, keep_conversion=None) -> dict[str, Any]:
        """Delete what no name needs: unreferenced blobs, stale conversions, dangling names, temp files.

        Args:
            dry_run: only report.
            keep_conversion: ``f(converter, version) -> bool``; conversions it rejects (an older
                converter version, an uninstalled converter) are removed. Default keeps all.

        Returns:
            ``{"removed": [paths], "freed": bytes}``.
        """
        removed: list[str] = []
        freed = 0

        def drop(path: Path) -> None:
            nonlocal freed
            freed += _tree_size(path)
            removed.append(str(path))
            if not dry_run:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)

        refs = self.refs()
        sources = {r["sha256"] for r in refs}
        needed = set(sources)
        for directory in sorted((self.root / "converted").glob("*")):
            for path in sorted(directory.glob("*.json")):
                conv = _read_json(path)
                stale = (conv is None or directory.name not in sources or
                         (keep_conversion is not None and not keep_conversion(conv["converter"], conv["version"])))
                if stale:
                    drop(path)
                else:
                    needed.add(conv["sha256"])
            if not dry_run and directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        blobs = self.root / "blobs" / "sha256"
        for path in sorted(blobs.iterdir()) if blobs.is_dir() else []:
            if path.name not in needed:
                drop(path)
        names = {r["name"] for r in refs}
        for directory in sorted((self.root / "names").glob("*")):
            if directory.name not in names:
                drop(directory)
        for path in sorted((self.root / "tmp").glob("*")):
            key = path.name.rsplit(".", 1)[0]
            if path.suffix in (".part", ".staging"):
                if self._lock_free(key):
                    drop(path)
            elif time.time() - path.lstat().st_mtime > STALE_TMP_SECONDS:
                drop(path)
        return {"removed": removed, "freed": freed}

    # -- helpers -----------------------------------------------------------------------------------
    def _drop_source(self, digest: str) -> int:
        freed = 0
        for conv in self.conversions(digest):
            freed += _tree_size(self.blob_path(conv["sha256"]))
            self.blob_path(conv["sha256"]).unlink(missing_ok=True)
        shutil.rmtree(self.root / "converted" / digest, ignore_errors=True)
        freed += _tree_size(self.blob_path(digest))
        self.blob_path(digest).unlink(missing_ok=True)
        return freed

    def _lock_free(self, key: str) -> bool:
        from filelock import Timeout

        lock = self.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        lock.release()
        return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tree_size(path: Path) -> int:
    try:
        if path.is_symlink() or path.is_file():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
    except OSError:
        return 0
