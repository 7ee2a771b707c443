"""Where T2FSNN's coding error comes from: transmitted values, tau trade-off, accuracy breakdown.

The functions here take a converted network or plain values and return tensors or
``pandas.DataFrame`` tables that the book's primer and spike-time chapters show.

A neuron with potential ``u`` that fires at local step ``k`` transmits the threshold
it crossed, ``theta0 * eps(k)`` (Eq. 8). With real-valued ("exact") spike times
instead of integer steps, it would transmit ``u`` itself, as long as it fires inside
the window: ``u`` at least the last threshold ``theta0 * eps(T - 1)``; potentials
above the first threshold ``theta0 * eps(0)`` fire at step 0 and saturate in both
cases. The difference between the two is the rounding of spike times.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.kernels import encode, first_crossing, precision_error, representable_range, threshold_table

__all__ = [
    "transmit",
    "coding_table",
    "tau_tradeoff",
    "quantized_forward",
    "loss_breakdown",
    "evaluation_table",
    "representative_neurons",
    "differing_neurons",
    "settling_step",
]


def _check_window(T, tau, td, theta0=1.0) -> None:
    TTFSConfig(T=T, tau=tau, td=td, theta0=theta0)  # raises ValueError naming the bad value


def transmit(u, T: int, tau: float, td: float = 0.0, theta0: float = 1.0, rounding: bool = True) -> torch.Tensor:
    """The value a neuron with potential ``u`` passes on after one fire phase of ``T`` steps.

    ``rounding=True``: the decoded threshold of its integer spike step (what the engines
    transmit). ``rounding=False``: exact spike times, so ``u`` itself, clipped at the first
    threshold; in both cases 0 when ``u`` stays below the last threshold of the window.
    """
    _check_window(T, tau, td, theta0)
    u = u if isinstance(u, torch.Tensor) else torch.as_tensor(u, dtype=torch.float64)
    table = threshold_table(T, tau, td, theta0, dtype=u.dtype, device=u.device)
    if rounding:
        steps = first_crossing(u, table)
        values = torch.cat([table, torch.zeros(1, dtype=u.dtype, device=u.device)])
        return values[steps]
    fires = u >= table[-1]
    return torch.where(fires, u.clamp(max=table[0]), torch.zeros_like(u))


def coding_table(values, T: int, tau: float, td: float = 0.0, theta0: float = 1.0) -> pd.DataFrame:
    """Encoding (Eq. 7) and decoding (Eq. 8) of each value, with the error and its bound.

    Columns: ``value``, ``spike step`` (local, -1 = no spike), ``decoded``, ``error``
    (``value - decoded``), ``bound`` (the precision error ``x_hat (e^{1/tau} - 1)``; for
    values that do not fire, the error is the value itself and no bound applies).
    """
    _check_window(T, tau, td, theta0)
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    steps = encode(x, T, tau, td, theta0)
    decoded = transmit(x, T, tau, td, theta0)
    bound = torch.where(steps >= 0, precision_error(decoded, tau), torch.full_like(decoded, float("nan")))
    return pd.DataFrame({
        "value": x.numpy(), "spike step": steps.numpy(), "decoded": decoded.numpy(),
        "error": (x - decoded).numpy(), "bound": bound.numpy(),
    })


def tau_tradeoff(values, T: int, taus: Sequence[float], td: float = 0.0, theta0: float = 1.0,
                 max_values: int | None = 1_000_000) -> pd.DataFrame:
    """The precision / small-value trade-off of Section III-B for a set of values, one row per ``tau``.

    Columns: ``tau``; ``z_min`` and ``z_max``, the paper's representable range
    ``exp(-(T - td)/tau) .. exp(td/tau)``; ``smallest sent``, the last threshold of the
    window ``theta0 * eps(T-1)``; ``precision bound at 1`` (``e^{1/tau} - 1``);
    ``mean error`` (mean ``|x - x_hat|`` over all values), split into ``precision part``
    (values that fire) and ``lost part`` (values below the smallest sent, which do not
    fire), both as contributions to the mean; ``lost (%)`` and ``saturated (%)``, the
    share of values that do not fire or exceed the first threshold. More than
    ``max_values`` values are thinned to an evenly strided sample of about that size.
    """
    if len(taus) == 0:
        raise ValueError("taus=[] is not allowed: give at least one time constant > 0")
    for tau in taus:
        _check_window(T, tau, td, theta0)
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    if x.numel() == 0:
        raise ValueError("values is empty: give at least one value to encode")
    if max_values is not None:
        if not isinstance(max_values, int) or max_values < 1:
            raise ValueError(f"max_values={max_values!r} is not allowed: give None or an integer >= 1")
        if x.numel() > max_values:
            x = x[:: -(-x.numel() // max_values)]
    rows = []
    for tau in taus:
        table = threshold_table(T, tau, td, theta0, dtype=torch.float64)
        decoded = transmit(x, T, tau, td, theta0)
        error = (x - decoded).abs()
        fired = x >= table[-1]
        z_min, z_max = representable_range(T, tau, td)
        rows.append({
            "tau": float(tau), "z_min": float(z_min), "z_max": float(z_max), "smallest sent": float(table[-1]),
            "precision bound at 1": math.expm1(1.0 / tau),
            "mean error": float(error.mean()),
            "precision part": float(torch.where(fired, error, torch.zeros_like(error)).mean()),
            "lost part": float(torch.where(fired, torch.zeros_like(error), error).mean()),
            "lost (%)": 100.0 * float(((x > 0) & ~fired).double().mean()),
            "saturated (%)": 100.0 * float((x > table[0]).double().mean()),
        })
    return pd.DataFrame(rows)


@torch.no_grad()
def quantized_forward(net, x: torch.Tensor, cfg: TTFSConfig, input: bool = True, hidden: bool = True,
                      rounding: bool = True) -> torch.Tensor:
    """Logits of the converted ANN with TTFS transmission in chosen layers (no early firing).

    ``input``: the input layer sends ``transmit(x)`` instead of the pixels. ``hidden``:
    every hidden layer sends ``transmit(potential)`` instead of its clipped ReLU
    activation. ``rounding`` chooses integer (``True``) or exact spike times in the
    hidden layers (the input layer always uses integer steps). With
    ``input=hidden=rounding=True`` this is exactly what the engines compute without
    early firing: layer by layer, each potential is the synapse applied to the decoded
    values of the previous layer.
    """
    L = net.num_spiking_layers
    taus, tds = cfg.per_layer(L)
    dtype = next(net.parameters()).dtype
    a = x.to(dtype)
    if input:
        a = transmit(a, cfg.T, taus[0], tds[0], cfg.theta0)
    for l, block in enumerate(net.blocks[:-1], start=1):
        u = block(a)
        a = transmit(u, cfg.T, taus[l], tds[l], cfg.theta0, rounding) if hidden else torch.relu(u).clamp(max=1.0)
    return net.blocks[-1](a)


def _predict(forward, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([forward(images[i:i + batch_size]).argmax(1).cpu() for i in range(0, len(images), batch_size)])


@torch.no_grad()
def loss_breakdown(net, images: torch.Tensor, labels: torch.Tensor, cfg: TTFSConfig, batch_size: int = 500,
                   engine: str = "exact", evaluations: Sequence = ()) -> pd.DataFrame:
    """Accuracy as each source of T2FSNN's coding error is added, one at a time.

    Rows (cumulative):

    1. ``ANN``: the converted ANN (activations clipped to [0, 1]);
    2. ``+ input encoding``: the same ANN fed with the TTFS-encoded-then-decoded image;
    3. ``+ hidden layers, exact spike times``: hidden layers send their potential
       (real-valued spike times): values too small to fire inside the window are lost,
       values above the first threshold saturate;
    4. ``+ integer spike steps (T2FSNN)``: the spiking network itself, simulated
       without early firing;
    5. ``+ early firing (T2FSNN+EF)``: only when ``cfg.ef_start < T``.

    Columns: ``accuracy`` (%), ``change`` (percentage points against the row above),
    ``agreement with ANN`` (% of images with the ANN's predicted class).

    ``evaluations``: ``t2fsnn.snn.metrics.Evaluation`` results of ``images`` already computed
    (same images, same order); a spiking stage whose configuration one of them simulated
    takes its predictions instead of simulating again.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images and at least one image, got {len(images)} and {len(labels)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an integer >= 1")
    if engine not in ("exact", "clock"):
        raise ValueError(f"engine={engine!r} is not allowed: choose 'exact' or 'clock'")
    cfg.per_layer(net.num_spiking_layers)
    labels = labels.cpu()
    baseline = dataclasses.replace(cfg, ef_start=None)

    def spiking(run_cfg):
        return lambda x: net.simulate(x, run_cfg, engine=engine).output_potential

    # (name, forward, the configuration simulated: None for the ANN stages)
    stages = [
        ("ANN", lambda x: net.ann_forward(x), None),
        ("+ input encoding", lambda x: quantized_forward(net, x, cfg, input=True, hidden=False), None),
        ("+ hidden layers, exact spike times", lambda x: quantized_forward(net, x, cfg, rounding=False), None),
        ("+ integer spike steps (T2FSNN)", spiking(baseline), baseline),
    ]
    if cfg.ef_start is not None and cfg.ef_start < cfg.T:
        stages.append((f"+ early firing at {cfg.ef_start} (T2FSNN+EF)", spiking(cfg), cfg))
    evaluations = list(evaluations)
    for ev in evaluations:
        if getattr(ev, "predictions", None) is None or len(ev.predictions) != len(images):
            raise ValueError(f"evaluations must hold the predictions of these {len(images)} images "
                             f"(t2fsnn.snn.metrics.evaluate on the same images)")
    rows, ann, previous = [], None, None
    for name, forward, run_cfg in stages:
        reused = next((ev for ev in evaluations if run_cfg is not None and ev.config == run_cfg), None)
        predicted = torch.as_tensor(reused.predictions) if reused else _predict(forward, images, batch_size)
        ann = predicted if ann is None else ann
        accuracy = 100.0 * float((predicted == labels).double().mean())
        rows.append({"stage": name, "accuracy": accuracy,
                     "change": float("nan") if previous is None else accuracy - previous,
                     "agreement with ANN": 100.0 * float((predicted == ann).double().mean())})
        previous = accuracy
    return pd.DataFrame(rows).set_index("stage")


def evaluation_table(evaluations: Mapping[str, object]) -> pd.DataFrame:
    """One row per named ``t2fsnn.snn.metrics.Evaluation``: accuracy, latency, spikes, per-layer spikes and first spikes."""
    rows = []
    for name, ev in evaluations.items():
        row = {"run": name, "accuracy (%)": ev.accuracy, "latency (steps)": ev.latency,
               "spikes per image (hidden layers)": ev.hidden_spikes_per_image}
        for layer, count in zip(ev.layer_names, ev.spikes_per_layer):
            row[f"spikes {layer}"] = float(count)
        if ev.first_spike is not None:
            for layer, first in zip(ev.layer_names, ev.first_spike):
                row[f"first spike {layer}"] = int(first)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def representative_neurons(steps: torch.Tensor, count: int = 4) -> list[int]:
    """Flat indices of ``count`` neurons of one image whose spike steps spread over the window.

    ``steps`` holds one image's spike steps (any shape, ``-1`` = no spike). The
    neurons that fire are sorted by spike step and picked at evenly spaced ranks;
    when there are fewer, neurons that never fire fill up the list.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} is not allowed: it must be an integer >= 1")
    flat = steps.flatten().cpu()
    fired = torch.nonzero(flat >= 0).flatten()
    order = fired[torch.argsort(flat[fired], stable=True)]
    chosen: list[int] = []
    if len(order):
        ranks = np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))
        chosen = [int(order[r]) for r in ranks]
    silent = torch.nonzero(flat < 0).flatten()
    chosen += [int(i) for i in silent[: count - len(chosen)]]
    return chosen


def differing_neurons(steps_a: torch.Tensor, steps_b: torch.Tensor, count: int = 2) -> list[int]:
    """Flat indices of up to ``count`` neurons whose local spike steps differ most between two runs.

    ``steps_a`` and ``steps_b`` hold one image's local spike steps (``-1`` = no spike) of
    the same layer, e.g. without and with early firing. A neuron that fires in one run
    only counts as differing by ``T`` (taken as the larger step plus one).
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} is not allowed: it must be an integer >= 1")
    a, b = steps_a.flatten().cpu(), steps_b.flatten().cpu()
    if a.shape != b.shape:
        raise ValueError(f"steps_a has {a.numel()} neurons but steps_b has {b.numel()}: give the same layer twice")
    never = int(max(a.max(), b.max())) + 1
    gap = (torch.where(a >= 0, a, never) - torch.where(b >= 0, b, never)).abs()
    order = torch.argsort(gap, descending=True, stable=True)
    return [int(i) for i in order[:count] if gap[i] > 0]


def settling_step(accuracy_over_time, tolerance: float = 1.0) -> int:
    """The first time step (1-based) from which the accuracy stays within ``tolerance`` points of its final value."""
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r} is not allowed: it must be >= 0 percentage points")
    curve = np.asarray(accuracy_over_time, dtype=float)
    if curve.size == 0:
        raise ValueError("accuracy_over_time is empty: give one accuracy per time step")
    outside = np.nonzero(np.abs(curve - curve[-1]) > tolerance)[0]
    return int(outside[-1]) + 2 if outside.size else 1
