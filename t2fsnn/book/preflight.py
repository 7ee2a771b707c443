"""Checks made before a notebook's kernel starts, and the error a failed notebook turns into.

:func:`check_run` refuses a run whose output folder or cache cannot be written, or
whose dataset is missing or damaged, with one clear message: the command line turns
these errors into exit code 2 without a traceback. :func:`notebook_failure` says
which cell of a notebook failed and where the partial executed notebook is.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

__all__ = ["OutputNotWritableError", "NotebookFailedError", "check_output_dir", "check_run", "check_generated",
           "notebook_failure"]


class OutputNotWritableError(PermissionError):
    """The folder for executed notebooks cannot be written."""


class NotebookFailedError(RuntimeError):
    """A notebook raised an error (or its kernel died) in one of its cells."""

    def __init__(self, message: str, notebook: str, cell: Optional[int], partial: Optional[Path]):
        super().__init__(message)
        self.notebook, self.cell, self.partial = notebook, cell, partial


def check_output_dir(folder: os.PathLike) -> Path:
    """Create ``folder`` if needed and check that a file can be written there."""
    from t2fsnn import cache

    folder = Path(folder)
    error = cache.probe_writable(folder)
    if error is not None:
        raise OutputNotWritableError(
            f"the output folder {folder} cannot be written ({type(error).__name__}: {error.strerror or error}); "
            "choose another with --output-dir or make this one writable"
        )
    return folder


def check_run(parameters: Mapping[str, Any], output_dir: os.PathLike) -> None:
    """Everything a run needs that can be checked before its kernel starts.

    The output folder and the cache (``$T2FSNN_CACHE``) must be writable, and the
    files of the run's ``dataset`` present (downloaded if allowed, see
    ``T2FSNN_NO_DOWNLOAD``) and well formed. Raises :class:`OutputNotWritableError`,
    ``cache.CacheNotWritableError``, ``data.DatasetNotFoundError`` or
    ``data.DatasetCorruptError``.
    """
    from t2fsnn import cache, data

    check_output_dir(output_dir)
    cache.ensure_writable(cache.cache_dir())
    dataset = parameters.get("dataset")
    if dataset:
        data.check(dataset)


_ADDED_TAGS = ("injected-parameters", "papermill-error-cell-tag")  # cells papermill adds to the executed copy


def _source_cell(partial: Optional[Path], executed_index: int):
    """(1-based number of the failed cell in the source notebook, its number of cells).

    Found from the partial notebook: the cell with the error output, not counting the
    cells papermill added. Falls back to papermill's index in the executed copy.
    """
    import json

    try:
        cells = json.loads(partial.read_text())["cells"]
    except Exception:
        return executed_index + 1, "?"
    own = [c for c in cells if not set(c.get("metadata", {}).get("tags", [])) & set(_ADDED_TAGS)]
    for number, cell in enumerate(own, 1):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return number, len(own)
    return executed_index + 1, len(own)


def check_generated(folder: os.PathLike, stems) -> None:
    """The executed notebooks a book build pastes from must exist (``t2fsnn book --no-run``)."""
    folder = Path(folder)
    missing = [f"{stem}.ipynb" for stem in stems if not (folder / f"{stem}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"no executed notebook {', '.join(missing)} in {folder}: the book pastes its results from them. "
            f"Run `t2fsnn book` (all notebooks, then the build) or `t2fsnn run <notebook>` for each first"
        )


def notebook_failure(error: BaseException, notebook: os.PathLike, partial: Optional[os.PathLike]) -> Optional[NotebookFailedError]:
    """A :class:`NotebookFailedError` for a papermill failure: which cell, what error, where the partial notebook is.

    ``None`` for anything that is not a failure inside the notebook (an interrupt, a
    refused parameter), which the caller re-raises unchanged.
    """
    name = Path(notebook).name
    partial = Path(partial) if partial is not None else None
    where = (f"The partial executed notebook, with the error output in that cell (marked in red), is {partial}"
             if partial is not None and partial.exists() else "No partial executed notebook was written.")
    try:
        from papermill.exceptions import PapermillExecutionError
    except ImportError:  # pragma: no cover - papermill is a dependency
        PapermillExecutionError = ()  # type: ignore[assignment]
    if isinstance(error, PapermillExecutionError):
        source = (error.source or "").strip().splitlines()
        first = next((line for line in source if line.strip() and not line.lstrip().startswith("#")),
                     source[0] if source else "")
        cell, total = _source_cell(partial, error.cell_index)
        shown = f"In [{error.exec_count}] in the partial notebook" if error.exec_count is not None else "not executed"
        message = (f"notebook {name} failed in cell {cell} of {total} ({shown}): {error.ename}: {error.evalue}\n"
                   f"  the cell begins: {first[:120]}\n{where}")
        return NotebookFailedError(message, name, cell, partial)
    kind = type(error).__name__
    if kind == "DeadKernelError" or "kernel died" in str(error).lower():
        message = f"notebook {name}: the kernel died while running it ({str(error).strip()[:200]})\n{where}"
        return NotebookFailedError(message, name, None, partial)
    return None
