"""The source revision of a run: HEAD, and the files that differ from it.

Both the runner (the run record inside each notebook) and ``t2fsnn record`` (``run.json``)
label a run with it; it lives apart from both so that neither imports the other.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Dict, Sequence

from t2fsnn.cache import REPO_ROOT

__all__ = ["RevisionError", "source_revision"]


class RevisionError(RuntimeError):
    """git could not tell the revision (not a repository, git missing)."""


def _git(*args: str, root: Path = REPO_ROOT) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RevisionError(f"git {' '.join(args)} failed in {root}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def source_revision(root: Path = REPO_ROOT, ignore: Sequence[str] = ("book/recorded",)) -> Dict[str, Any]:
    """``{"commit", "dirty", "changed"}``: HEAD and the tracked or untracked files that differ from it.

    Paths under ``ignore`` (the recorded runs themselves) never make the tree dirty.
    """
    commit = _git("rev-parse", "HEAD", root=root).strip()
    changed = []
    for line in _git("status", "--porcelain", root=root).splitlines():
        path = line[3:].split(" -> ")[-1].strip('"')
        if not any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in ignore):
            changed.append(path)
    return {"commit": commit, "dirty": bool(changed), "changed": changed}
