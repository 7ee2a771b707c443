"""Run the book's notebooks with parameters from a profile, and build the book.

Parameters of a run = profile ``defaults`` + the profile's ``datasets`` entry
for the chosen dataset + the profile's ``notebooks`` entry for the notebook +
the dataset entry's own ``notebooks`` entry for the notebook + values given on
the command line, restricted to the names the notebook's
``parameters`` cell declares.  Every value is checked against
:mod:`t2fsnn.book.params` before any notebook starts.

Executed notebooks are written to ``book/generated/<stem>.ipynb``; the book's
chapters paste figures and numbers from them with myst-nb ``glue``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import yaml

from t2fsnn.book import params as _params
from t2fsnn.book import preflight as _preflight
from t2fsnn.book.revision import source_revision

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
GENERATED_DIR = REPO_ROOT / "book" / "generated"
PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
PROFILES = ("smoke", "quick", "full", "paper")
DEFAULT_PROFILE = "quick"

# The notebooks of the book, in reading order (stems of files in notebooks/).
# Add a new notebook here; ``t2fsnn book`` runs them in this order.
BOOK_NOTEBOOKS: List[str] = [
    "00_reproduction_report",
    "01_train_and_convert",
    "02_ttfs_coding_primer",
    "03_spike_time_distributions",
    "04_kernel_optimization",
    "05_ablation",
    "06_inference_curves",
    "07_comparison",
    "08_performance",
    "09_design_space",
]


class ParameterError(ValueError):
    """A run's parameters were refused (raised before any notebook starts)."""


# ---------------------------------------------------------------------------
# Profiles and parameters
# ---------------------------------------------------------------------------


def load_profile(name: str) -> Dict[str, Any]:
    """The profile ``name`` as a dict with ``description``, ``cost``, ``defaults``, ``datasets``, ``notebooks``."""
    if name not in PROFILES:
        raise ParameterError(f"unknown profile {name!r}; allowed profiles: {', '.join(PROFILES)}")
    path = PROFILE_DIR / f"{name}.yml"
    try:
        with open(path) as f:
            prof = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError(f"profile {path}: cannot be read ({str(error).splitlines()[0]})") from None
    if not isinstance(prof, dict):
        raise ParameterError(f"profile {path}: expected a mapping with 'defaults', found {type(prof).__name__}")
    for key in ("defaults", "datasets", "notebooks"):
        prof[key] = prof.get(key) or {}
    return prof


def notebook_path(notebook: Union[str, os.PathLike]) -> Path:
    """Resolve a notebook given as a path or as a stem of a file in ``notebooks/``."""
    path = Path(notebook)
    if path.suffix != ".ipynb" and not path.exists():
        path = NOTEBOOK_DIR / f"{path.name}.ipynb"
    if not path.is_file():
        known = ", ".join(BOOK_NOTEBOOKS)
        raise FileNotFoundError(f"notebook {notebook!s} not found (book notebooks: {known})")
    return path.resolve()


def declared_parameters(notebook: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Names and default source text of the notebook's ``parameters`` cell."""
    import papermill

    path = notebook_path(notebook)
    try:
        json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as error:
        raise ParameterError(f"notebook {path} is not a notebook file (not JSON: {error})") from None
    found = papermill.inspect_notebook(str(path))
    if not found:
        raise ParameterError(f"notebook {path.name} has no cell tagged 'parameters'")
    return {name: meta.get("default") for name, meta in found.items()}


def resolve_parameters(
    notebook: Union[str, os.PathLike],
    profile: str = DEFAULT_PROFILE,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The validated parameters a run of ``notebook`` with ``profile`` and ``overrides`` gets.

    ``overrides`` values may be strings (parsed by the declared type) or Python values.
    Raises :class:`ParameterError` for unknown names, names the notebook does not
    take, and values out of range.
    """
    path = notebook_path(notebook)
    stem = path.stem
    prof = load_profile(profile)
    declared = declared_parameters(path)
    undeclared = sorted(n for n in declared if n not in _params.PARAMS)
    if undeclared:
        raise ParameterError(
            f"notebook {path.name} declares parameters missing from t2fsnn/book/params.py: {', '.join(undeclared)}"
        )
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in _params.PARAMS:
            raise ParameterError(
                f"unknown parameter {name!r}; allowed parameters: {', '.join(sorted(_params.PARAMS))}"
            )
        if name not in declared:
            raise ParameterError(
                f"notebook {path.name} does not take parameter {name!r}; it takes: {', '.join(sorted(declared))}"
            )
    if "profile" in overrides:
        raise ParameterError("set the profile with --profile, not as a parameter")
    try:
        given = {}
        for name, value in overrides.items():
            given[name] = _params.parse(name, value) if isinstance(value, str) else _params.validate(name, value)
        merged: Dict[str, Any] = {}
        merged.update(prof["defaults"])
        dataset = given.get("dataset", prof["notebooks"].get(stem, {}).get("dataset", merged.get("dataset")))
        for_dataset = dict(prof["datasets"].get(dataset) or {})
        for_dataset_notebooks = for_dataset.pop("notebooks", None) or {}
        merged.update(for_dataset)
        merged.update(prof["notebooks"].get(stem) or {})
        merged.update(for_dataset_notebooks.get(stem) or {})
        merged.update(given)
        merged["profile"] = profile
        chosen = {name: value for name, value in merged.items() if name in declared}
        return _params.validate_all(chosen)
    except ValueError as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ParameterError(f"{path.name} with profile {profile!r}: {exc}") from None


# ---------------------------------------------------------------------------
# Running notebooks
# ---------------------------------------------------------------------------


def _absolute_data_env() -> None:
    """Make ``$T2FSNN_DATA`` absolute, since the kernel runs in another folder."""
    env = os.environ.get("T2FSNN_DATA")
    if env:
        os.environ["T2FSNN_DATA"] = str(Path(env).expanduser().resolve())


_KERNEL_DIR: Optional[Path] = None


def _pin_kernel() -> None:
    """Make the ``python3`` kernel run this interpreter (the one with t2fsnn installed).

    A ``python3`` kernel spec in the user's Jupyter folders could otherwise point
    at another Python. Kernel specs in ``$JUPYTER_PATH`` take precedence.
    """
    global _KERNEL_DIR
    if _KERNEL_DIR is None:
        import atexit
        import json

        _KERNEL_DIR = Path(tempfile.mkdtemp(prefix="t2fsnn-jupyter-"))
        atexit.register(shutil.rmtree, _KERNEL_DIR, True)
        spec = _KERNEL_DIR / "kernels" / "python3"
        spec.mkdir(parents=True)
        # t2fsnn/book/kernel.py: ipykernel with tqdm bars routed by $T2FSNN_PROGRESS and no TCP warning
        launcher = Path(__file__).resolve().parent / "kernel.py"
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, str(launcher), "-f", "{connection_file}"],
            "display_name": "Python 3 (t2fsnn)",
            "language": "python",
        }))
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(_KERNEL_DIR) not in paths.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(_KERNEL_DIR), paths]))


def run_notebook(
    notebook: Union[str, os.PathLike],
    profile: str = DEFAULT_PROFILE,
    overrides: Optional[Mapping[str, Any]] = None,
    output_dir: Optional[os.PathLike] = None,
    log_output: bool = False,
    progress_bar: bool = False,
    kernel_name: Optional[str] = None,
    display=None,
) -> Path:
    """Execute one notebook with papermill; return the path of the executed copy.

    The copy is written under a temporary name and renamed when execution
    succeeds, so ``<output_dir>/<stem>.ipynb`` is never half-written.  On
    failure, the partial copy is kept as ``<stem>.failed.ipynb`` for inspection.

    ``display`` (a ``t2fsnn.book.progress.Display``) decides where the tqdm bars
    of the notebook go: to its terminal, or (the default) nowhere.  They never
    go into the executed notebook.  It prints nothing itself: see
    :func:`run_notebooks` for the per-notebook lines.
    """
    import papermill

    from t2fsnn.book import progress as _progress

    if display is None:
        display = _progress.Display("off")

    path = notebook_path(notebook)
    parameters = resolve_parameters(path, profile, overrides)  # raises before anything runs
    out_dir = Path(output_dir) if output_dir is not None else GENERATED_DIR
    _preflight.check_run(parameters, out_dir)  # output and cache writable, dataset present and sound
    final = out_dir / f"{path.stem}.ipynb"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.stem}.", suffix=".ipynb")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it owner-only; the executed notebook is a normal file
    _absolute_data_env()
    _pin_kernel()
    try:
        with display.kernel_environment():
            papermill.execute_notebook(
                str(path),
                tmp,
                parameters=parameters,
                cwd=str(path.parent),
                # the notebook's own output echoed as it comes (papermill's log_output would go
                # through logging, where nothing configured shows its INFO records)
                stdout_file=sys.stdout if log_output else None,
                stderr_file=sys.stderr if log_output else None,
                progress_bar=progress_bar,
                kernel_name=kernel_name,
            )
    except BaseException as exc:
        if os.path.exists(tmp):
            os.replace(tmp, out_dir / f"{path.stem}.failed.ipynb")
        failure = _preflight.notebook_failure(exc, path, out_dir / f"{path.stem}.failed.ipynb")
        if failure is not None:  # which cell failed, and where the partial notebook is
            raise failure from exc
        raise
    os.replace(tmp, final)
    failed = out_dir / f"{path.stem}.failed.ipynb"
    if failed.exists():
        failed.unlink()
    return final


def run_notebooks(
    notebooks: Sequence[Union[str, os.PathLike]],
    profile: str = DEFAULT_PROFILE,
    overrides: Optional[Mapping[str, Any]] = None,
    output_dir: Optional[os.PathLike] = None,
    display=None,
    log_output: bool = False,
) -> List[Path]:
    """Run ``notebooks`` in order, each with the same profile and ``overrides``; return the executed copies.

    Parameters of every notebook are checked before the first one starts; a
    notebook that does not take one of the ``overrides`` is refused.
    ``display`` (``t2fsnn.book.progress.Display``) reports each notebook as
    ``[i/n] name``, and routes the tqdm bars of the kernels to the terminal
    (``Display.for_terminal()``); the default shows nothing.  A failure is
    reported, then raised.  The closing summary line is the caller's:
    ``display.summary(outputs, book)``.
    """
    paths = [notebook_path(nb) for nb in notebooks]
    plans = [(path, dict(overrides or {})) for path in paths]
    for path, own in plans:  # validate all, and check their datasets, output and cache, before running any
        _preflight.check_run(resolve_parameters(path, profile, own), output_dir or GENERATED_DIR)
    return _run_plans(plans, profile, output_dir, display, log_output)


def _run_plans(plans, profile, output_dir, display, log_output=False) -> List[Path]:
    """Run ``(notebook, overrides)`` pairs in order, reporting each to ``display``."""
    from t2fsnn.book import progress as _progress

    if display is None:
        display = _progress.Display("off")
    outputs: List[Path] = []
    for index, (notebook, own) in enumerate(plans, 1):
        name = notebook_path(notebook).stem
        display.notebook_started(index, len(plans), name, profile)
        start = time.perf_counter()
        try:
            out = run_notebook(notebook, profile, own, output_dir=output_dir, display=display,
                               log_output=log_output)
        except BaseException:
            display.notebook_failed(index, len(plans), name, time.perf_counter() - start)
            raise
        display.notebook_finished(index, len(plans), name, time.perf_counter() - start, out)
        outputs.append(out)
    return outputs


def run_book_notebooks(
    profile: str = DEFAULT_PROFILE,
    overrides: Optional[Mapping[str, Any]] = None,
    output_dir: Optional[os.PathLike] = None,
    notebooks: Optional[Sequence[str]] = None,
    echo=None,
    display=None,
) -> List[Path]:
    """Run every book notebook in order; parameters of all are checked first.

    ``overrides`` apply to each notebook that declares the parameter.
    ``display`` as in :func:`run_notebooks`; without one, ``echo`` (if given)
    gets one line per notebook.
    """
    from t2fsnn.book import progress as _progress

    stems = list(notebooks if notebooks is not None else BOOK_NOTEBOOKS)
    taken = set()
    for stem in stems:
        taken.update(declared_parameters(stem))
    for name in overrides or {}:
        if name in _params.PARAMS and name not in taken:
            raise ParameterError(f"no book notebook takes parameter {name!r}; they take: {', '.join(sorted(taken))}")
    plans = []
    for stem in stems:
        declared = declared_parameters(stem)
        own = {k: v for k, v in (overrides or {}).items() if k in declared or k not in _params.PARAMS}
        # validate all, and check their datasets, output and cache, before running any
        _preflight.check_run(resolve_parameters(stem, profile, own), output_dir or GENERATED_DIR)
        plans.append((stem, own))
    if display is None and echo is not None:
        display = _progress.Display("lines", stream=_EchoStream(echo))
    return _run_plans(plans, profile, output_dir, display)


class _EchoStream:
    """A write-only stream that hands each line to ``echo`` (for callers of the older ``echo=`` API)."""

    def __init__(self, echo):
        self.echo = echo

    def write(self, text: str) -> None:
        for line in text.splitlines():
            self.echo(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def build_book(source_dir: Optional[os.PathLike] = None, builder: str = "html") -> Path:
    """``jupyter-book build --all -W -n --keep-going``; return the path of ``index.html``.

    ``--all`` re-reads every page, so no warning hides in a page cached by an earlier build.

    Raises ``RuntimeError`` when the build fails or warns.
    """
    src = Path(source_dir) if source_dir is not None else REPO_ROOT
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else (shutil.which("jupyter-book") or "jupyter-book")]
    cmd += ["build", "--all", "-W", "-n", "--keep-going", "--builder", builder, str(src)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}):\n{proc.stdout[-8000:]}")
    return src / "_build" / "html" / "index.html"


# ---------------------------------------------------------------------------
# Helpers for notebooks
# ---------------------------------------------------------------------------


class Text:
    """A string that displays without quotes (``text/plain``) and escaped (``text/html``).

    Glue it to paste plain words into a page: ``glue("key", Text("quick"))``.
    """

    def __init__(self, value: Any):
        self.value = str(value)

    def __repr__(self) -> str:
        return self.value

    def _repr_html_(self) -> str:
        return html.escape(self.value)


def glue_values(values: Optional[Mapping[str, Any]] = None, **named: Any) -> None:
    """Glue each value under its name without displaying it: the numbers and words a chapter pastes inline.

    ``glue_values(T=T, tau=tau)`` or ``glue_values({"z_min": z_min})``; numbers as plain
    floats or ints, words as :class:`Text`.
    """
    from myst_nb import glue

    for name, value in {**dict(values or {}), **named}.items():
        glue(name, value, display=False)


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("t2fsnn")
    except Exception:
        return "unknown"


def _git_commit(root: Path = REPO_ROOT) -> str:
    """HEAD's short hash, with ``-dirty`` when files other than the recorded runs differ from it.

    The same test as ``t2fsnn record``: a record rewrites its own folder while it runs, which
    must not mark the notebooks it writes as run from uncommitted code.
    """
    try:
        revision = source_revision(root)
    except Exception:
        return "unknown"
    return revision["commit"][:7] + ("-dirty" if revision["dirty"] else "")


def _device_name(requested: str) -> str:
    import torch

    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if requested == "cuda":
        return "cuda requested, not available"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _data_root_shown(dataset: Any) -> str:
    """Where the run's data came from, without a path of the machine that ran it.

    ``data/mnist-subset`` (repository-relative) for the embedded subset,
    ``$T2FSNN_DATA`` when that variable chose the data root, else the
    repository-relative default ``data``.
    """
    from t2fsnn import data as _data

    if dataset == "mnist_subset":
        where = _data.SUBSET_DIR
        try:
            where = where.resolve().relative_to(REPO_ROOT)
        except ValueError:
            pass
        return f"{where.as_posix()} (embedded subset)"
    if os.environ.get(_data.ENV_VAR):
        return f"${_data.ENV_VAR}"
    root = _data.data_root()
    try:
        return root.resolve().relative_to(REPO_ROOT).as_posix() + " (in the repository)"
    except ValueError:  # pragma: no cover - data_root() is $T2FSNN_DATA or <repo>/data
        return root.name


def run_record(params: Mapping[str, Any]) -> Dict[str, str]:
    """What produced this run: profile, parameters, data, versions, device."""
    import torch

    from t2fsnn import data as _data

    dataset = params.get("dataset")
    root = _data_root_shown(dataset)
    record = {
        "profile": str(params.get("profile", "")),
        "dataset": str(dataset),
        "data root": root,
    }
    for name, value in params.items():
        if name not in ("profile", "dataset"):
            record[f"parameter {name}"] = repr(value)
    record.update(
        {
            "device": _device_name(str(params.get("device", "auto"))),
            "t2fsnn version": _package_version(),
            "source revision": _git_commit(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "executed (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        }
    )
    return record


def parameter_values(namespace: Mapping[str, Any]) -> Dict[str, Any]:
    """The notebook parameters found in ``namespace`` (a notebook's ``globals()``), in its order.

    The run record is built from these, so a notebook never re-types its parameters.
    """
    return {name: value for name, value in namespace.items() if name in _params.PARAMS}


def record_run(params: Mapping[str, Any]):
    """The run record as a two-column DataFrame (``item``, ``value``) for display and glue."""
    import pandas as pd

    rec = run_record(params)
    return pd.DataFrame({"item": list(rec), "value": list(rec.values())}).set_index("item")
