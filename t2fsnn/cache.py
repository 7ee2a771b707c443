"""Content-keyed cache for expensive results, written atomically and loaded safely.

Every artifact is written to a temporary file in its folder and renamed over its final
name, so a killed writer never leaves a partial file under a final name. A dict artifact
carries the checksum of its content, verified on load; :func:`load_entry` removes a damaged
entry with a :class:`CacheWarning` that names it, and the caller recomputes it.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Optional

import torch

__all__ = ["cache_dir", "cache_key", "digest", "source_digest", "object_digest", "atomic_write", "atomic_save", "safe_load",
           "load_entry", "ensure_writable", "CorruptedCacheError", "CacheNotWritableError", "CacheWarning"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class CorruptedCacheError(RuntimeError):
    """A cached file exists but cannot be read."""


def cache_dir() -> Path:
    """``T2FSNN_CACHE`` if set, else ``<repo>/.t2fsnn-cache``."""
    return Path(os.environ.get("T2FSNN_CACHE", REPO_ROOT / ".t2fsnn-cache"))


def cache_key(spec: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable description of what produced a result."""
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def digest(*parts) -> str:
    """A short stable hash of tensors (shape and bytes) and other values (their repr)."""
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            hasher.update(str(tuple(part.shape)).encode())
            hasher.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            hasher.update(repr(part).encode())
    return hasher.hexdigest()[:16]


def source_digest(*files) -> str:
    """A short hash of source files: part of a cache key where a result depends on that code."""
    hasher = hashlib.sha256()
    for path in files:
        hasher.update(Path(path).read_bytes())
    return hasher.hexdigest()[:12]


CHECKSUM_KEY = "_t2fsnn_sha256"
STALE_TEMP_SECONDS = 3600  # a temporary file this old belongs to a writer that was killed


class CacheWarning(UserWarning):
    """A damaged cache entry was removed and its result is recomputed."""


class CacheNotWritableError(PermissionError):
    """The cache folder (``$T2FSNN_CACHE``) cannot be written: a result would be lost."""


def object_digest(obj: Any) -> str:
    """sha256 of a cached object's content: tensors by dtype, shape and bytes; containers recursively.

    Independent of how the object was serialised, so it can be checked after ``torch.load``.
    """
    hasher = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous().reshape(-1)
            hasher.update(f"T{t.dtype}{tuple(value.shape)}:".encode())
            hasher.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            hasher.update(f"D{len(value)}:".encode())
            for key in sorted(value, key=repr):
                feed(key)
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            hasher.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}:".encode())
            for item in value:
                feed(item)
        else:
            text = repr(value)
            hasher.update(f"S{type(value).__name__}{len(text)}:{text}".encode())

    feed(obj)
    return hasher.hexdigest()


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of ``path`` left by a writer that was killed (``kill -9``, power loss)."""
    now = time.time()
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """``write(handle)`` into a temporary file in the same folder, then rename it over ``path``.

    A reader sees either the previous complete file or the new complete file, never a
    partial one, even if the writer is killed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` through :func:`atomic_write`.

    A dict gets its content checksum (:func:`object_digest`) under ``CHECKSUM_KEY``, which
    :func:`safe_load` verifies; the file stays a plain ``torch.load``-able dict.
    """
    path = Path(path)
    ensure_writable(path.parent)
    _remove_stale_temporaries(path)
    if isinstance(obj, dict):
        obj = {**{k: v for k, v in obj.items() if k != CHECKSUM_KEY}, CHECKSUM_KEY: object_digest(obj)}
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def safe_load(path: Path, required: Iterable[str] = ()) -> Any:
    """Load a cached file with ``weights_only=True`` and check it.

    A file written by :func:`atomic_save` must match its stored checksum; an older file
    without one must be a readable archive (torch checks the zip structure). A dict must
    hold the ``required`` keys. Anything else raises ``CorruptedCacheError``, which names
    the file and what is wrong.
    """
    path = Path(path)
    required = tuple(required)

    def damaged(reason: str, error: Optional[BaseException] = None) -> CorruptedCacheError:
        exc = CorruptedCacheError(f"cached file {path} is corrupted ({reason}); delete it to recompute")
        exc.path, exc.reason = path, reason
        return exc

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for damaged archives
        raise damaged(f"unreadable: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error
    if isinstance(obj, dict) and CHECKSUM_KEY in obj:
        stored = obj.pop(CHECKSUM_KEY)
        actual = object_digest(obj)
        if stored != actual:
            raise damaged(f"checksum mismatch: stored {str(stored)[:16]}..., content {actual[:16]}...")
    if required:
        if not isinstance(obj, dict):
            raise damaged(f"expected a dict with keys {', '.join(required)}, found {type(obj).__name__}")
        missing = [key for key in required if key not in obj]
        if missing:
            raise damaged(f"expected keys {', '.join(required)}, missing {', '.join(missing)}")
    return obj


def load_entry(path: Path, required: Iterable[str] = ()) -> Optional[Any]:
    """A cached object, or ``None`` when there is none or it was damaged.

    A damaged entry (see :func:`safe_load`) is removed with a :class:`CacheWarning` that
    names it, so the caller recomputes and rewrites it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return safe_load(path, required)
    except CorruptedCacheError as error:
        warnings.warn(
            f"removed damaged cache entry {path} ({getattr(error, 'reason', error)}); recomputing it",
            CacheWarning, stacklevel=2,
        )
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return None


def probe_writable(folder: os.PathLike) -> Optional[OSError]:
    """Create ``folder`` if needed and write a file in it; the error if that fails, else ``None``."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".t2fsnn-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return error
    return None


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises :class:`CacheNotWritableError` (naming the folder and the remedy) otherwise, so an
    expensive computation is refused before it starts rather than lost after it.
    """
    folder = Path(folder)
    error = probe_writable(folder)
    if error is not None:
        raise CacheNotWritableError(
            f"the cache folder {folder} cannot be written ({type(error).__name__}: {error.strerror or error}); "
            "results computed now could not be kept. Set T2FSNN_CACHE to a writable folder "
            "or make this one writable."
        )
    return folder
