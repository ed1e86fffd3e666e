"""The local cache under ``MHUB_HOME``: content-addressed blobs, names pointing at them, locks.

Layout (every file appears under its final name only once complete, via ``os.replace``)::

    MHUB_HOME/
      blobs/sha256/<hex>                   file contents, named by their sha256 (sources and conversions)
      refs/<model.tag>.json                a name: the blob it points at, its size, file name, hash strength
      names/<model.tag>/<file>             symlink to the blob, with a readable name (what ``pull`` returns)
      converted/<src hex>/<conv>@v<N>.json a conversion: source digest + converter + version -> blob
      locks/<key>.lock                     one file lock per blob being fetched or converted; its mtime
                                           says when the running holder took it
      verified/<uid>/<hex>                 this user's verification stamp of a blob (see below; in a cache
                                           they cannot write, stamps go to their own state directory)
      tmp/                                 partial downloads (``<key>.part``, kept for Range resume),
                                           staging folders and files being written

A cache may be shared (``MHUB_HOME`` on a team file system), so a user trusts only what they checked:

- Before a blob is used, its ``(size, mtime_ns, ctime_ns, inode)`` must equal the stamp this user recorded
  when they last hashed it; a blob without one, or whose stat changed, is hashed again first (and fetched
  again when its bytes no longer match its name). Stamps live in a folder only their owner can write
  (mode 0700), so the fast path is a few ``stat`` calls, not a hash.
- mhub never follows a symbolic link out of the cache: a name must lead to its blob (else it is re-linked),
  a folder of the layout that is a link is an :class:`~mhub.IntegrityError`, and ``prune`` / ``verify
  --delete`` remove links, never their targets. Digests and names read from ``refs/`` and ``converted/``
  are validated before they become paths.
- ``prune`` takes the lock of every blob it deletes (the lock a pull holds) and spares blobs changed since
  the oldest fetch or conversion still running began.

``mhub cache verify`` re-hashes every blob and checks every name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import IntegrityError, NoSpaceError
from .integrity import sha256_file

STALE_TMP_SECONDS = 3600  # `prune` leaves younger unlocked temporary files alone (a write may be running)
HEX64 = re.compile(r"[0-9a-f]{64}")  # fullmatch
NAME = re.compile(r"[a-z0-9][a-z0-9_]*\.[a-z0-9][a-z0-9_]*")  # model.tag, fullmatch
RECORD_LIMIT = 1 << 20  # bytes: refs, conversions and stamps are a few hundred
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
LAYOUT = ("blobs", "blobs/sha256", "refs", "names", "converted", "locks", "verified", "tmp")


def home() -> Path:
    """The cache root: ``MHUB_HOME``, else the platform's user cache directory + ``/mhub``."""
    value = os.environ.get("MHUB_HOME")
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir()) / "mhub"


def no_space(path: Path, error: OSError, needed: int | None = None,
             advice: str = "point MHUB_HOME at a larger disk") -> NoSpaceError:
    """The one-line error for ``ENOSPC``/``EDQUOT`` while writing ``path``."""
    try:
        free = shutil.disk_usage(path.parent if not path.is_dir() else path).free
        free_text = f"{free} bytes free"
    except OSError:
        free_text = "free space unknown"
    need = f", {needed} bytes needed" if needed else ""
    return NoSpaceError(f"no space left on device writing {path} ({free_text}{need}); free some space "
                        f"or {advice} ({error.strerror or error})")


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
        directory = self.ensure_dir(self.root / "tmp")
        return directory / f"{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"

    def ensure_dir(self, path: Path) -> Path:
        """Create the folder ``path`` of this cache, passing through no symbolic link below the root.

        Raises:
            IntegrityError: a folder on the way is a link or not a folder (the cache was tampered with).
        """
        current = self.root
        current.mkdir(parents=True, exist_ok=True)
        for part in path.relative_to(self.root).parts:
            current = current / part
            try:
                current.mkdir()
            except FileExistsError:
                pass
            if current.is_symlink() or not current.is_dir():
                raise _layout_error(current)
        return path

    def check_no_links(self, path: Path) -> None:
        """Raise :class:`IntegrityError` when a folder between the root and ``path`` (included) is a link."""
        current = str(self.root)
        for part in path.relative_to(self.root).parts:  # (strings: this runs on every cache hit)
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return
            if not stat.S_ISDIR(mode):
                raise _layout_error(Path(current))

    def lock(self, key: str):
        """The inter-process lock guarding blob ``key`` (filelock: flock on POSIX, freed if we die)."""
        from filelock import FileLock

        path = self.root / "locks" / f"{key}.lock"
        self.ensure_dir(path.parent)
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
            with contextlib.suppress(OSError):
                os.utime(lock.lock_file)  # tells `prune` since when this operation runs
            yield
        finally:
            lock.release()

    # -- writing -----------------------------------------------------------------------------------
    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        """Write ``data`` to ``path`` atomically (temporary file in ``tmp/``, then ``os.replace``)."""
        tmp = self.tmp_file()
        try:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            self.ensure_dir(path.parent)
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            if is_no_space(error):
                raise no_space(path, error) from error
            raise

    def add_blob(self, file: Path, digest: str) -> Path:
        """Move a verified ``file`` into place as the blob ``digest`` (atomic; same filesystem)."""
        target = self.blob_path(digest)
        self.ensure_dir(target.parent)
        os.replace(file, target)
        return target

    def link_name(self, name: str, filename: str, digest: str) -> Path:
        """Point ``names/<name>/<filename>`` at blob ``digest`` (a relative symlink, atomically replaced).

        Falls back to a hard link where symlinks are not allowed.
        """
        link = self.name_path(name, filename)
        self.ensure_dir(link.parent)
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
        """The record of ``name`` (None when absent, unreadable or malformed: a digest that is not 64 hex
        digits, a name that is not ``model.tag``, never becomes a path)."""
        return _valid_ref(_read_json(self.ref_path(name)))

    def write_ref(self, name: str, data: dict[str, Any]) -> None:
        self.write_json(self.ref_path(name), data)

    def refs(self) -> list[dict[str, Any]]:
        """Every (well-formed) name in the cache, sorted."""
        directory = self.root / "refs"
        out = [ref for path in sorted(directory.glob("*.json")) if (ref := _valid_ref(_read_json(path)))]
        return sorted(out, key=lambda ref: ref["name"])

    def read_conversion(self, source_digest: str, converter: str, version: int) -> dict[str, Any] | None:
        return _valid_conversion(_read_json(self.conversion_path(source_digest, converter, version)))

    def conversions(self, source_digest: str) -> list[dict[str, Any]]:
        directory = self.root / "converted" / source_digest
        return [c for path in sorted(directory.glob("*.json")) if (c := _valid_conversion(_read_json(path)))]

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """True when blob ``digest`` is a regular file (of ``size`` bytes, when given); links do not count."""
        try:
            info = self.blob_path(digest).lstat()
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and (size is None or info.st_size == size)

    # -- verification stamps -------------------------------------------------------------------------
    def verified_blob(self, digest: str, size: int | None = None, *, rehash: bool = True) -> bool:
        """True when blob ``digest`` may be used: present (of ``size`` bytes), and either its stat equals
        this user's stamp or it hashes to its name now (then stamped). A blob that no longer matches is
        reported with a warning and reads as absent, so the caller fetches (and replaces) it.

        With ``rehash=False`` only the stamp counts: a blob without a matching one reads as absent, unhashed
        and without a warning (the cheap check before taking a lock, under which the full one runs).

        Raises:
            IntegrityError: ``blobs/`` or ``blobs/sha256/`` is a link.
        """
        path = self.blob_path(digest)
        self.check_no_links(path.parent)
        try:
            info = path.lstat()
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode):
            problem = f"it is {_kind(path)}, not a file"
        elif size is not None and info.st_size != size:
            problem = f"it holds {info.st_size} bytes, not {size}"
        else:
            stamps = self._stamp_dir()
            if stamps is not None and _read_text(stamps / digest) == _stamp_text(info):
                return True
            if not rehash:
                return False
            actual, _ = sha256_file(path)
            if actual == digest:
                self.stamp(digest, info)
                return True
            problem = f"its bytes now hash to {actual}"
        if not rehash:  # said once, by the full check that follows
            return False
        warnings.warn(f"cached blob {path} changed after it was verified ({problem}); it is not used and will "
                      "be fetched again", UserWarning, stacklevel=2)
        return False

    def stamp(self, digest: str, info: os.stat_result | None = None) -> None:
        """Record that this user verified blob ``digest`` while its stat was ``info`` (default: now)."""
        stamps = self._stamp_dir()
        if stamps is None:
            return
        try:
            now = self.blob_path(digest).lstat()
            if info is not None and _stamp_text(now) != _stamp_text(info):
                return  # it changed while it was hashed: no stamp, the next use hashes it again
            tmp = stamps / f".{digest}.{os.getpid()}.tmp"
            tmp.write_text(_stamp_text(now), encoding="ascii")
            os.replace(tmp, stamps / digest)
        except OSError:
            pass  # no stamp: the blob is simply hashed again before its next use

    def _stamp_dir(self) -> Path | None:
        """This user's stamp folder: ``verified/<uid>`` in the cache, else (a read-only cache, say) one in
        the user's own state directory; None when neither can be trusted (a link, another owner, not 0700)."""
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
        try:
            shared = self.root / "verified" / user
            self.check_no_links(shared.parent)
            shared.parent.mkdir(exist_ok=True)
            if _private_folder(shared):
                return shared
        except (OSError, IntegrityError):
            pass
        import hashlib

        import platformdirs

        key = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:32]
        own = Path(platformdirs.user_state_dir("mhub")) / "verified" / key
        try:
            own.parent.mkdir(parents=True, exist_ok=True)
            return own if _private_folder(own) else None
        except OSError:
            return None

    def name_points_at(self, name: str, filename: str, digest: str) -> bool:
        """True when ``names/<name>/<filename>`` leads to blob ``digest`` (as a link or a hard link)."""
        try:
            return os.path.samefile(self.name_path(name, filename), self.blob_path(digest))
        except OSError:
            return False

    # -- maintenance (``mhub cache``) --------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """What ``mhub cache ls`` shows: each name, its blob, whether present, and its conversions."""
        out = []
        for ref in self.refs():
            digest = ref["sha256"]
            conversions = [{**c, "path": str(self.blob_path(c["sha256"])), "present": self.has_blob(c["sha256"])}
                           for c in self.conversions(digest)]
            out.append({**ref, "path": str(self.name_path(ref["name"], ref.get("filename", ""))),
                        "blob": str(self.blob_path(digest)), "present": self.has_blob(digest, ref.get("size")),
                        "conversions": conversions})
        return out

    def verify(self, *, delete: bool = False) -> dict[str, Any]:
        """Re-hash every blob and check every name; report (and with ``delete`` remove) what is wrong.

        Nothing is followed out of the cache: an entry of ``blobs/sha256/`` that is not a regular file
        (a link, say) is corrupt without being read, a name must lead to one of the cache's blobs, and
        ``delete`` removes such links themselves, never their targets.

        Returns:
            ``{"checked": n, "bytes": total, "corrupt": [{"blob", "actual", "reason", "names"}],
            "missing": [{"name", "blob"}], "bad_names": [{"path", "target"}]}``.

        Raises:
            IntegrityError: a folder of the layout is a link (nothing is read or removed).
        """
        for folder in ("blobs/sha256", "names"):
            self.check_no_links(self.root / folder)
        by_blob: dict[str, list[str]] = {}
        missing = []
        for ref in self.refs():
            by_blob.setdefault(ref["sha256"], []).append(ref["name"])
            if not self.has_blob(ref["sha256"]):
                missing.append({"name": ref["name"], "blob": ref["sha256"]})
        checked, total, corrupt = 0, 0, []
        good: set[tuple[int, int]] = set()  # (device, inode) of every sound blob
        directory = self.root / "blobs" / "sha256"
        for path in sorted(directory.iterdir()) if directory.is_dir() else []:
            info = path.lstat()
            checked += 1
            if not stat.S_ISREG(info.st_mode):
                corrupt.append({"blob": path.name, "actual": None, "reason": f"{_kind(path)}, not a file",
                                "names": by_blob.get(path.name, [])})
            else:
                actual, size = sha256_file(path)
                total += size
                if actual == path.name:
                    good.add((info.st_dev, info.st_ino))
                    self.stamp(actual, info)
                    continue
                corrupt.append({"blob": path.name, "actual": actual, "reason": f"content hashes to {actual}",
                                "names": by_blob.get(path.name, [])})
            if delete:
                remove_entry(path)
        bad_names = []
        for path in self._name_files():
            try:
                info = path.stat()
                sound = (info.st_dev, info.st_ino) in good
            except OSError:
                sound = False
            if not sound:
                bad_names.append({"path": str(path), "target": _kind(path)})
                if delete:
                    remove_entry(path)
        return {"checked": checked, "bytes": total, "corrupt": corrupt, "missing": missing, "bad_names": bad_names}

    def _name_files(self) -> list[Path]:
        """Every entry under ``names/<name>/`` (a ``names/<name>`` that is not a real folder counts itself)."""
        out = []
        for folder in sorted((self.root / "names").glob("*")):
            if folder.is_symlink() or not folder.is_dir():
                out.append(folder)
            else:
                out += sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        return out

    def remove(self, name: str) -> dict[str, Any]:
        """Forget ``name`` (``model.tag``, or ``model`` for all its tags) and free blobs nothing else uses.

        Returns:
            ``{"removed": [names], "freed": bytes}``; ``removed`` is empty when nothing matched.

        Raises:
            IntegrityError: a folder of the layout is a link (nothing is removed).
        """
        for folder in LAYOUT:
            self.check_no_links(self.root / folder)
        refs = self.refs()
        doomed = [r for r in refs if r["name"] == name or r["name"].split(".", 1)[0] == name]
        for ref in doomed:
            self.ref_path(ref["name"]).unlink(missing_ok=True)
            remove_entry(self.root / "names" / ref["name"])
        kept = {r["sha256"] for r in refs if r not in doomed}
        freed = 0
        for digest in {r["sha256"] for r in doomed} - kept:
            freed += self._drop_source(digest)
        return {"removed": [r["name"] for r in doomed], "freed": freed}

    def prune(self, *, dry_run: bool = False, keep_conversion=None) -> dict[str, Any]:
        """Delete what no name needs: unreferenced blobs, stale conversions, dangling names, temp files.

        Safe while pulls run: a blob is deleted only under its lock (the one a pull of it holds), only if
        no name or conversion needs it once that lock is held, and only if it is older than the oldest
        fetch or conversion still running (which may be about to record it). Links are removed, never
        followed.

        Args:
            dry_run: only report.
            keep_conversion: ``f(converter, version) -> bool``; conversions it rejects (an older
                converter version, an uninstalled converter) are removed. Default keeps all.

        Returns:
            ``{"removed": [paths], "freed": bytes}``.

        Raises:
            IntegrityError: a folder of the layout is a link (nothing is removed).
        """
        for folder in LAYOUT:
            self.check_no_links(self.root / folder)
        removed: list[str] = []
        freed = 0

        def drop(path: Path) -> None:
            nonlocal freed
            freed += _tree_size(path)
            removed.append(str(path))
            if not dry_run:
                remove_entry(path)

        needed, stale = self._needed(keep_conversion)
        for path in stale:
            drop(path)
        for directory in sorted((self.root / "converted").glob("*")):
            if not dry_run and directory.is_dir() and not directory.is_symlink() and not any(directory.iterdir()):
                directory.rmdir()
        blobs = self.root / "blobs" / "sha256"
        candidates = [p for p in sorted(blobs.iterdir()) if p.name not in needed] if blobs.is_dir() else []
        with contextlib.ExitStack() as held:
            mine = {p.name for p in candidates if held.enter_context(self._try_lock(p.name))}
            running_since = self._running_since(exclude=mine)
            needed, _ = self._needed(keep_conversion)  # a pull may have recorded a candidate meanwhile
            for path in candidates:
                young = running_since is not None and _changed_ns(path) >= running_since
                if path.name in mine and path.name not in needed and not young:
                    drop(path)
        names = {r["name"] for r in self.refs()}
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
    def _needed(self, keep_conversion) -> tuple[set[str], list[Path]]:
        """The blobs some name or kept conversion needs, and the stale conversion records."""
        sources = {r["sha256"] for r in self.refs()}
        needed, stale = set(sources), []
        for directory in sorted((self.root / "converted").glob("*")):
            for path in sorted(directory.glob("*.json")):
                conv = _valid_conversion(_read_json(path))
                if (conv is None or directory.name not in sources or
                        (keep_conversion is not None and not keep_conversion(conv["converter"], conv["version"]))):
                    stale.append(path)
                else:
                    needed.add(conv["sha256"])
        return needed, stale

    def _running_since(self, exclude: set[str]) -> int | None:
        """When (``st_mtime_ns``) the oldest fetch or conversion still holding its lock began, if any."""
        earliest = None
        for path in (self.root / "locks").glob("*.lock"):
            key = path.name[:-len(".lock")]
            if key in exclude or self._lock_free(key):
                continue
            with contextlib.suppress(OSError):
                started = path.stat().st_mtime_ns
                earliest = started if earliest is None else min(earliest, started)
        return earliest

    @contextlib.contextmanager
    def _try_lock(self, key: str):
        """Hold the lock of ``key`` if it is free now; yields whether it is held."""
        from filelock import Timeout

        lock = self.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def _drop_source(self, digest: str) -> int:
        freed = 0
        for conv in self.conversions(digest):
            freed += _tree_size(self.blob_path(conv["sha256"]))
            remove_entry(self.blob_path(conv["sha256"]))
        remove_entry(self.root / "converted" / digest)
        freed += _tree_size(self.blob_path(digest))
        remove_entry(self.blob_path(digest))
        return freed

    def _lock_free(self, key: str) -> bool:
        with self._try_lock(key) as free:
            return free


def _private_folder(directory: Path) -> bool:
    """Create ``directory`` (mode 0700) if absent; True when it is a real folder only its owner, this
    user, can write (so the stamps in it are this user's own)."""
    try:
        info = directory.lstat()
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
        info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid() and not info.st_mode & 0o077


def _layout_error(path: Path) -> IntegrityError:
    if path.is_symlink():
        return IntegrityError(f"{path} is a symbolic link (to {os.readlink(path)}); mhub never follows a link "
                              "out of its cache: remove the link")
    return IntegrityError(f"{path} should be a folder of the mhub cache but is not; remove it")


def _kind(path: Path) -> str:
    """What ``path`` is, for a report: ``a symbolic link to X``, ``a folder``, ``missing``, ``a file``."""
    if path.is_symlink():
        return f"a symbolic link to {os.readlink(path)}"
    if path.is_dir():
        return "a folder"
    return "a file" if path.exists() else "missing"


def remove_entry(path: Path) -> None:
    """Remove ``path`` without following it: a link goes, its target stays; a real folder goes whole
    (``shutil.rmtree`` removes links inside it without following them either)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _changed_ns(path: Path) -> int:
    """When ``path`` last changed (content or inode: a rename into place counts), in ns."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    return max(info.st_mtime_ns, info.st_ctime_ns)


def _stamp_text(info: os.stat_result) -> str:
    return f"{info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} {info.st_ino}\n"


def _read_text(path: Path, limit: int = RECORD_LIMIT) -> str | None:
    """A small regular file's text, read without following a link (None for anything else)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(limit + 1)
    if len(data) > limit:
        return None
    return data.decode("utf-8", errors="replace")


def _read_json(path: Path) -> dict[str, Any] | None:
    text = _read_text(path)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _valid_ref(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    if ref is None or not isinstance(ref.get("name"), str) or not NAME.fullmatch(ref["name"]):
        return None
    if not isinstance(ref.get("sha256"), str) or not HEX64.fullmatch(ref["sha256"]):
        return None
    return ref


def _valid_conversion(conv: dict[str, Any] | None) -> dict[str, Any] | None:
    if conv is None or not isinstance(conv.get("sha256"), str) or not HEX64.fullmatch(conv["sha256"]):
        return None
    if not isinstance(conv.get("converter"), str) or not isinstance(conv.get("version"), int):
        return None
    return conv


def _tree_size(path: Path) -> int:
    """Bytes under ``path``, links counted as themselves and never followed."""
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
        total = 0
        for folder, _, files in os.walk(path):  # os.walk does not follow links to folders
            total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
        return total
    except OSError:
        return 0
