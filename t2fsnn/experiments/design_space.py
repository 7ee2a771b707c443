"""Beyond the paper: the accuracy-latency-spikes design space of one converted network.

The paper reports T2FSNN at one working point per dataset (MNIST: ``T = 20``,
``tau = 5``, ``t_d = 0``, early firing at ``T/2``). Here every configuration of a grid
over the window ``T``, the time constant ``tau``, the kernel delay ``t_d`` and the
early-firing start is run with the exact engine on the same images
(:func:`evaluate_grid`), and :func:`pareto_front` keeps the configurations that no
other beats on every objective at once (higher accuracy, lower latency or fewer
spikes). Every row of a table holds its configuration, so :func:`configuration`
rebuilds it and :func:`rerun_arguments` gives the notebook parameters that run it
again.

:func:`robustness_table` repeats the comparison of the kernels (the paper's, GO's and
those chosen for the output, ``optimize_kernels(objective="output")``) on ANNs of
one architecture trained in different ways.

Columns of the tables: ``T``, ``tau``, ``td`` (one number, or one per spiking layer),
``ef_start`` (``None``: no early firing), ``accuracy`` (%, at the last step),
``gap to ANN`` (points below the converted ANN on the same images), ``latency`` (the
pipeline, ``(L - 1) * s + T``, as the paper's tables), ``settled latency`` (ours: the
first step from which the accuracy stays within a tolerance of its final value,
:func:`t2fsnn.experiments.analysis.settling_step`), ``spikes`` (per image, hidden layers, the
authors' count), ``input spikes``, ``energy TrueNorth`` and ``energy SpiNNaker``
(:func:`t2fsnn.snn.metrics.normalized_energy` relative to the row marked ``reference``,
whose energy is therefore 1) and ``reference``.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch

from t2fsnn import cache, cluster
from t2fsnn.experiments.analysis import settling_step
from t2fsnn.checks import check_int, is_finite, is_int, check_finite_tensor
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.metrics import evaluate, normalized_energy

__all__ = [
    "parse_grid",
    "check_grid",
    "grid",
    "ann_accuracy",
    "measure",
    "configuration_table",
    "evaluate_grid",
    "pareto_front",
    "configuration",
    "rerun_arguments",
    "front_table",
    "describe_configuration",
    "in_words",
    "cheapest_at_accuracy",
    "kernel_variants",
    "kernel_table",
    "parse_trainings",
    "prepare_trainings",
    "robustness_table",
    "robustness_summary",
    "METHODS",
    "COLUMNS",
    "DIRECTIONS",
]

# the kernels compared on every network: the paper's hand-chosen ones, GO (the paper), chosen for the output (ours)
METHODS = ("T2FSNN", "T2FSNN+GO", "T2FSNN+output kernels")
COLUMNS = ("T", "tau", "td", "ef_start", "accuracy", "gap to ANN", "latency", "settled latency", "spikes",
           "input spikes", "energy TrueNorth", "energy SpiNNaker", "reference")
DIRECTIONS = ("max", "min")
# the notebook parameters of one grid point, in the order of the configuration's fields
GRID_PARAMETERS = {"T": "grid_T", "tau": "grid_tau", "ef_start": "grid_ef_start", "td": "grid_td"}
# what a robustness variant may change in the ANN's training
TRAINING_KEYS = ("epochs", "lr", "seed")


# ---------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------

def _split(name: str, text) -> list[str]:
    if not isinstance(text, str):
        raise ValueError(f"{name}={text!r} is not allowed: give comma-separated values as a string, e.g. '12,16,20'")
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ValueError(f"{name}={text!r} is not allowed: give comma-separated values without empty entries, "
                         f"e.g. '12,16,20'")
    return items


def _number(name: str, text: str, item: str, kind):
    try:
        value = float(item)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not allowed: {item!r} is not a number") from None
    if kind is int:
        if not value.is_integer():
            raise ValueError(f"{name}={text!r} is not allowed: {item!r} is not an integer")
        return int(value)
    return value


def parse_grid(T: str, tau: str, ef_start: str, td: str) -> tuple[list, list, list, list]:
    """The grid of the notebook parameters ``grid_T``, ``grid_tau``, ``grid_ef_start``, ``grid_td``.

    Each is a comma-separated string (``"12,16,20"``); ``grid_ef_start`` takes ``none``
    for the pipeline without early firing. Returns the checked lists
    ``(T_values, tau_values, ef_starts, td_offsets)``; a bad value raises ``ValueError``
    naming the parameter.
    """
    T_values = [_number("grid_T", T, item, int) for item in _split("grid_T", T)]
    tau_values = [_number("grid_tau", tau, item, float) for item in _split("grid_tau", tau)]
    ef_starts = [None if item.lower() == "none" else _number("grid_ef_start", ef_start, item, int)
                 for item in _split("grid_ef_start", ef_start)]
    td_offsets = [_number("grid_td", td, item, float) for item in _split("grid_td", td)]
    return _check_grid(T_values, tau_values, ef_starts, td_offsets, GRID_PARAMETERS)


def _values(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name}={values!r} is not allowed: give a list of values")
    values = list(values)
    if not values:
        raise ValueError(f"{name}=[] is not allowed: give at least one value")
    repeated = sorted({repr(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{name}={values!r} is not allowed: {', '.join(repeated)} given more than once")
    return values


def _check_grid(T_values, tau_values, ef_starts, td_offsets, names: Mapping[str, str]):
    T_values = _values(names["T"], T_values)
    for T in T_values:
        if not is_int(T) or T < 1:
            raise ValueError(f"{names['T']}={T_values!r} is not allowed: {T!r} is not a time window "
                             f"(an integer >= 1)")
    tau_values = _values(names["tau"], tau_values)
    for tau in tau_values:
        if not is_finite(tau) or tau <= 0:
            raise ValueError(f"{names['tau']}={tau_values!r} is not allowed: {tau!r} is not a time constant "
                             f"(a finite number > 0)")
    ef_starts = _values(names["ef_start"], ef_starts)
    shortest = min(T_values)
    for start in ef_starts:
        if start is not None and (not is_int(start) or not 1 <= start <= shortest - 1):
            raise ValueError(
                f"{names['ef_start']}={ef_starts!r} is not allowed with T={shortest}: early firing starts at an "
                f"integer step 1 .. T-1 = {shortest - 1} of every window of the grid, or None for no early firing; "
                f"{start!r} is not")
    td_offsets = _values(names["td"], td_offsets)
    for td in td_offsets:
        if not is_finite(td):
            raise ValueError(f"{names['td']}={td_offsets!r} is not allowed: {td!r} is not a kernel delay "
                             f"(a finite number)")
    return T_values, [float(tau) for tau in tau_values], ef_starts, [float(td) for td in td_offsets]


def check_grid(T_values, tau_values, ef_starts=(None,), td_offsets=(0.0,)) -> tuple[list, list, list, list]:
    """Check a grid before any work; return its four lists.

    ``T_values``: windows, integers >= 1. ``tau_values``: time constants > 0, the same in
    every layer. ``ef_starts``: early-firing starts, integers in ``1 .. T - 1`` for every
    ``T`` of the grid, or ``None`` for no early firing. ``td_offsets``: kernel delays
    ``t_d`` (the same in every layer; the paper's is 0). Each list is non-empty and
    holds no value twice.
    """
    names = {"T": "T_values", "tau": "tau_values", "ef_start": "ef_starts", "td": "td_offsets"}
    return _check_grid(T_values, tau_values, ef_starts, td_offsets, names)


def grid(T_values, tau_values, ef_starts=(None,), td_offsets=(0.0,)) -> list[TTFSConfig]:
    """Every configuration of the grid (checked by :func:`check_grid`), ``T`` varying slowest, then ``tau``, ``td``, ``ef_start``."""
    T_values, tau_values, ef_starts, td_offsets = check_grid(T_values, tau_values, ef_starts, td_offsets)
    return [TTFSConfig(T=T, tau=tau, td=td, ef_start=start)
            for T, tau, td, start in itertools.product(T_values, tau_values, td_offsets, ef_starts)]


# ---------------------------------------------------------------------------
# Measuring configurations
# ---------------------------------------------------------------------------

def _check_data(net, images, labels) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise ValueError("images and labels must be tensors")
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"need as many labels as images and at least one image, got {len(images)} and {len(labels)}")
    net.check_input(images[:1])  # shape and dtype; then every image, before the grid's first configuration
    check_finite_tensor("images", images)


def _check_options(tolerance, batch_size, engine) -> None:
    if not is_finite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be a number of percentage points >= 0")
    check_int("batch_size", batch_size, 1)
    if engine not in ("exact", "clock"):
        raise ValueError(f"engine={engine!r} is not allowed: choose 'exact' or 'clock'")


@torch.no_grad()
def ann_accuracy(net, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy (%) of the converted ANN (activations clipped to [0, 1]) on the images."""
    _check_data(net, images, labels)
    check_int("batch_size", batch_size, 1)
    device = net.device
    correct = sum(int((net.ann_forward(images[i:i + batch_size].to(device)).argmax(1).cpu()
                       == labels[i:i + batch_size].cpu()).sum()) for i in range(0, len(images), batch_size))
    return 100.0 * correct / len(images)


def _measure_spec(net, images, labels, cfg: TTFSConfig, engine: str) -> dict:
    from t2fsnn.snn import kernels, metrics, optimization
    from t2fsnn.snn.engines import ttfs

    return {"what": "design-space-point", "weights": optimization._weights_hash(net),
            "images": cache.digest(images.float()), "labels": cache.digest(labels), "engine": engine,
            "cfg": optimization._cfg_spec(cfg),
            "code": cache.source_digest(ttfs.__file__, kernels.__file__, metrics.__file__)}


def measure(net, images: torch.Tensor, labels: torch.Tensor, cfg: TTFSConfig, tolerance: float = 0.5,
            batch_size: int = 256, engine: str = "exact", device="cpu", use_cache: bool = True,
            cache_root=None) -> dict:
    """One configuration on the images: ``accuracy``, ``latency``, ``settled latency``, ``spikes``, ``input spikes``.

    The run is :func:`t2fsnn.snn.metrics.evaluate`; its accuracy curve and spike counts are
    cached under a key of the weights, the images and labels, ``cfg``, the engine and
    the engine's code, and the settled latency is read from the curve with ``tolerance``.
    """
    if not isinstance(cfg, TTFSConfig):
        raise ValueError(f"cfg={cfg!r} is not allowed: give a TTFSConfig")
    _check_options(tolerance, batch_size, engine)
    path = Path(cache_root or cache.cache_dir()) / "design-space" / \
        f"point-{cache.cache_key(_measure_spec(net, images, labels, cfg, engine))}.pt"
    stored = cache.load_entry(path, ("accuracy_over_time", "spikes_per_layer", "latency")) if use_cache else None
    if stored is None:
        result = evaluate(net, images, labels, cfg, batch_size=batch_size, engine=engine, device=device,
                          progress=False)
        stored = {"accuracy_over_time": torch.from_numpy(np.asarray(result.accuracy_over_time, dtype=np.float64)),
                  "spikes_per_layer": torch.from_numpy(np.asarray(result.spikes_per_layer, dtype=np.float64)),
                  "latency": int(result.latency)}
        if use_cache:
            cache.atomic_save(stored, path)
    curve = stored["accuracy_over_time"].numpy()
    per_layer = stored["spikes_per_layer"].numpy()
    return {"accuracy": float(curve[-1]), "latency": int(stored["latency"]),
            "settled latency": settling_step(curve, tolerance), "spikes": float(per_layer[1:].sum()),
            "input spikes": float(per_layer[0])}


def _kernel_value(value):
    return value if isinstance(value, float) else tuple(value)


def configuration_table(net, images: torch.Tensor, labels: torch.Tensor,
                        configs: Union[Mapping[str, TTFSConfig], Sequence[TTFSConfig]],
                        reference: Optional[TTFSConfig] = None, tolerance: float = 0.5,
                        ann_accuracy_value: Optional[float] = None, batch_size: int = 256, engine: str = "exact",
                        device="cpu", use_cache: bool = True, cache_root=None, progress: bool = False,
                        scheduler: Optional[str] = None) -> pd.DataFrame:
    """One row per configuration (named by the mapping's keys, else numbered): the columns of ``COLUMNS``.

    ``scheduler`` (default ``$T2FSNN_SCHEDULER``, see :mod:`t2fsnn.cluster`) measures the
    configurations as tasks on a Dask cluster; each result is cached by its key either way,
    and the table is the same.

    ``reference`` (default: the first configuration) is the row the energies are relative
    to; when it is not among ``configs`` it is measured too and added as a last row named
    ``reference``. ``ann_accuracy_value`` is the converted ANN's accuracy on the same
    images (computed when ``None``).
    """
    from tqdm import tqdm

    named = dict(configs) if isinstance(configs, Mapping) else dict(enumerate(configs))
    if not named:
        raise ValueError("configs is empty: give at least one configuration")
    for name, cfg in named.items():
        if not isinstance(cfg, TTFSConfig):
            raise ValueError(f"configuration {name!r}={cfg!r} is not allowed: give TTFSConfig values")
    if reference is not None and not isinstance(reference, TTFSConfig):
        raise ValueError(f"reference={reference!r} is not allowed: give a TTFSConfig or None (the first configuration)")
    _check_options(tolerance, batch_size, engine)
    _check_data(net, images, labels)
    for cfg in named.values():
        cfg.per_layer(net.num_spiking_layers)  # per-layer kernels of the right length, before any work
    reference = next(iter(named.values())) if reference is None else reference
    if all(cfg != reference for cfg in named.values()):
        named["reference"] = reference
    setting = cluster.scheduler_setting(scheduler)  # a bad value is refused before any work
    ann = ann_accuracy(net, images, labels) if ann_accuracy_value is None else float(ann_accuracy_value)
    options = dict(tolerance=tolerance, batch_size=batch_size, engine=engine, device=device, use_cache=use_cache,
                   cache_root=cache_root)
    if setting is None:
        measured = [measure(net, images, labels, cfg, **options)
                    for cfg in tqdm(named.values(), desc="configurations", disable=not progress, leave=False)]
    else:
        measured = cluster.map_tasks(_measure_task, list(named.values()), setting,
                                     shared=dict(net=net, images=images, labels=labels, options=options))
    rows = {}
    for (name, cfg), values in zip(named.items(), measured):
        rows[name] = {"T": cfg.T, "tau": _kernel_value(cfg.tau), "td": _kernel_value(cfg.td), "ef_start": cfg.ef_start,
                      **values, "reference": cfg == reference}
    ref = next(row for row in rows.values() if row["reference"])
    for row in rows.values():
        row["gap to ANN"] = ann - row["accuracy"]
        for hardware, label in (("truenorth", "energy TrueNorth"), ("spinnaker", "energy SpiNNaker")):
            row[label] = normalized_energy(row["spikes"], row["latency"], ref["spikes"], ref["latency"], hardware)
    table = pd.DataFrame.from_dict(rows, orient="index")[list(COLUMNS)]
    table["ef_start"] = pd.Series([row["ef_start"] for row in rows.values()], index=table.index, dtype=object)
    table.index.name = "configuration"
    return table


def _measure_task(cfg: TTFSConfig, net, images, labels, options: dict) -> dict:
    """One configuration measured on a cluster worker (a module-level function, so Dask can send it)."""
    return measure(net, images, labels, cfg, **options)


def evaluate_grid(net, images: torch.Tensor, labels: torch.Tensor, T_values, tau_values, ef_starts=(None,),
                  td_offsets=(0.0,), reference: Optional[TTFSConfig] = None, tolerance: float = 0.5,
                  ann_accuracy_value: Optional[float] = None, batch_size: int = 256, engine: str = "exact",
                  device="cpu", use_cache: bool = True, cache_root=None, progress: bool = False,
                  scheduler: Optional[str] = None) -> pd.DataFrame:
    """Every configuration of the grid (:func:`grid`) on the images: one row each, numbered, as :func:`configuration_table`.

    ``reference`` is the configuration the energies are relative to, e.g. the paper's
    working point ``TTFSConfig(T=20, tau=5.0, ef_start=10)`` on MNIST; a reference outside
    the grid is measured too and added as the last row. Every argument is checked
    before the first run.
    """
    configs = grid(T_values, tau_values, ef_starts, td_offsets)
    return configuration_table(net, images, labels, configs, reference, tolerance, ann_accuracy_value, batch_size,
                               engine, device, use_cache, cache_root, progress, scheduler)


# ---------------------------------------------------------------------------
# Pareto fronts and the configurations they hold
# ---------------------------------------------------------------------------

def _objectives(table: pd.DataFrame, objectives) -> list[tuple[str, str]]:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table of type {type(table).__name__} is not allowed: give a DataFrame")
    if not isinstance(objectives, Mapping) or not objectives:
        raise ValueError(f"objectives={objectives!r} is not allowed: give a mapping of columns to 'max' or 'min', "
                         "e.g. {'latency': 'min', 'accuracy': 'max'}")
    pairs = list(objectives.items())
    for column, direction in pairs:
        if column not in table.columns:
            raise ValueError(f"objective {column!r} is not allowed: the table's columns are {', '.join(map(str, table.columns))}")
        if direction not in DIRECTIONS:
            raise ValueError(f"objective {column!r}: {direction!r} is not allowed: choose 'max' or 'min'")
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise ValueError(f"objective {column!r} holds values that are not finite numbers")
    return pairs


def pareto_front(table: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The rows of ``table`` that no other row dominates, sorted by the objectives in the order given.

    ``objectives`` maps columns to ``"max"`` or ``"min"``, e.g.
    ``{"latency": "min", "accuracy": "max"}``. A row dominates another when it is at least
    as good in every objective and better in one. Rows equal in every objective are kept
    together. Sorting: by each objective in turn, best first for ``"max"``, smallest first
    for ``"min"``.
    """
    pairs = _objectives(table, objectives)
    if table.empty:
        return table.copy()
    # every objective as "larger is better"
    scores = np.stack([table[column].to_numpy(dtype=float) * (1.0 if direction == "max" else -1.0)
                       for column, direction in pairs], axis=1)
    at_least = (scores[:, None, :] >= scores[None, :, :]).all(2)  # [j, i]: j at least as good as i everywhere
    better = (scores[:, None, :] > scores[None, :, :]).any(2)
    dominated = (at_least & better).any(0)
    front = table[~dominated]
    return front.sort_values([column for column, _ in pairs],
                             ascending=[direction == "min" for _, direction in pairs], kind="stable")


def configuration(row: Mapping) -> TTFSConfig:
    """The configuration of a table row (``T``, ``tau``, ``td``, ``ef_start``)."""
    missing = [name for name in ("T", "tau", "td", "ef_start") if name not in row]
    if missing:
        raise ValueError(f"row without {', '.join(missing)} is not allowed: give a row of a design-space table")
    start = row["ef_start"]
    start = None if start is None or (isinstance(start, float) and math.isnan(start)) else int(start)
    return TTFSConfig(T=int(row["T"]), tau=row["tau"], td=row["td"], ef_start=start)


def rerun_arguments(row: Mapping) -> str:
    """The ``-p`` arguments that run a uniform-kernel row again as a grid of one point (notebook ``09_design_space``)."""
    cfg = configuration(row)
    if not isinstance(cfg.tau, float) or not isinstance(cfg.td, float):
        raise ValueError("a row with per-layer kernels is not a grid point: only uniform kernels re-run from the grid")
    values = {"T": cfg.T, "tau": f"{cfg.tau:g}", "ef_start": "none" if cfg.ef_start is None else cfg.ef_start,
              "td": f"{cfg.td:g}"}
    return " ".join(f"-p {GRID_PARAMETERS[name]} {value}" for name, value in values.items())


def describe_configuration(row: Mapping) -> str:
    """A configuration in words, e.g. ``"T = 16, tau = 5, t_d = 0, early firing from step 2"``."""
    cfg = configuration(row)
    kernel = (f"tau = {cfg.tau:g}, t_d = {cfg.td:g}" if isinstance(cfg.tau, float) and isinstance(cfg.td, float)
              else "per-layer kernels")
    firing = "no early firing" if cfg.ef_start is None else f"early firing from step {cfg.ef_start}"
    return f"T = {cfg.T}, {kernel}, {firing}"


def in_words(values: Sequence) -> str:
    """Grid values for a sentence: ``[8, 12, 20]`` as ``"8, 12 and 20"``, ``None`` as ``"none"``, floats as ``%g``."""
    words = ["none" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def front_table(front: pd.DataFrame, objective: str) -> pd.DataFrame:
    """A front for display: its configuration, accuracy, ``objective`` and the ``-p`` arguments that re-run each point."""
    if objective not in front.columns:
        raise ValueError(f"objective={objective!r} is not allowed: the front's columns are {', '.join(front.columns)}")
    columns = ["T", "tau", "td", "ef_start", "accuracy", "gap to ANN", objective, "reference"]
    shown = front[list(dict.fromkeys(columns))].copy()
    shown["re-run with"] = [rerun_arguments(row) for _, row in front.iterrows()]
    return shown


def cheapest_at_accuracy(table: pd.DataFrame, objective: str, accuracy: float) -> Optional[pd.Series]:
    """The row with the smallest ``objective`` among those with at least ``accuracy`` (%), or ``None``.

    Ties go to the more accurate row, then to the first.
    """
    _objectives(table, {objective: "min", "accuracy": "max"})
    if not is_finite(accuracy):
        raise ValueError(f"accuracy={accuracy!r} is not allowed: give a percentage")
    eligible = table[table["accuracy"] >= accuracy - 1e-9]
    if eligible.empty:
        return None
    return eligible.sort_values([objective, "accuracy"], ascending=[True, False], kind="stable").iloc[0]


# ---------------------------------------------------------------------------
# Kernels compared: the paper's, GO's and those chosen for the output
# ---------------------------------------------------------------------------

def kernel_variants(kernels: Mapping[str, TTFSConfig], ef_start: Optional[int] = None) -> dict[str, TTFSConfig]:
    """Each named kernel set without early firing and, as ``<name>+EF``, with it from ``ef_start`` (``None``: half the window)."""
    if not kernels:
        raise ValueError("kernels is empty: give at least one named TTFSConfig")
    variants = {}
    for name, cfg in kernels.items():
        if not isinstance(cfg, TTFSConfig):
            raise ValueError(f"kernels[{name!r}]={cfg!r} is not allowed: give TTFSConfig values")
        variants[name] = cfg.without_early_firing()
        variants[f"{name}+EF"] = cfg.with_early_firing(ef_start)
    return variants


def kernel_table(kernels: Mapping[str, TTFSConfig], layer_names: Sequence[str]) -> pd.DataFrame:
    """Each named kernel set's ``tau`` and ``td`` per spiking layer: columns ``(name, "tau")``, ``(name, "td")``."""
    if not kernels:
        raise ValueError("kernels is empty: give at least one named TTFSConfig")
    columns = {}
    for name, cfg in kernels.items():
        taus, tds = cfg.per_layer(len(layer_names))
        columns[(name, "tau")], columns[(name, "td")] = list(taus), list(tds)
    table = pd.DataFrame(columns, index=list(layer_names))
    table.index.name = "layer"
    return table


def parse_trainings(text: str) -> list[dict]:
    """The extra ANNs of the robustness table (notebook parameter ``robustness_trainings``).

    Variants are separated by ``;``; each changes some of ``epochs``, ``lr`` and ``seed``
    of the notebook's own training, as ``key:value`` pairs separated by spaces, e.g.
    ``"seed:1 epochs:2; seed:2 lr:0.1"`` (no ``=``, which a notebook's parameters cell
    cannot hold in a string). An empty string gives no extra ANN.
    """
    if not isinstance(text, str):
        raise ValueError(f"robustness_trainings={text!r} is not allowed: give a string such as 'seed:1; seed:2 lr:0.1'")
    variants = []
    for part in filter(None, (part.strip() for part in text.split(";"))):
        variant: dict = {}
        for pair in part.split():
            key, sep, value = pair.partition(":")
            if not sep or key not in TRAINING_KEYS:
                raise ValueError(f"robustness_trainings={text!r} is not allowed: {pair!r} is not key:value with a key "
                                 f"among {', '.join(TRAINING_KEYS)}")
            if key in variant:
                raise ValueError(f"robustness_trainings={text!r} is not allowed: {key} given twice in {part!r}")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"robustness_trainings={text!r} is not allowed: {value!r} is not a number") from None
            if key == "lr":
                if not math.isfinite(number) or number <= 0:
                    raise ValueError(f"robustness_trainings={text!r} is not allowed: lr must be > 0")
                variant[key] = number
            else:
                low = 1 if key == "epochs" else 0
                if not number.is_integer() or number < low:
                    raise ValueError(f"robustness_trainings={text!r} is not allowed: {key} must be an integer >= {low}")
                variant[key] = int(number)
        variants.append(variant)
    return variants


def _training_label(epochs: int, lr: float, seed: int) -> str:
    return f"{epochs} epochs, lr {lr:g}, seed {seed}"


def prepare_trainings(variants: Sequence[Mapping], epochs: int, lr: float, seed: int, **prepare_options) -> dict:
    """The notebook's own ANN, then one per variant (:func:`parse_trainings`), each trained (or loaded) and converted.

    ``prepare_options`` are the other arguments of :func:`t2fsnn.experiments.experiment.prepare`
    (dataset, model, data limits, conversion, devices). Returns ``{label: Experiment}``
    with labels such as ``"5 epochs, lr 0.05, seed 0"``; a variant equal to an earlier
    one is refused.
    """
    from t2fsnn.experiments.experiment import prepare

    trainings = [{"epochs": epochs, "lr": float(lr), "seed": seed}]
    for variant in variants:
        unknown = sorted(set(variant) - set(TRAINING_KEYS))
        if unknown:
            raise ValueError(f"variant {dict(variant)!r} is not allowed: it may change {', '.join(TRAINING_KEYS)} only")
        trainings.append({**trainings[0], **variant})
    labels = [_training_label(**t) for t in trainings]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"the robustness trainings repeat {', '.join(repeated)}: give variants that differ")
    return {label: prepare(epochs=t["epochs"], lr=t["lr"], seed=t["seed"], **prepare_options)
            for label, t in zip(labels, trainings)}


def robustness_table(experiments: Mapping, cfg: TTFSConfig, go_options: Mapping, output_options: Mapping,
                     tolerance: float = 0.5, batch_size: int = 256, device="cpu") -> pd.DataFrame:
    """Per ANN: its accuracy, and for each kernel set of ``METHODS`` the gap to it, the accuracy and the spikes.

    ``experiments`` are prepared networks (:func:`prepare_trainings`) with their GO
    images; ``cfg`` is the working point (its early firing included). The kernels are
    fitted on each network's GO images from ``cfg``'s kernels without early firing, as
    the ablation does: GO with ``go_options``, the output objective with
    ``output_options`` (options of :func:`t2fsnn.snn.optimization.optimize_kernels`), then
    evaluated on that network's test images with ``cfg``'s pipeline. Columns are pairs
    ``(method, measure)``; measures ``gap to ANN``, ``accuracy``, ``spikes``.
    """
    from t2fsnn.snn.optimization import optimize_kernels

    if not experiments:
        raise ValueError("experiments is empty: give at least one prepared network")
    if not isinstance(cfg, TTFSConfig):
        raise ValueError(f"cfg={cfg!r} is not allowed: give the working point as a TTFSConfig")
    start = cfg.without_early_firing()
    rows = {}
    for label, exp in experiments.items():
        if exp.x_go is None:
            raise ValueError(f"experiment {label!r} has no GO images: prepare it with with_go_images=True")
        fitted = {
            "T2FSNN": start,
            "T2FSNN+GO": optimize_kernels(exp.net, exp.x_go, start, **go_options)[0],
            "T2FSNN+output kernels": optimize_kernels(exp.net, exp.x_go, start, objective="output",
                                                      **output_options)[0],
        }
        row = {("ANN", "accuracy"): exp.ann_accuracy}
        for method, kernels in fitted.items():
            run = kernels if cfg.ef_start is None else kernels.with_early_firing(cfg.ef_start)
            point = measure(exp.net, exp.x_test, exp.y_test, run, tolerance, batch_size, device=device)
            row[(method, "gap to ANN")] = exp.ann_accuracy - point["accuracy"]
            row[(method, "accuracy")] = point["accuracy"]
            row[(method, "spikes")] = point["spikes"]
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "ANN training"
    return table


def robustness_summary(table: pd.DataFrame) -> dict:
    """Means over the ANNs of a :func:`robustness_table`: each method's gap to the ANN (``gap <method>``), on how many
    ANNs the output kernels' gap is at most GO's (``output not worse``, of ``networks``), and the change of the output
    kernels' mean spikes against GO's (``spike change (%)``)."""
    missing = [method for method in METHODS if (method, "gap to ANN") not in table.columns]
    if missing:
        raise ValueError(f"table without {', '.join(missing)} is not allowed: give a robustness_table")
    go, output = METHODS[1], METHODS[2]
    summary = {f"gap {method}": float(table[(method, "gap to ANN")].mean()) for method in METHODS}
    summary["output not worse"] = int((table[(output, "gap to ANN")] <= table[(go, "gap to ANN")] + 1e-9).sum())
    summary["networks"] = len(table)
    summary["spike change (%)"] = float(100 * (table[(output, "spikes")].mean() / table[(go, "spikes")].mean() - 1))
    return summary
