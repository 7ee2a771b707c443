"""Head-to-head against SpikingJelly's ``ann2snn`` (rate coding) on the same trained weights.

One trained ANN is converted twice: by :func:`t2fsnn.snn.conversion.convert` and by SpikingJelly's
``ann2snn.Converter`` with its ``RateCodingRecipe``. Both spiking networks run on the same
test images, in the same batches, on the same device; their timed batches alternate, so
other load on the machine falls on both alike.

* **t2fsnn** runs through :meth:`t2fsnn.snn.conversion.SpikingNetwork.simulate` (the exact engine),
  the call users make. One call gives the prediction at every step of the pipeline, so its
  time is that of the whole call.
* **SpikingJelly, single-step**: the loop of SpikingJelly's own conversion example. The image
  is the input current at every step, the output layer's values are summed over the steps,
  and the prediction after step ``t`` is the argmax of that sum. The wall time after each step
  is recorded, so the time to any step is read off the curve.
* **SpikingJelly, multi-step**: the same network in SpikingJelly's multi-step mode, which runs
  ``n`` steps in one call; it is timed for ``n`` = the steps the single-step run needs.

SpikingJelly's rate coding max-pools the spikes of a window at each step, which overstates the
window's rate. The comparison therefore uses the average-pooling twins of the networks
(``mnist_cnn_avg``, ``vgg_small_avg`` in :mod:`t2fsnn.models`), trained by the same recipes.

*Iso-accuracy*: the target is the trained ANN's accuracy on the same images minus a tolerance
(0.3 points). A run reaches it at the first step from which its accuracy stays at or above the
target until the last simulated step (:func:`iso_accuracy_step`). Spikes are counted in the
hidden layers; SpikingJelly's input is an analog current and sends no spikes.

SpikingJelly is an optional dependency: ``pip install -e '.[peers]'``.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from t2fsnn.checks import check_int, is_finite
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.conversion import SpikingNetwork, convert
from t2fsnn.training import resolve_device

__all__ = ["PeerMissingError", "PeerCurve", "PEER_MODELS", "import_spikingjelly", "iso_accuracy_step",
           "time_to_step", "summarize", "with_ratio", "curves_table", "spikingjelly_network", "compare",
           "head_to_head", "check_models", "recorded_head_to_head", "key_numbers", "plot_accuracy_against_time"]

SPIKINGJELLY_VERSION = "2.0.0"
INSTALL_COMMAND = "pip install -e '.[peers]'"
T2FSNN = "t2fsnn"
SPIKINGJELLY = "SpikingJelly"


class PeerMissingError(ImportError):
    """SpikingJelly, which the head-to-head needs, is not installed."""


def import_spikingjelly() -> SimpleNamespace:
    """SpikingJelly's ``ann2snn``, ``functional`` and ``neuron`` modules, or a :class:`PeerMissingError` naming the extra."""
    try:
        from spikingjelly.activation_based import ann2snn, functional, neuron
    except ImportError as error:
        raise PeerMissingError(
            f"the head-to-head needs SpikingJelly ({error}); install the optional extra 'peers': "
            f"{INSTALL_COMMAND} (spikingjelly=={SPIKINGJELLY_VERSION})"
        ) from error
    return SimpleNamespace(ann2snn=ann2snn, functional=functional, neuron=neuron)


# ----------------------------------------------------------------------------- iso-accuracy
def _curve(values, name: str) -> np.ndarray:
    curve = np.asarray(values, dtype=float)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"{name} of shape {curve.shape} is not allowed: give a non-empty 1-d curve")
    return curve


def iso_accuracy_step(accuracy_over_time, target: float) -> Optional[int]:
    """First step (1-based) from which the accuracy stays at or above ``target`` until the last step.

    ``accuracy_over_time[k]`` is the accuracy (percent) after ``k + 1`` steps. ``None`` when the
    last step is below ``target``: the run does not reach it within the steps simulated.
    """
    if not is_finite(target):
        raise ValueError(f"target={target!r} is not allowed: it must be a finite accuracy in percent")
    accuracy = _curve(accuracy_over_time, "accuracy_over_time")
    below = np.nonzero(accuracy < target - 1e-9)[0]
    if below.size == 0:
        return 1
    return None if below[-1] == accuracy.size - 1 else int(below[-1]) + 2


def time_to_step(seconds_over_time, step: Optional[int]) -> float:
    """Wall seconds after ``step`` steps (1-based) of a curve; NaN for ``None`` (target not reached)."""
    seconds = _curve(seconds_over_time, "seconds_over_time")
    if step is None:
        return math.nan
    check_int("step", step, 1)
    if step > seconds.size:
        raise ValueError(f"step={step!r} is not allowed: the curve has {seconds.size} steps")
    return float(seconds[step - 1])


@dataclass
class PeerCurve:
    """One simulator's run over the test images.

    accuracy_over_time: [steps] accuracy (percent) after each step.
    seconds_over_time:  [steps] wall seconds, all images together, until the predictions after each
                        step are known (t2fsnn: the whole call at every step).
    spikes_over_time:   [steps] hidden-layer spikes per image sent up to each step (t2fsnn: the whole run).
    whole_run:          the time is that of one call that gives every step (t2fsnn): the run is read at
                        its last step when it reaches the target.
    """

    simulator: str
    method: str
    accuracy_over_time: np.ndarray
    seconds_over_time: np.ndarray
    spikes_over_time: np.ndarray
    images: int
    whole_run: bool = False

    @property
    def steps(self) -> int:
        return len(self.accuracy_over_time)


SUMMARY_COLUMNS = ("model", "device", "images", "simulator", "method", "steps simulated", "ANN accuracy (%)",
                   "target (%)", "accuracy at last step (%)", "steps to target", "accuracy at target (%)",
                   "ms per image to target", "hidden spikes per image to target", "time / t2fsnn time")


def summarize(curves: Sequence[PeerCurve], ann_accuracy: float, tolerance: float = 0.3, model: str = "",
              device: str = "") -> pd.DataFrame:
    """One row per run: when it comes within ``tolerance`` points of ``ann_accuracy``, at what time and spikes.

    ``time / t2fsnn time`` divides each run's time to the target by that of the fastest t2fsnn run
    that reaches it (NaN where either does not reach it).
    """
    if not is_finite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be a number of percentage points >= 0")
    target = float(ann_accuracy) - float(tolerance)
    rows = []
    for curve in curves:
        step = iso_accuracy_step(curve.accuracy_over_time, target)
        if step is not None and curve.whole_run:
            step = curve.steps
        seconds = time_to_step(curve.seconds_over_time, step)
        rows.append({
            "model": model, "device": device, "images": curve.images, "simulator": curve.simulator,
            "method": curve.method, "steps simulated": curve.steps, "ANN accuracy (%)": float(ann_accuracy),
            "target (%)": target, "accuracy at last step (%)": float(curve.accuracy_over_time[-1]),
            "steps to target": step if step is not None else math.nan,
            "accuracy at target (%)": float(curve.accuracy_over_time[step - 1]) if step else math.nan,
            "ms per image to target": 1000.0 * seconds / curve.images,
            "hidden spikes per image to target": float(curve.spikes_over_time[step - 1]) if step else math.nan,
        })
    return with_ratio(pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-1]))


def with_ratio(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``time / t2fsnn time``: each row's time to the target over the fastest t2fsnn run's."""
    ours = table.loc[(table["simulator"] == T2FSNN) & table["ms per image to target"].notna(), "ms per image to target"]
    reference = ours.min() if len(ours) else math.nan
    return table.assign(**{"time / t2fsnn time": table["ms per image to target"] / reference})


def curves_table(curves: Sequence[PeerCurve], model: str = "") -> pd.DataFrame:
    """Long table of every curve: accuracy, cumulative wall time and spikes per image after each step."""
    frames = [pd.DataFrame({
        "model": model, "simulator": c.simulator, "method": c.method, "step": np.arange(1, c.steps + 1),
        "accuracy (%)": c.accuracy_over_time, "ms per image": 1000.0 * np.asarray(c.seconds_over_time) / c.images,
        "hidden spikes per image": c.spikes_over_time,
    }) for c in curves]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ----------------------------------------------------------------------------- the two simulators
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def spikingjelly_network(ann: nn.Module, calibration: torch.Tensor, mode: str = "99.9%", batch_size: int = 100,
                         device="cpu") -> nn.Module:
    """SpikingJelly's rate-coded conversion of ``ann`` (a copy): ``ann2snn.Converter`` with ``RateCodingRecipe``.

    The recipe folds batch-norm, records each ReLU's activations on ``calibration`` in batches of
    ``batch_size`` (the ``mode`` statistic, a running average over the batches) and replaces the ReLU
    by integrate-and-fire neurons with reset by subtraction, scaled by that statistic.
    """
    sj = import_spikingjelly()
    dev = resolve_device(device)
    batches = [calibration[start:start + batch_size].to(dev) for start in range(0, len(calibration), batch_size)]
    recipe = sj.ann2snn.RateCodingRecipe(dataloader=batches, mode=mode)
    return sj.ann2snn.Converter(recipe=recipe, device=dev).convert(copy.deepcopy(ann).to(dev).eval()).eval()


@torch.no_grad()
def _timed(fn, device: torch.device):
    """``(fn(), wall seconds)``, CUDA synchronised around the call."""
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


@torch.no_grad()
def _spikingjelly_single_step(snn, functional, x: torch.Tensor, steps: int, device: torch.device):
    """Predictions [steps, B] and wall seconds after each step [steps] of SpikingJelly's step loop."""
    predictions = torch.empty((steps, len(x)), dtype=torch.long, device=x.device)
    stamps = np.empty(steps)
    _sync(device)
    start = time.perf_counter()
    functional.reset_net(snn)
    total = None
    for t in range(steps):
        out = snn(x)
        total = out.clone() if total is None else total.add_(out)
        predictions[t] = total.argmax(1)
        _sync(device)
        stamps[t] = time.perf_counter() - start
    return predictions, stamps


@torch.no_grad()
def _spikingjelly_multi_step(snn, functional, x: torch.Tensor, steps: int, device: torch.device,
                             samples_per_call: int):
    """Predictions [B] after ``steps`` steps in multi-step mode, and the wall seconds; calls hold at most
    ``samples_per_call`` image-steps (the batch is split to fit)."""
    chunk = max(1, samples_per_call // steps)
    predictions = []
    _sync(device)
    start = time.perf_counter()
    for first in range(0, len(x), chunk):
        part = x[first:first + chunk]
        functional.reset_net(snn)
        out = snn(part.unsqueeze(0).expand((steps,) + tuple(part.shape)))
        predictions.append(out.sum(0).argmax(1))
    predictions = torch.cat(predictions)
    _sync(device)
    return predictions, time.perf_counter() - start


@torch.no_grad()
def _spikingjelly_spikes(snn, sj, x: torch.Tensor, steps: int) -> torch.Tensor:
    """[steps] hidden spikes of the batch in each step (an untimed run with hooks on every neuron layer)."""
    per_step = torch.zeros(steps, dtype=torch.float64, device=x.device)
    clock = {"t": 0}

    def count(module, inputs, output):
        per_step[clock["t"]] += output.detach().sum().double()

    handles = [m.register_forward_hook(count) for m in snn.modules() if isinstance(m, sj.neuron.BaseNode)]
    try:
        sj.functional.reset_net(snn)
        for t in range(steps):
            clock["t"] = t
            snn(x)
    finally:
        for handle in handles:
            handle.remove()
    return per_step


def _t2fsnn_label(cfg: TTFSConfig) -> str:
    label = f"exact, T={cfg.T}, tau={cfg.tau:g}"
    return label + (f", early firing at {cfg.ef_start}" if cfg.ef_start is not None else "")


def _check_compare(images, labels, steps, batch_size, tolerance, samples_per_call, t2fsnn_configs):
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError("images must be a non-empty tensor [N, C, H, W] of floats in [0, 1]")
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(images),):
        raise ValueError(f"labels must be a tensor [N] with N = {len(images)} (one label per image)")
    check_int("steps", steps, 1, "the number of SpikingJelly time steps")
    check_int("batch_size", batch_size, 1)
    check_int("samples_per_call", samples_per_call, 1)
    if not is_finite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be a number of percentage points >= 0")
    if not t2fsnn_configs or not all(isinstance(cfg, TTFSConfig) for cfg in t2fsnn_configs):
        raise ValueError("t2fsnn_configs must be a non-empty list of TTFSConfig")


@torch.no_grad()
def compare(ann: nn.Module, calibration: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
            t2fsnn_configs: Sequence[TTFSConfig], steps: int, batch_size: int = 500, device="auto",
            tolerance: float = 0.3, percentile: float = 99.9, sj_mode: str = "99.9%", multi_step: bool = True,
            samples_per_call: int = 8192, repeats: int = 1, spikes_to_end: bool = False, model: str = "",
            progress: bool = True):
    """Convert ``ann`` with t2fsnn and SpikingJelly and run both on ``images``.

    Returns ``(summary, curves)``: :func:`summarize`'s table, with a row for the trained ANN's own
    forward pass, and :func:`curves_table`'s long table. SpikingJelly runs ``steps`` steps; its
    multi-step run (``multi_step``) is timed for the steps its single-step run needs to reach the
    target (or for ``steps`` if it does not). Every batch is timed ``repeats`` times, the
    simulators alternating, and the fastest repeat of each counts. SpikingJelly's spikes are counted
    in a run of their own, up to the target (``spikes_to_end``: up to the last step).
    """
    _check_compare(images, labels, steps, batch_size, tolerance, samples_per_call, t2fsnn_configs)
    check_int("repeats", repeats, 1)
    sj = import_spikingjelly()
    dev = resolve_device(device)
    ann = copy.deepcopy(ann).float().eval().to(dev)
    net: SpikingNetwork = convert(ann, calibration.to(dev), percentile=percentile).to(dev).eval()
    snn = spikingjelly_network(ann, calibration, mode=sj_mode, device=dev)
    batches = [(images[s:s + batch_size].to(dev), labels[s:s + batch_size].to(dev))
               for s in range(0, len(images), batch_size)]
    n = len(images)

    # warm-up on the first batch: allocator, kernels and tables
    first = batches[0][0]
    ann(first)
    for cfg in t2fsnn_configs:
        net.simulate(first, cfg, engine="exact")
    _spikingjelly_single_step(snn, sj.functional, first, min(steps, 2), dev)

    ann_seconds, ann_correct = 0.0, 0
    ours = [dict(seconds=0.0, correct=None, spikes=0.0) for _ in t2fsnn_configs]
    sj_correct = torch.zeros(steps, dtype=torch.long, device=dev)
    sj_stamps = np.zeros(steps)
    for index, (x, y) in enumerate(batches):
        # each batch timed ``repeats`` times, simulators alternating; the fastest repeat counts
        best_ann, best_ours, best_sj = math.inf, [math.inf] * len(ours), np.full(steps, math.inf)
        for _ in range(repeats):
            logits, seconds = _timed(lambda: ann(x), dev)
            best_ann = min(best_ann, seconds)
            results = []
            for position, cfg in enumerate(t2fsnn_configs):
                result, seconds = _timed(lambda: net.simulate(x, cfg, engine="exact"), dev)
                best_ours[position] = min(best_ours[position], seconds)
                results.append(result)
            predictions, stamps = _spikingjelly_single_step(snn, sj.functional, x, steps, dev)
            best_sj = np.minimum(best_sj, stamps)
        ann_seconds += best_ann
        ann_correct += int((logits.argmax(1) == y).sum())
        for run, result, seconds in zip(ours, results, best_ours):
            run["seconds"] += seconds
            correct = (result.predictions_over_time == y[None]).sum(1)
            run["correct"] = correct if run["correct"] is None else run["correct"] + correct
            run["spikes"] += float(result.hidden_spikes.double().sum())
        sj_correct += (predictions == y[None]).sum(1)
        sj_stamps += best_sj
        if progress:
            print(f"{model}: batch {index + 1}/{len(batches)} timed", flush=True)

    curves = []
    for cfg, run in zip(t2fsnn_configs, ours):
        accuracy = 100.0 * run["correct"].cpu().double().numpy() / n
        curves.append(PeerCurve(T2FSNN, _t2fsnn_label(cfg), accuracy, np.full(len(accuracy), run["seconds"]),
                                np.full(len(accuracy), run["spikes"] / n), n, whole_run=True))
    ann_accuracy = 100.0 * ann_correct / n
    target = ann_accuracy - tolerance
    sj_accuracy = 100.0 * sj_correct.cpu().double().numpy() / n
    # spikes are counted up to the target (all steps if it is not reached); NaN after it
    reached = iso_accuracy_step(sj_accuracy, target)
    counted = steps if reached is None or spikes_to_end else reached
    sj_spikes = np.full(steps, math.nan)
    sj_spikes[:counted] = np.cumsum(sum(_spikingjelly_spikes(snn, sj, x, counted) for x, _ in batches).cpu().numpy()) / n
    curves.append(PeerCurve(SPIKINGJELLY, "rate coding, single-step", sj_accuracy, sj_stamps, sj_spikes, n))
    device_name = _device_name(dev)
    ann_row = {"model": model, "device": device_name, "images": n, "simulator": "ANN",
               "method": "trained ANN, one forward pass", "ANN accuracy (%)": ann_accuracy, "target (%)": target,
               "accuracy at last step (%)": ann_accuracy, "ms per image to target": 1000.0 * ann_seconds / n}
    rows = [pd.DataFrame([ann_row]), summarize(curves, ann_accuracy, tolerance, model, device_name)]

    if multi_step:
        n_steps = steps if reached is None else reached
        multi = copy.deepcopy(snn)
        sj.functional.set_step_mode(multi, "m")
        _spikingjelly_multi_step(multi, sj.functional, first, n_steps, dev, samples_per_call)  # warm-up
        seconds, correct = 0.0, 0
        for x, y in batches:
            runs = [_spikingjelly_multi_step(multi, sj.functional, x, n_steps, dev, samples_per_call)
                    for _ in range(repeats)]
            seconds += min(elapsed for _, elapsed in runs)
            correct += int((runs[0][0] == y).sum())
        accuracy = 100.0 * correct / n
        within = accuracy >= target - 1e-9
        rows.append(pd.DataFrame([{
            "model": model, "device": device_name, "images": n, "simulator": SPIKINGJELLY,
            "method": f"rate coding, multi-step ({n_steps} steps in one call)", "steps simulated": n_steps,
            "ANN accuracy (%)": ann_accuracy, "target (%)": target, "accuracy at last step (%)": accuracy,
            "steps to target": n_steps if within else math.nan, "accuracy at target (%)": accuracy if within else math.nan,
            "ms per image to target": 1000.0 * seconds / n if within else math.nan,
            "hidden spikes per image to target": float(curves[-1].spikes_over_time[n_steps - 1]) if within else math.nan,
        }]))
    summary = with_ratio(pd.concat(rows, ignore_index=True)[list(SUMMARY_COLUMNS)])
    return summary, curves_table(curves, model)


def _device_name(device: torch.device) -> str:
    from t2fsnn.experiments.benchmark import _device_name as name

    return name(device)


# ----------------------------------------------------------------------------- the networks of the book
@dataclass(frozen=True)
class PeerModel:
    """An average-pooling twin, the recipe that trains it (the full profile's for its original) and the runs."""

    dataset: str
    training: dict
    t2fsnn_configs: tuple
    steps: int  # SpikingJelly's default horizon


PEER_MODELS = {
    "mnist_cnn_avg": PeerModel(
        "mnist", dict(epochs=10, lr=0.05, batch_size=64, precision="fp32"),
        (TTFSConfig(T=20, tau=5.0),), steps=300),
    "vgg_small_avg": PeerModel(
        "cifar10", dict(epochs=30, lr=0.05, batch_size=128, precision="bf16", jpeg_quality=75),
        (TTFSConfig(T=80, tau=20.0), TTFSConfig(T=80, tau=20.0, ef_start=40)), steps=500),
}
CALIBRATION_IMAGES = 5000  # the full profile's calibration_limit


def check_models(names: Sequence[str]) -> list[str]:
    """``names`` if every one is a network of the head-to-head, else a ``ValueError`` listing them."""
    names = list(names)
    if not names:
        raise ValueError(f"no model given: choose from {', '.join(PEER_MODELS)}")
    for name in names:
        if name not in PEER_MODELS:
            raise ValueError(f"model {name!r} is not allowed: choose from {', '.join(PEER_MODELS)} "
                             f"(average-pooling twins: SpikingJelly's rate coding does not handle max-pooling)")
    return names


def head_to_head(model_names: Sequence[str] = ("mnist_cnn_avg",), test_images: Optional[int] = 2000,
                 device="auto", steps: Optional[int] = None, batch_size: int = 500, tolerance: float = 0.3,
                 early_firing: bool = True, multi_step: bool = True, repeats: int = 1, train_device="cpu",
                 progress: bool = True):
    """:func:`compare` on each trained twin (trained, or loaded from the cache, with its recipe).

    ``test_images``: the first that many test images (``None``: all). ``steps``: SpikingJelly's
    horizon (``None``: the model's default). ``repeats``: timings per batch, the fastest counts.
    ``early_firing=False`` leaves out the t2fsnn runs with
    early firing. Returns ``(summary, curves)`` for all models together.
    """
    from t2fsnn import data, training

    names = check_models(model_names)
    if test_images is not None:
        check_int("test_images", test_images, 1)
    if steps is not None:
        check_int("steps", steps, 1, "the number of SpikingJelly time steps")
    check_int("batch_size", batch_size, 1)
    check_int("repeats", repeats, 1)
    resolve_device(device)
    import_spikingjelly()  # before any training: fail at once without it
    summaries, curves = [], []
    for name in names:
        spec = PEER_MODELS[name]
        trained = training.train_or_load(dataset=spec.dataset, model=name, seed=0, device=train_device,
                                         progress=progress, **spec.training)
        calibration, _ = data.to_tensors(data.load(spec.dataset, "train"), CALIBRATION_IMAGES)
        images, labels = data.to_tensors(data.load(spec.dataset, "test"), test_images)
        configs = [cfg for cfg in spec.t2fsnn_configs if early_firing or cfg.ef_start is None]
        summary, curve = compare(trained.model, calibration, images, labels, configs, steps or spec.steps,
                                 batch_size=batch_size, device=device, tolerance=tolerance, multi_step=multi_step,
                                 repeats=repeats, model=name, progress=progress)
        summaries.append(summary)
        curves.append(curve)
    return pd.concat(summaries, ignore_index=True), pd.concat(curves, ignore_index=True)


def recorded_head_to_head(folder=None) -> list[tuple[dict, pd.DataFrame, Optional[pd.DataFrame]]]:
    """Head-to-head runs recorded in ``benchmarks/results``: the entries of ``runs.yml`` with ``kind: peers``,
    each as ``(entry, summary, curves)``; ``curves`` is read from the entry's ``curves`` file (``None`` if absent)."""
    from pathlib import Path

    from t2fsnn.experiments.benchmark import recorded_runs

    folder = Path(folder) if folder else Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    runs = []
    for run, summary in recorded_runs(folder):
        if run.get("kind") != "peers":
            continue
        path = folder / run["curves"] if run.get("curves") else None
        runs.append((run, summary, pd.read_csv(path) if path is not None and path.exists() else None))
    return runs


def key_numbers(summary: pd.DataFrame, model: str) -> dict:
    """The numbers a text quotes for ``model``: the ANN's accuracy and time per image, the fastest t2fsnn run
    and the fastest SpikingJelly mode at the target (time per image, steps, spikes, ANN passes) and their
    time ratio; NaN where absent."""
    rows = summary[summary["model"] == model]
    ann = rows.loc[rows["simulator"] == "ANN", "ANN accuracy (%)"]

    def fastest(simulator: str, contains: str = ""):
        runs = rows[(rows["simulator"] == simulator) & rows["method"].str.contains(contains, regex=False)
                    & rows["ms per image to target"].notna()]
        return runs.loc[runs["ms per image to target"].idxmin()] if len(runs) else None

    ours, theirs = fastest(T2FSNN), fastest(SPIKINGJELLY)
    single, multi = fastest(SPIKINGJELLY, "single-step"), fastest(SPIKINGJELLY, "multi-step")

    def value(row, column):
        return float(row[column]) if row is not None else math.nan

    ann_ms = rows.loc[rows["simulator"] == "ANN", "ms per image to target"]
    ann_ms = float(ann_ms.iloc[0]) if len(ann_ms) else math.nan
    return {
        "ann": float(ann.iloc[0]) if len(ann) else math.nan,
        "ann_ms": ann_ms,
        "t2fsnn_passes": value(ours, "ms per image to target") / ann_ms,
        "sj_passes_per_step": value(theirs, "ms per image to target") / value(theirs, "steps to target") / ann_ms,
        "t2fsnn_ms": value(ours, "ms per image to target"),
        "t2fsnn_spikes": value(ours, "hidden spikes per image to target"),
        "sj_ms": value(theirs, "ms per image to target"),
        "sj_steps": value(theirs, "steps to target"),
        "sj_spikes": value(theirs, "hidden spikes per image to target"),
        "ratio": value(theirs, "time / t2fsnn time"),
        "ratio_single": value(single, "time / t2fsnn time"),
        "ratio_multi": value(multi, "time / t2fsnn time"),
    }


def plot_accuracy_against_time(summary: pd.DataFrame, curves: pd.DataFrame):
    """Per model: accuracy against wall time per image (log scale) of every run, the target dashed."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(summary["model"]))
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.8), constrained_layout=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        rows, lines = summary[summary["model"] == name], curves[curves["model"] == name]
        target = float(rows["target (%)"].iloc[0])
        for method, line in lines[lines["simulator"] == SPIKINGJELLY].groupby("method", sort=False):
            ax.plot(line["ms per image"], line["accuracy (%)"], color="tab:orange", label=f"{SPIKINGJELLY}, {method}")
        for _, row in rows.iterrows():
            if row["simulator"] == "ANN":
                style, accuracy, label = dict(marker="^", color="black"), row["accuracy at last step (%)"], row["method"]
            else:
                accuracy, label = row["accuracy at target (%)"], f"{row['simulator']}, {row['method']}: at the target"
                if row["simulator"] == T2FSNN:
                    style = dict(marker="o", color="tab:cyan" if "early" in row["method"] else "tab:blue")
                else:
                    style = dict(marker="s" if "multi-step" in row["method"] else "D", color="tab:red"
                                 if "multi-step" in row["method"] else "tab:orange")
            if not math.isnan(row["ms per image to target"]):
                ax.plot([row["ms per image to target"]], [accuracy], linestyle="none", label=label, **style)
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target: ANN - {float(rows['ANN accuracy (%)'].iloc[0]) - target:g} points")
        ax.set_xscale("log")
        ax.set_ylim(target - 3.0, float(rows["ANN accuracy (%)"].iloc[0]) + 0.7)
        ax.set_xlabel("wall time per image (ms)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{name}, {rows['device'].iloc[0]}", fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig
