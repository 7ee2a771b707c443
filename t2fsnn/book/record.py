"""Recorded runs: every book notebook executed once at full scale and committed with its provenance.

``t2fsnn record --profile full -p dataset mnist`` runs the book's notebooks with those
parameters into ``book/recorded/<profile>-<dataset>/`` and writes ``run.json`` beside them:
the command, the resolved parameters of each notebook, the source revision (with a dirty
flag), the machine, the versions, the start, end and seconds of each notebook, and the
sha256 of every data file and every cached model the run used.

A record resumes by default: a notebook already recorded with the same parameters, at a
revision whose package and notebook equal this one's, is kept, every other one runs again (trained models and optimized kernels
come from the cache), so re-running the command after a crash completes the run.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from t2fsnn.book import runner
from t2fsnn.cache import atomic_write
from t2fsnn.book.revision import RevisionError, _git, source_revision

__all__ = ["RECORDED_DIR", "RUN_FILE", "RecordError", "record", "record_name", "read_run", "recorded_runs",
           "source_revision", "machine", "dataset_files", "glued_outputs", "glued_values", "REQUIRED_KEYS", "NUMERIC_SOURCES",
           "PRESENTATION_SOURCES", "portable_text", "make_portable", "MACHINE_PATH"]

RECORDED_DIR = runner.REPO_ROOT / "book" / "recorded"
RUN_FILE = "run.json"
REPORT_NOTEBOOK = "00_reproduction_report"  # reads the recorded runs; never recorded itself
REQUIRED_KEYS = ("name", "profile", "dataset", "command", "revision", "machine", "versions", "data", "models",
                 "notebooks", "started", "finished", "seconds", "complete")
# files whose changes can change a recorded number
NUMERIC_SOURCES = ("t2fsnn", "notebooks")
# within them, the machinery that runs, records, checks or shows the book and cannot change a number
PRESENTATION_SOURCES = tuple(f"t2fsnn/book/{name}" for name in (
    "browser.py", "cli.py", "kernel.py", "preflight.py", "progress.py", "record.py", "report.py", "revision.py",
    "runner.py",  # it resolves the parameters, and run.json records them one by one
    "sphinx_ext.py", "static/"))


class RecordError(runner.ParameterError):
    """A record was refused before any notebook ran (dirty tree, unknown notebook, ...)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def machine() -> Dict[str, Any]:
    """CPU model and threads, GPU if any, of this machine."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu cores": os.cpu_count(), "torch threads": torch.get_num_threads(), "gpu": gpu,
            "system": platform.system()}


def _versions() -> Dict[str, str]:
    import torch

    return {"t2fsnn": runner._package_version(), "torch": torch.__version__, "python": platform.python_version()}


def _sha256(path: Path) -> str:
    from t2fsnn.data import file_digest

    return file_digest(path, "sha256")


def dataset_files(dataset: str) -> Dict[str, Any]:
    """Where the dataset came from (never an absolute path) and the sha256 of each of its files."""
    from t2fsnn import data

    if dataset == "mnist_subset":
        base, root = data.SUBSET_DIR, "data/mnist-subset (embedded subset)"
        files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix == ".gz")
        names = [p.name for p in files]
    else:
        base, root = data.data_root(), "$T2FSNN_DATA" if os.environ.get("T2FSNN_DATA") else "data/"
        names = [spec.path for spec in data.REGISTRY[dataset]]
        files = [base / name for name in names]
    missing = [str(n) for n, p in zip(names, files) if not p.is_file()]
    if missing:
        raise RecordError(f"dataset {dataset!r}: missing files {', '.join(missing)} under {root}")
    return {"dataset": dataset, "root": root, "sha256": {name: _sha256(path) for name, path in zip(names, files)}}


def _as_stored(parameters: Mapping[str, Any]) -> Dict[str, Any]:
    """Parameters as run.json holds them, so that a stored entry compares equal."""
    return json.loads(json.dumps(parameters, default=str))


def _commands(earlier, this: str):
    """The command of this call, after those of the earlier calls that recorded the same run."""
    history = [] if not earlier else (list(earlier) if isinstance(earlier, list) else [earlier])
    return this if not history else history + ([this] if history[-1] != this else [])


def _same_numbers(commit: str, stem: str, root: Path = runner.REPO_ROOT) -> bool:
    """No file that can change the notebook's numbers (the package, the notebook) differs from ``commit``."""
    if not commit:
        return False
    head = _git("rev-parse", "HEAD", root=root).strip()
    if commit == head:
        return True
    out = subprocess.run(["git", "-C", str(root), "diff", "--quiet", commit, "HEAD", "--", "t2fsnn",
                          f"notebooks/{stem}.ipynb"], capture_output=True, timeout=30)
    return out.returncode == 0


# absolute paths of a machine, in the order they are rewritten: an installed package, a dataset, the source tree
_MACHINE_PATHS = (
    (re.compile(r"(?:/[\w.+-]+)+/(?:site|dist)-packages/"), "<site-packages>/"),
    (re.compile(r"(?:/[\w.+-]+)+?/(?=(?:cifar-10-batches-py|cifar-100-python|MNIST)/)"), "$T2FSNN_DATA/"),
    (re.compile(r"(?:/[\w.+-]+)+?/(?=(?:t2fsnn|notebooks|book|benchmarks|tests|scripts|data)/)"), ""),
)
# what is left of a machine's absolute path after the rewriting: the check of the tests and of the record
MACHINE_PATH = re.compile(r"(?<![\w.$~<>-])/(?:work|home|root|tmp|usr|opt|srv|mnt|var|Users|private|scratch)/[\w.+-]")


def portable_text(text: str) -> str:
    """``text`` with this machine's absolute paths replaced: ``$T2FSNN_DATA/...`` for a dataset,
    a path relative to the repository for the project's files, ``<site-packages>/...`` for an
    installed package, ``~`` for the home folder."""
    data_root = os.environ.get("T2FSNN_DATA")
    if data_root:
        text = text.replace(str(Path(data_root).expanduser().resolve()) + "/", "$T2FSNN_DATA/")
    text = text.replace(str(runner.REPO_ROOT) + "/", "")
    for pattern, replacement in _MACHINE_PATHS:
        text = pattern.sub(replacement, text)
    return text.replace(str(Path.home()) + "/", "~/")


def make_portable(notebook: os.PathLike) -> int:
    """Rewrite absolute paths of this machine in an executed notebook's outputs and metadata; the count of strings changed.

    The recorded notebooks are shown in the book, which never shows the folders of the
    machine that recorded it. Images and other binary outputs are left as they are.
    """
    path = Path(notebook)
    content = json.loads(path.read_text())
    changed = 0

    def walk(value, key=None):
        nonlocal changed
        if isinstance(value, dict):
            return {k: (v if k.startswith("image/") else walk(v, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item, key) for item in value]
        if isinstance(value, str):
            portable = portable_text(value)
            changed += portable != value
            return portable
        return value

    cells = [cell if cell.get("cell_type") != "code" else
             {**cell, "outputs": walk(cell.get("outputs", []))} for cell in content["cells"]]
    content = {**content, "cells": cells, "metadata": walk(content.get("metadata", {}))}
    if changed:
        temporary = path.with_name(f".{path.name}.portable.tmp")
        temporary.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    return changed


def record_name(profile: str, dataset: str) -> str:
    return f"{profile}-{dataset}"


def read_run(folder: os.PathLike) -> Dict[str, Any]:
    """The ``run.json`` of a recorded run (``{}`` when there is none yet)."""
    path = Path(folder) / RUN_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path} is not valid JSON ({exc}); delete it to record the run again") from None


def recorded_runs(root: os.PathLike = RECORDED_DIR) -> Dict[str, Dict[str, Any]]:
    """Every recorded run under ``root`` by name, complete or not."""
    root = Path(root)
    if not root.is_dir():
        return {}
    return {folder.name: read_run(folder) for folder in sorted(root.iterdir()) if (folder / RUN_FILE).exists()}


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))


def glued_outputs(path: os.PathLike) -> Dict[str, Dict[str, Any]]:
    """``{key: MIME bundle}`` of every value an executed notebook glued (scrapbook's MIME prefix removed)."""
    bundles = {}
    try:
        cells = json.loads(Path(path).read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RecordError(f"recorded notebook {path} cannot be read ({type(error).__name__}: {error}); "
                          "restore it from git or record it again") from None
    for cell in cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook", {})
            if meta.get("name"):
                prefix = meta.get("mime_prefix", "")
                bundles[meta["name"]] = {mime.removeprefix(prefix) if prefix else mime: data
                                         for mime, data in output.get("data", {}).items()}
    return bundles


def glued_values(path: os.PathLike) -> Dict[str, str]:
    """``{key: text/plain}`` of every value an executed notebook glued."""
    return {key: "".join(bundle.get("text/plain", "")) for key, bundle in glued_outputs(path).items()}


MODEL_FILE_LIMIT = 80 * 2**20  # the one kind of large file the repository keeps


def _models_used(folder: Path, plans: Sequence[tuple]) -> Dict[str, str]:
    """sha256 of each ANN whose key a recorded notebook glued (``model_key``), copied beside the run.

    The ANN comes from this machine's cache, or from a recorded run that already holds it; the
    copy in ``folder`` is what ``train_or_load`` finds by its key on another machine.
    """
    import shutil

    from t2fsnn import cache

    found: Dict[str, str] = {}
    for stem, params in plans:
        path = folder / f"{stem}.ipynb"
        if not path.exists():
            continue
        key = glued_values(path).get("model_key")
        if not key:
            continue
        name = f"{params['model']}-{params['dataset']}-{key}.pt"
        source = Path(cache.cache_dir()) / "models" / name
        if not source.exists():
            source = next(iter(sorted(folder.parent.glob(f"*/{name}"))), source)
        if not source.exists():
            found[name] = "not in this machine's cache"
            continue
        if source.stat().st_size > MODEL_FILE_LIMIT:
            found[name] = f"{_sha256(source)} (not committed: {source.stat().st_size / 2**20:.0f} MB)"
            continue
        target = folder / name
        if source.resolve() != target.resolve():
            temporary = folder / f".{name}.tmp"
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        found[name] = _sha256(target)
    return found


# the notebook that trains the ANN; with a scheduler, the others start once it is recorded
TRAINING_NOTEBOOK = "01_train_and_convert"


def _execute(stem: str, profile: str, own: Mapping[str, Any], folder: str, display=None) -> dict:
    """Run one notebook into ``folder``: its start, end and seconds (a module-level function, so Dask can send it)."""
    start, started = time.perf_counter(), _now()
    out = runner.run_notebook(stem, profile, own, output_dir=folder, display=display)
    make_portable(out)
    return {"start": started, "end": _now(), "seconds": round(time.perf_counter() - start, 1)}


def _run_plan(plan: tuple, profile: str, folder: str) -> dict:
    stem, own = plan
    return _execute(stem, profile, own, folder)


def record(profile: str, overrides: Optional[Mapping[str, Any]] = None, notebooks: Optional[Sequence[str]] = None,
           allow_dirty: bool = False, output_root: Optional[os.PathLike] = None, command: Optional[str] = None,
           display=None, scheduler: Optional[str] = None) -> Path:
    """Run every book notebook (or ``notebooks``) for the record; return the run's folder.

    Every notebook's parameters and the work tree are checked before anything runs. A
    notebook recorded before with the same parameters at the same revision is kept.
    ``display`` (a ``t2fsnn.book.progress.Display``) shows each notebook and its progress.
    ``scheduler`` (default ``$T2FSNN_SCHEDULER``, see :mod:`t2fsnn.cluster`) runs the notebooks
    as tasks on a Dask cluster: the training notebook first, then the others side by side.
    """
    from t2fsnn import cluster
    from t2fsnn.book import progress
    setting = cluster.scheduler_setting(scheduler)
    overrides = dict(overrides or {})
    stems = list(notebooks) if notebooks else [s for s in runner.BOOK_NOTEBOOKS if s != REPORT_NOTEBOOK]
    unknown = [s for s in stems if s not in runner.BOOK_NOTEBOOKS]
    if unknown:
        raise RecordError(f"unknown notebook {', '.join(unknown)}; book notebooks: {', '.join(runner.BOOK_NOTEBOOKS)}")
    revision = source_revision()
    if revision["dirty"] and not allow_dirty:
        shown = ", ".join(revision["changed"][:8]) + (" ..." if len(revision["changed"]) > 8 else "")
        raise RecordError(f"the work tree has uncommitted changes ({shown}); commit them, or record anyway "
                          f"with --allow-dirty (run.json and the book then say so)")
    declared = {stem: runner.declared_parameters(stem) for stem in stems}  # papermill reads each notebook once
    taken = set().union(*declared.values())
    for name in overrides:
        if name not in taken:
            raise RecordError(f"no recorded notebook takes parameter {name!r}; they take: {', '.join(sorted(taken))}")
    plans = []
    for stem in stems:
        own = {k: v for k, v in overrides.items() if k in declared[stem]}
        plans.append((stem, runner.resolve_parameters(stem, profile, own), own))
    datasets = {params["dataset"] for _, params, _ in plans if "dataset" in params}
    if len(datasets) != 1:
        raise RecordError(f"a record covers one dataset; the notebooks resolve to {sorted(datasets)}")
    dataset = datasets.pop()
    data_record = dataset_files(dataset)  # refuses a missing dataset before any notebook runs

    folder = Path(output_root or RECORDED_DIR) / record_name(profile, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    previous = read_run(folder)
    done = previous.get("notebooks", {}) if previous else {}
    run: Dict[str, Any] = {
        "name": folder.name, "profile": profile, "dataset": dataset,
        "command": _commands(previous.get("command"), command or f"t2fsnn record --profile {profile}"
                             + "".join(f" -p {k} {v}" for k, v in overrides.items())),
        "revision": {k: revision[k] for k in ("commit", "dirty")} | ({"changed": revision["changed"]} if revision["dirty"] else {}),
        "machine": machine(), "versions": _versions(), "data": data_record, "models": {},
        # notebooks recorded by an earlier call and not asked for now stay in the record
        "notebooks": {stem: entry for stem, entry in done.items()
                      if stem not in {s for s, _, _ in plans} and entry.get("status") == "done"},
        "started": previous.get("started") or _now(), "finished": None, "seconds": None,
        "complete": False, "resumed": bool(done),
    }
    display = display or progress.Display("off")
    pending = []
    for index, (stem, params, own) in enumerate(plans, 1):
        entry = done.get(stem, {})
        kept = (entry.get("status") == "done" and entry.get("parameters") == _as_stored(params)
                and (folder / f"{stem}.ipynb").exists() and _same_numbers(entry.get("commit", ""), stem))
        if kept:
            run["notebooks"][stem] = entry
            display.note(f"[{index}/{len(plans)}] {stem}: kept from the earlier record of this revision")
            continue
        for stale in folder.glob(f".{stem}.*.ipynb"):  # the temporary copy of a run killed before
            stale.unlink()
        pending.append((index, stem, params, own))

    def started(stem, params):
        run["notebooks"][stem] = {"parameters": _as_stored(params), "commit": revision["commit"], "start": _now(),
                                  "scheduler": setting or "this process", "status": "running"}

    def finished(stem, times):
        run["notebooks"][stem].update({**times, "status": "done"})
        _write_json(folder / RUN_FILE, run)

    if setting is None:
        for index, stem, params, own in pending:
            started(stem, params)
            _write_json(folder / RUN_FILE, run)
            display.notebook_started(index, len(plans), stem, profile)
            start = time.perf_counter()
            try:
                times = _execute(stem, profile, own, str(folder), display)
            except BaseException:
                display.notebook_failed(index, len(plans), stem, time.perf_counter() - start)
                raise
            finished(stem, times)
            display.notebook_finished(index, len(plans), stem, times["seconds"], folder / f"{stem}.ipynb")
    else:
        # the ANN first (the others load it from the cache), then every other notebook at once
        stages = [[p for p in pending if p[1] == TRAINING_NOTEBOOK], [p for p in pending if p[1] != TRAINING_NOTEBOOK]]
        for stage in filter(None, stages):
            for _, stem, params, _ in stage:
                started(stem, params)
            _write_json(folder / RUN_FILE, run)
            display.note(f"on the cluster ({setting}): {', '.join(stem for _, stem, _, _ in stage)}")
            results = cluster.map_tasks(_run_plan, [(stem, own) for _, stem, _, own in stage], setting,
                                        shared={"profile": profile, "folder": str(folder)})
            for (index, stem, _, _), times in zip(stage, results):
                finished(stem, times)
                display.note(f"[{index}/{len(plans)}] {stem}: done in {times['seconds']:.0f} s on the cluster")
    run["models"] = {**previous.get("models", {}), **_models_used(folder, [(s, p) for s, p, _ in plans])}
    run["finished"] = _now()
    run["seconds"] = round(sum(e.get("seconds", 0.0) for e in run["notebooks"].values()), 1)
    run["complete"] = True
    _write_json(folder / RUN_FILE, run)
    return folder
