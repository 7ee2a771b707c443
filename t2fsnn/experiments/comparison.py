"""Comparing codings on one converted network: accuracy over time, latency, spikes, energy.

Every coding (rate, phase, burst and the T2FSNN variants) is run by the same function,
:func:`run_coding`, which records, step by step, the accuracy over a dataset and the
spikes sent so far. From these curves one definition of latency serves all codings
(:func:`latency_to_accuracy`): the number of steps after which the accuracy stays within
``tolerance`` percentage points of the accuracy at the end of the simulated horizon. We
call it the *settled* latency.

Table II of the paper reads the baselines (rate, phase, burst) at their settled latency,
but gives T2FSNN its *pipeline* latency, ``(L - 1) * s + T``, the whole inference, with
the whole spike count (the same numbers as Table I). :func:`comparison_table` does the
same by default (``t2fsnn_latency="pipeline"``) and reports the settled latency beside it.
Spikes are counted in the hidden layers, as the authors' code counts them; the input
layer's spikes are a column of their own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from t2fsnn import cache
from t2fsnn.experiments.ablation import ablation_configs
from t2fsnn.checks import check_int
from t2fsnn.snn.codings import BurstConfig, PhaseConfig, RateConfig
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.metrics import ENERGY_PARAMETERS, normalized_energy

__all__ = ["CodingRun", "T2FSNN_LATENCIES", "SPIKE_COUNTS", "run_coding", "run_codings", "latency_to_accuracy", "baseline_configs", "t2fsnn_variants",
           "comparison_table", "horizon_check", "accuracy_curves", "key_points", "with_paper", "T2FSNN_VARIANTS",
           "LATENCY_DEFINITIONS", "definition_key", "first_step_within", "latency_definitions_table"]

T2FSNN_VARIANTS = ("T2FSNN", "T2FSNN+GO", "T2FSNN+EF", "T2FSNN+GO+EF")
# which latency a T2FSNN row of Table II reports; which layers' spikes count
T2FSNN_LATENCIES = ("pipeline", "settled")
SPIKE_COUNTS = ("hidden", "all", "input")


def latency_to_accuracy(accuracy_over_time, tolerance: float = 0.1) -> int:
    """Steps after which the accuracy stays within ``tolerance`` points of its value at the last step.

    ``accuracy_over_time[k]`` is the accuracy (percent) after ``k + 1`` steps. Returns
    ``k + 1`` for the smallest ``k`` such that every later entry is at least
    ``final - tolerance``; 1 if the accuracy never falls below that.
    """
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be a number of percentage points >= 0")
    accuracy = np.asarray(accuracy_over_time, dtype=float)
    if accuracy.ndim != 1 or accuracy.size == 0:
        raise ValueError(f"accuracy_over_time of shape {accuracy.shape} is not allowed: give a non-empty 1-d curve")
    below = np.nonzero(accuracy < accuracy[-1] - tolerance - 1e-9)[0]
    return 1 if below.size == 0 else int(below[-1]) + 2


@dataclass
class CodingRun:
    """One coding's inference over a dataset, step by step.

    accuracy_over_time: [steps] accuracy (percent) after each step.
    spikes_over_time:   [steps, L] spikes per image sent by each spiking layer up to each step (cumulative).
    """

    name: str
    accuracy_over_time: np.ndarray
    spikes_over_time: np.ndarray
    num_images: int
    layer_names: list
    config: object = None
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.accuracy_over_time)

    @property
    def final_accuracy(self) -> float:
        return float(self.accuracy_over_time[-1])

    def latency(self, tolerance: float = 0.1) -> int:
        return latency_to_accuracy(self.accuracy_over_time, tolerance)

    def _index(self, step: int) -> int:
        if not isinstance(step, (int, np.integer)) or step < 1:
            raise ValueError(f"step={step!r} is not allowed: it must be an integer >= 1")
        return min(int(step), self.steps) - 1

    def accuracy_at(self, step: int) -> float:
        """Accuracy after ``step`` steps (the last value beyond the horizon)."""
        return float(self.accuracy_over_time[self._index(step)])

    def spikes_per_layer_at(self, step: int) -> np.ndarray:
        """[L] spikes per image of each spiking layer (input first) up to ``step``."""
        return self.spikes_over_time[self._index(step)]

    def spikes_at(self, step: int, count: str = "hidden") -> float:
        """Spikes per image up to ``step``: of the hidden layers (the authors' count), ``"all"`` or ``"input"``."""
        if count not in SPIKE_COUNTS:
            raise ValueError(f"count={count!r} is not allowed: choose one of {', '.join(SPIKE_COUNTS)}")
        per_layer = self.spikes_per_layer_at(step)
        chosen = {"hidden": per_layer[1:], "all": per_layer, "input": per_layer[:1]}[count]
        return float(chosen.sum())

    @property
    def is_pipeline(self) -> bool:
        """A T2FSNN run, whose horizon is its pipeline: the inference ends at the last step."""
        return isinstance(self.config, TTFSConfig)

    def summary(self, tolerance: float = 0.1, t2fsnn_latency: str = "pipeline") -> dict:
        """Accuracy and spikes at the reported latency, which is the settled one for clock-driven
        codings and, for T2FSNN with ``t2fsnn_latency="pipeline"``, the whole pipeline."""
        if t2fsnn_latency not in T2FSNN_LATENCIES:
            raise ValueError(f"t2fsnn_latency={t2fsnn_latency!r} is not allowed: choose one of "
                             f"{', '.join(T2FSNN_LATENCIES)}")
        settled = self.latency(tolerance)
        latency = self.steps if self.is_pipeline and t2fsnn_latency == "pipeline" else settled
        return {"accuracy": self.accuracy_at(latency), "latency": latency, "settled latency": settled,
                "spikes": self.spikes_at(latency), "input spikes": self.spikes_at(latency, "input"),
                "final accuracy": self.final_accuracy, "steps simulated": self.steps}


# Table II under each latency a reader may mean: the curve's settled step, the first step within a
# point (or a tenth) of the ANN, and the whole horizon simulated (T2FSNN: its pipeline)
LATENCY_DEFINITIONS = ("settled", "within 1 point of the ANN", "within 0.1 point of the ANN", "steps simulated")
_WITHIN = {"within 1 point of the ANN": 1.0, "within 0.1 point of the ANN": 0.1}


def definition_key(definition: str) -> str:
    """A short name for glue keys: ``settled``, ``within_1``, ``within_0_1``, ``simulated``."""
    if definition not in LATENCY_DEFINITIONS:
        raise ValueError(f"definition={definition!r} is not allowed: choose one of {', '.join(LATENCY_DEFINITIONS)}")
    if definition in _WITHIN:
        return "within_" + f"{_WITHIN[definition]:g}".replace(".", "_")
    return {"settled": "settled", "steps simulated": "simulated"}[definition]


def first_step_within(accuracy_over_time, target: float, points: float) -> Optional[int]:
    """The first step (1-based) whose accuracy is at least ``target - points``; ``None`` if none is."""
    if not (isinstance(points, (int, float)) and not isinstance(points, bool) and points >= 0):
        raise ValueError(f"points={points!r} is not allowed: it must be a number of percentage points >= 0")
    if not np.isfinite(target):
        raise ValueError(f"target={target!r} is not allowed: it must be a finite accuracy in percent")
    reached = np.nonzero(np.asarray(accuracy_over_time, dtype=float) >= target - points - 1e-9)[0]
    return int(reached[0]) + 1 if reached.size else None


def latency_definitions_table(runs: Mapping[str, "CodingRun"], ann_accuracy: float, tolerance: float = 0.1,
                              reference: str = "rate", count_input_spikes: bool = False) -> pd.DataFrame:
    """Each coding's latency, accuracy, spikes and energy under every one of ``LATENCY_DEFINITIONS``.

    Rows ``(coding, definition)``. The energy is normalized to ``reference`` under the same
    definition; a latency that is never reached (the curve never comes that close to the ANN)
    is missing, and so are the energies that need it.
    """
    if reference not in runs:
        raise ValueError(f"reference={reference!r} is not allowed: choose one of the runs {', '.join(runs)}")

    def latency(run, definition):
        if definition == "settled":
            return run.latency(tolerance)
        if definition == "steps simulated":
            return run.steps
        return first_step_within(run.accuracy_over_time, ann_accuracy, _WITHIN[definition])

    def spikes(run, step):
        return run.spikes_at(step) + (run.spikes_at(step, "input") if count_input_spikes else 0.0)

    rows = []
    for definition in LATENCY_DEFINITIONS:
        ref_step = latency(runs[reference], definition)
        for name, run in runs.items():
            step = latency(run, definition)
            row = {"coding": name, "definition": definition, "latency (steps)": step,
                   "accuracy (%)": run.accuracy_at(step) if step else None,
                   "spikes (10^6)": spikes(run, step) / 1e6 if step else None}
            for hardware, label in (("truenorth", "energy TrueNorth"), ("spinnaker", "energy SpiNNaker")):
                row[label] = normalized_energy(spikes(run, step), step, spikes(runs[reference], ref_step), ref_step,
                                               hardware) if step and ref_step else None
            rows.append(row)
    order = {name: i for i, name in enumerate(runs)}
    table = pd.DataFrame(rows).sort_values("coding", key=lambda c: c.map(order), kind="stable")
    return table.set_index(["coding", "definition"]).astype(float)


def _spikes_per_step(result) -> torch.Tensor:
    """[latency, L] spikes of each layer in each step, summed over the batch."""
    if "spikes_per_step" in result.extra:
        return result.extra["spikes_per_step"].cpu().double()
    if result.spike_times is None:
        raise ValueError("the simulation result records neither spikes per step nor spike times")
    columns = []
    for times in result.spike_times:
        fired = times[times >= 0].flatten().cpu()
        columns.append(torch.bincount(fired, minlength=result.latency)[:result.latency])
    return torch.stack(columns, 1).double()


def _source_version() -> str:
    from t2fsnn.snn import codings, conversion, kernels
    from t2fsnn.snn.codings import common, neurons
    from t2fsnn.snn.engines import result, ttfs

    return cache.source_digest(__file__, common.__file__, neurons.__file__, ttfs.__file__, result.__file__,
                               kernels.__file__, conversion.__file__, codings.__file__)


def _cache_path(net, images, labels, cfg, engine: str, cache_root, batch_size: int, device) -> Path:
    weights = cache.digest(*[v for _, v in sorted(net.state_dict().items())])
    spec = {"what": "coding-run", "config": type(cfg).__name__, "fields": asdict(cfg) if is_dataclass(cfg) else repr(cfg),
            "engine": engine, "batch_size": batch_size, "device": torch.device(device).type, "weights": weights, "images": cache.digest(images.float(), labels), "code": _source_version()}
    return Path(cache_root or cache.cache_dir()) / "codings" / f"{type(cfg).__name__}-{cache.cache_key(spec)}.pt"


@torch.no_grad()
def run_coding(net, images: torch.Tensor, labels: torch.Tensor, cfg, name: Optional[str] = None,
               batch_size: int = 256, device="cpu", engine: str = "exact", progress: bool = True,
               use_cache: bool = False, cache_root=None) -> CodingRun:
    """Simulate ``cfg``'s coding on ``images`` in batches; accuracy and cumulative spikes per step.

    With ``use_cache`` the curves are stored under a key of the network's weights, the
    images, the configuration and the simulation code, and loaded on a later identical call.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images and at least one image, got {len(images)} and {len(labels)}")
    check_int("batch_size", batch_size, 1)
    path = _cache_path(net, images, labels, cfg, engine, cache_root, batch_size, device) if use_cache else None
    stored = cache.load_entry(path, ("accuracy", "spikes", "num_images")) if path is not None else None
    if stored is not None:  # a damaged entry was removed and is recomputed
        return CodingRun(name=name or type(cfg).__name__, accuracy_over_time=stored["accuracy"].numpy(),
                         spikes_over_time=stored["spikes"].numpy(), num_images=int(stored["num_images"]),
                         layer_names=list(net.layer_names), config=cfg, extra={"from_cache": True})
    device = torch.device(device)
    home = net.device
    net.to(device)
    try:
        correct, spikes = _simulate_batches(net, images, labels, cfg, name, batch_size, device, engine, progress)
    finally:
        net.to(home)  # the caller's network stays where it was
    n = len(images)
    accuracy, cumulative = 100.0 * correct / n, spikes.cumsum(0) / n
    if path is not None:
        cache.atomic_save({"accuracy": accuracy, "spikes": cumulative, "num_images": n}, path)
    return CodingRun(
        name=name or type(cfg).__name__,
        accuracy_over_time=accuracy.numpy(),
        spikes_over_time=cumulative.numpy(),
        num_images=n,
        layer_names=list(net.layer_names),
        config=cfg,
        extra={"from_cache": False},
    )


def _simulate_batches(net, images, labels, cfg, name, batch_size, device, engine, progress):
    """Correct predictions and spikes per step, summed over the batches."""
    correct = spikes = None
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=name or type(cfg).__name__, disable=not progress, leave=False):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        result = net.simulate(x, cfg, engine=engine, progress=progress and len(starts) == 1)
        hits = (result.predictions_over_time == y[None]).sum(1).cpu().double()
        per_step = _spikes_per_step(result)
        correct = hits if correct is None else correct + hits
        spikes = per_step if spikes is None else spikes + per_step
    return correct, spikes


def run_codings(net, images: torch.Tensor, labels: torch.Tensor, configs: Mapping[str, object], **options) -> dict:
    """``run_coding`` for every named configuration; options as for ``run_coding``."""
    return {name: run_coding(net, images, labels, cfg, name=name, **options) for name, cfg in configs.items()}


def baseline_configs(rate_T: int, phase_T: int, burst_T: int, rate_input: str = "constant", seed: int = 0,
                     burst_bias: str = "per_cycle") -> dict:
    """Rate, phase and burst coding with the authors' settings, each simulated for its own horizon.

    ``burst_bias`` is when burst coding adds the bias: ``"every_step"`` (the authors' VGG-16
    code) or ``"per_cycle"``, once per input cycle (their MNIST script).
    """
    return {"rate": RateConfig(T=rate_T, input=rate_input, seed=seed), "phase": PhaseConfig(T=phase_T),
            "burst": BurstConfig(T=burst_T, bias_schedule=burst_bias)}


def t2fsnn_variants(cfg: TTFSConfig, optimized: Optional[TTFSConfig] = None,
                    ef_start: Optional[int] = None) -> dict:
    """The T2FSNN configurations of the ablation: baseline, +GO, +EF, +GO+EF.

    ``optimized`` is the result of ``net.optimize_kernels`` for ``cfg`` (the GO rows are
    left out when it is ``None``); early firing starts at ``ef_start``, by default half
    the time window as in the paper.
    """
    if optimized is not None:
        return ablation_configs(cfg, optimized, ef_start)
    return {"T2FSNN": cfg.without_early_firing(), "T2FSNN+EF": cfg.with_early_firing(ef_start)}


def comparison_table(runs: Mapping[str, CodingRun], reference: str = "rate", tolerance: float = 0.1,
                     t2fsnn_latency: str = "pipeline", count_input_spikes: bool = False) -> pd.DataFrame:
    """Table II: accuracy and spikes at each coding's latency, and energy normalized to ``reference``.

    Columns: ``accuracy (%)``, ``latency (steps)`` (settled for the baselines; for T2FSNN the
    pipeline by default, see :meth:`CodingRun.summary`), ``settled latency (steps)``,
    ``spikes (10^6)`` per image in the hidden layers, ``input spikes (10^6)``, and the
    normalized energy on TrueNorth and SpiNNaker, ``E = spikes/ref * E_dyn + latency/ref * E_sta``,
    from the hidden-layer spikes (all spikes with ``count_input_spikes``).
    """
    if reference not in runs:
        raise ValueError(f"reference={reference!r} is not allowed: choose one of the runs {', '.join(runs)}")
    summaries = {name: run.summary(tolerance, t2fsnn_latency) for name, run in runs.items()}

    def energy_spikes(s):
        return s["spikes"] + (s["input spikes"] if count_input_spikes else 0.0)

    ref = summaries[reference]
    rows = []
    for name, s in summaries.items():
        row = {"coding": name, "accuracy (%)": s["accuracy"], "latency (steps)": s["latency"],
               "settled latency (steps)": s["settled latency"], "spikes (10^6)": s["spikes"] / 1e6,
               "input spikes (10^6)": s["input spikes"] / 1e6}
        for hardware, label in (("truenorth", "energy TrueNorth"), ("spinnaker", "energy SpiNNaker")):
            row[label] = normalized_energy(energy_spikes(s), s["latency"], energy_spikes(ref), ref["latency"],
                                           hardware)
        row["steps simulated"] = s["steps simulated"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("coding")


def horizon_check(runs: Mapping[str, CodingRun], fraction: float = 0.2, tolerance: float = 0.2) -> pd.DataFrame:
    """Is each clock-driven coding's curve flat at the end of its horizon?

    Flat: over the last ``fraction`` of the simulated steps the accuracy moves by at most
    ``tolerance`` points, so a longer simulation would not change its reading. T2FSNN runs
    end with their pipeline and are not checked.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r} is not allowed: it must be in (0, 1]")
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be >= 0")
    rows = {}
    for name, run in runs.items():
        if run.is_pipeline:
            continue
        tail = run.accuracy_over_time[-max(1, int(round(fraction * run.steps))):]
        spread = float(tail.max() - tail.min())
        rows[name] = {"steps simulated": run.steps, f"accuracy range over the last {fraction:.0%} (points)": spread,
                      "flat": spread <= tolerance + 1e-9}
    frame = pd.DataFrame(rows).T
    frame.index.name = "coding"
    return frame


def accuracy_curves(runs: Mapping[str, CodingRun]) -> pd.DataFrame:
    """Accuracy (percent) after each step, one column per coding (NaN beyond a coding's horizon)."""
    steps = max(run.steps for run in runs.values())
    frame = pd.DataFrame(index=pd.RangeIndex(1, steps + 1, name="step"))
    for name, run in runs.items():
        column = np.full(steps, np.nan)
        column[:run.steps] = run.accuracy_over_time
        frame[name] = column
    return frame


def key_points(runs: Mapping[str, CodingRun], steps: Sequence[int]) -> pd.DataFrame:
    """Accuracy of each coding after each of ``steps`` (NaN beyond its horizon)."""
    rows = {}
    for name, run in runs.items():
        rows[name] = {s: (run.accuracy_at(s) if s <= run.steps else np.nan) for s in steps}
    frame = pd.DataFrame(rows).T
    frame.columns.name = "step"
    return frame


def with_paper(ours: pd.DataFrame, paper: pd.DataFrame, ours_label: str = "this reproduction",
               paper_label: str = "paper") -> pd.DataFrame:
    """Our table above the paper's, with a first index level naming the source; shared columns only."""
    columns = [c for c in ours.columns if c in paper.columns]
    return pd.concat({ours_label: ours[columns], paper_label: paper[columns]}, names=["source"])


ENERGY_HARDWARE = tuple(ENERGY_PARAMETERS)
