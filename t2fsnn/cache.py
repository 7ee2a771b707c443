"""Content-keyed cache for expensive results, written atomically and loaded safely."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["cache_dir", "cache_key", "digest", "source_digest", "atomic_save", "safe_load", "CorruptedCacheError"]

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


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def safe_load(path: Path) -> Any:
    """Load a cached file with ``weights_only=True``; a damaged file raises ``CorruptedCacheError``."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for damaged archives
        raise CorruptedCacheError(
            f"cached file {path} is corrupted ({type(error).__name__}: {error}); "
            f"delete it to recompute"
        ) from error
