"""T2FSNN inference: a step-by-step reference engine and an exact fast engine.

Timing conventions (shared by both engines, see the book's primer):

* Spiking layer ``l`` (``l = 0`` is the input layer) fires during global steps
  ``l*s .. l*s + T - 1`` where ``s = cfg.stride`` (``T`` without early firing,
  ``ef_start`` with it). Layer ``l`` integrates while layer ``l-1`` fires.
* A spike at step ``t`` reaches the next layer in the same step; layers are
  updated in order within a step.
* A neuron's membrane is ``u = W . X + b`` where ``X`` holds the decoded value of
  every presynaptic spike received so far (Eq. 8) and routing (pooling) is
  applied to ``X``. Because every neuron fires at most once, both engines build
  identical ``X`` tensors, so they compare identical potentials.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..config import TTFSConfig
from ..kernels import first_crossing, threshold_table
from . import register
from .result import SimulationResult

__all__ = ["simulate_exact", "simulate_clock", "layer_fire_steps", "local_fire_steps", "trace_clock", "ClockTrace"]

# upper bound on the values held at once when stacking partial integrations
_STACK_BUDGET = 2 ** 25


def _tables(net, cfg: TTFSConfig, like: torch.Tensor) -> list[torch.Tensor]:
    """Per spiking layer: thresholds of steps 0..T-1 followed by 0, the value of 'no spike'."""
    taus, tds = cfg.per_layer(net.num_spiking_layers)
    zero = torch.zeros(1, dtype=like.dtype, device=like.device)
    return [
        torch.cat([threshold_table(cfg.T, tau, td, cfg.theta0, dtype=like.dtype, device=like.device), zero])
        for tau, td in zip(taus, tds)
    ]


def _decoded(steps: torch.Tensor, table: torch.Tensor, upto: int | None = None) -> torch.Tensor:
    """Decoded values of local spike steps (``-1`` indexes the trailing 0), optionally only steps <= upto."""
    if upto is not None:
        steps = torch.where(steps <= upto, steps, torch.full_like(steps, -1))
    return table[steps]


def _stacked(block, steps: torch.Tensor, table: torch.Tensor, cutoffs: list[int]) -> torch.Tensor:
    """``block(X_{<=m})`` for every ``m`` in ``cutoffs``: [len(cutoffs), B, ...]."""
    per_image = max(1, steps[0].numel())
    chunk = max(1, _STACK_BUDGET // (per_image * max(1, len(steps))))
    outputs = []
    for start in range(0, len(cutoffs), chunk):
        part = cutoffs[start:start + chunk]
        inputs = torch.cat([_decoded(steps, table, m) for m in part])
        outputs.append(block(inputs).unflatten(0, (len(part), len(steps))))
    return torch.cat(outputs)


def _fire_steps(block, prev_steps, prev_table, table, T: int, s: int) -> torch.Tensor:
    """Local fire steps of one layer given its inputs' local spike steps (-1 = no spike)."""
    thresholds = table[:T]
    full = block(_decoded(prev_steps, prev_table))
    steps = first_crossing(full, thresholds)
    # local steps 0 .. s-... see inputs up to step s+k of the previous layer only
    partial = max(0, T - 1 - s)
    if partial == 0:
        return steps
    late = torch.where(steps >= 0, steps.clamp_min(partial), steps)
    potentials = _stacked(block, prev_steps, prev_table, [s + k for k in range(partial)])
    shape = (partial,) + (1,) * (potentials.dim() - 1)
    crossed = potentials >= thresholds[:partial].reshape(shape)
    any_crossed = crossed.any(0)
    first = crossed.to(torch.uint8).argmax(0)  # first True along the step axis
    return torch.where(any_crossed, first, late)


def _result(net, cfg, steps, potentials_over_window, batch) -> SimulationResult:
    """Assemble the result from local fire steps and the output potential at each window step."""
    L, T, s = net.num_spiking_layers, cfg.T, cfg.stride
    latency = cfg.latency(L)
    spike_times = [torch.where(k >= 0, k + l * s, k) for l, k in enumerate(steps)]
    per_layer = torch.stack([(k >= 0).flatten(1).sum(1) for k in steps], 1)
    predictions_over_time = torch.full((latency, batch), -1, dtype=torch.long, device=per_layer.device)
    predictions_over_time[(L - 1) * s:] = potentials_over_window.argmax(-1)
    return SimulationResult(
        predictions=predictions_over_time[-1].clone(),
        predictions_over_time=predictions_over_time,
        num_spikes=per_layer.sum(1),
        spikes_per_layer=per_layer,
        latency=latency,
        output_potential=potentials_over_window[-1],
        spike_times=spike_times,
    )


@torch.no_grad()
def simulate_exact(net, x: torch.Tensor, cfg: TTFSConfig, progress: bool = False) -> SimulationResult:
    """Spike steps in closed form per layer; partial sums only where early firing needs them."""
    tables = _tables(net, cfg, x)
    steps = [first_crossing(x, tables[0][:cfg.T])]
    layers = range(1, net.num_spiking_layers)
    for l in tqdm(layers, desc="layers", disable=not progress, leave=False):
        steps.append(_fire_steps(net.blocks[l - 1], steps[-1], tables[l - 1], tables[l], cfg.T, cfg.stride))
    window = _stacked(net.blocks[-1], steps[-1], tables[-1], list(range(cfg.T)))
    return _result(net, cfg, steps, window, len(x))


@torch.no_grad()
def simulate_clock(net, x: torch.Tensor, cfg: TTFSConfig, progress: bool = False) -> SimulationResult:
    """The reference: every step, every active layer integrates and compares with its threshold."""
    L, T, s = net.num_spiking_layers, cfg.T, cfg.stride
    tables = _tables(net, cfg, x)
    shapes = [a.shape[1:] for a in net.activations(x[:1])]
    steps = [torch.full((len(x),) + tuple(shape), -1, dtype=torch.long, device=x.device) for shape in shapes]
    traces = [torch.zeros((len(x),) + tuple(shape), dtype=x.dtype, device=x.device) for shape in shapes]
    membranes: list = [x] + [None] * (L - 1)
    outputs = []
    for t in tqdm(range(cfg.latency(L)), desc="steps", disable=not progress, leave=False):
        for l in range(L):
            if l > 0 and t >= (l - 1) * s:  # integration phase has begun
                membranes[l] = net.blocks[l - 1](traces[l - 1])
            k = t - l * s
            if 0 <= k < T:  # fire phase: compare with the dynamic threshold
                fire = (steps[l] < 0) & (membranes[l] >= tables[l][k])
                steps[l] = torch.where(fire, torch.full_like(steps[l], k), steps[l])
                traces[l] = torch.where(fire, tables[l][k], traces[l])
        if t >= (L - 1) * s:
            outputs.append(net.blocks[-1](traces[L - 1]))
    return _result(net, cfg, steps, torch.stack(outputs), len(x))


def _layer_table(cfg: TTFSConfig, tau: float, td: float, like: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros(1, dtype=like.dtype, device=like.device)
    return torch.cat([threshold_table(cfg.T, tau, td, cfg.theta0, dtype=like.dtype, device=like.device), zero])


@torch.no_grad()
def layer_fire_steps(net, cfg: TTFSConfig, layer: int, inputs: torch.Tensor) -> torch.Tensor:
    """Local fire steps (``0 .. T-1``, ``-1`` = no spike) of one spiking layer, as ``simulate_exact`` computes them.

    ``layer = 0`` is the input layer and ``inputs`` the images; for ``layer >= 1``,
    ``inputs`` are the local fire steps of spiking layer ``layer - 1``. The kernels
    (and early firing) are those of ``cfg``, so a caller can change one layer's
    kernel and recompute only the layers after it.
    """
    L = net.num_spiking_layers
    if not isinstance(layer, int) or not 0 <= layer < L:
        raise ValueError(f"layer={layer!r} is not allowed: choose a spiking layer 0 .. {L - 1}")
    taus, tds = cfg.per_layer(L)
    dtype = next(net.parameters()).dtype
    like = torch.empty(0, dtype=dtype, device=inputs.device)
    table = _layer_table(cfg, taus[layer], tds[layer], like)
    if layer == 0:
        return first_crossing(inputs.to(dtype), table[:cfg.T])
    prev_table = _layer_table(cfg, taus[layer - 1], tds[layer - 1], like)
    return _fire_steps(net.blocks[layer - 1], inputs, prev_table, table, cfg.T, cfg.stride)


@torch.no_grad()
def local_fire_steps(net, x: torch.Tensor, cfg: TTFSConfig) -> list[torch.Tensor]:
    """Local fire steps of every spiking layer (input first) for images ``x``; ``-1`` = no spike."""
    steps = [layer_fire_steps(net, cfg, 0, x)]
    for layer in range(1, net.num_spiking_layers):
        steps.append(layer_fire_steps(net, cfg, layer, steps[-1]))
    return steps


def _run(net, x, cfg, engine: str = "exact", progress: bool = False) -> SimulationResult:
    if engine not in ("exact", "clock"):
        raise ValueError(f"engine={engine!r} is not allowed: choose 'exact' or 'clock'")
    cfg.per_layer(net.num_spiking_layers)  # checks the per-layer lengths before any work
    x = x.to(next(net.parameters()).dtype) if x.dtype != next(net.parameters()).dtype else x
    run = simulate_exact if engine == "exact" else simulate_clock
    return run(net, x, cfg, progress=progress)


@dataclass
class ClockTrace:
    """What ``trace_clock`` records at every global step of a clock-driven run.

    result:      the ``SimulationResult`` (identical to ``simulate_clock``'s).
    membranes:   one tensor ``[latency, B, n]`` per spiking layer (input first) and a
                 last one for the output layer: the potential of the first ``n``
                 neurons (flattened order) at each step, ``NaN`` before the layer's
                 integration phase begins. The input layer's "potential" is the pixel.
    thresholds:  ``[latency, L]`` the dynamic threshold of each spiking layer at each
                 step, ``NaN`` outside its fire phase.
    names:       the spiking layers' names, then the output layer's.
    """

    result: SimulationResult
    membranes: list
    thresholds: torch.Tensor
    names: list
    T: int
    stride: int


@torch.no_grad()
def trace_clock(net, x: torch.Tensor, cfg: TTFSConfig, max_neurons: int | None = None,
                layers=None) -> ClockTrace:
    """``simulate_clock`` that also records membrane potentials and thresholds step by step.

    For teaching figures on a few images: memory grows as ``latency * B * neurons``,
    so ``max_neurons`` keeps only the first neurons of each layer and ``layers``
    (indices ``0 .. L``, ``L`` = the output layer) records only those layers; the
    others get an empty ``[latency, B, 0]`` tensor.
    """
    if max_neurons is not None and (not isinstance(max_neurons, int) or max_neurons < 1):
        raise ValueError(f"max_neurons={max_neurons!r} is not allowed: give None or an integer >= 1")
    if layers is not None:
        layers = list(layers)
        bad = [l for l in layers if not isinstance(l, int) or not 0 <= l <= net.num_spiking_layers]
        if bad:
            raise ValueError(f"layers={layers!r} is not allowed: give indices 0 .. {net.num_spiking_layers} "
                             f"(spiking layers, input first, then the output layer)")
    cfg.per_layer(net.num_spiking_layers)
    dtype = next(net.parameters()).dtype
    x = x.to(dtype)
    L, T, s = net.num_spiking_layers, cfg.T, cfg.stride
    latency = cfg.latency(L)
    tables = _tables(net, cfg, x)
    shapes = [a.shape[1:] for a in net.activations(x[:1])]
    steps = [torch.full((len(x),) + tuple(shape), -1, dtype=torch.long, device=x.device) for shape in shapes]
    traces = [torch.zeros((len(x),) + tuple(shape), dtype=x.dtype, device=x.device) for shape in shapes]
    membranes: list = [x] + [None] * (L - 1)
    out_size = net.blocks[-1](traces[L - 1][:1]).flatten(1).shape[1]
    sizes = [int(torch.Size(shape).numel()) for shape in shapes] + [out_size]
    kept = [n if max_neurons is None else min(n, max_neurons) for n in sizes]
    kept = [n if layers is None or l in layers else 0 for l, n in enumerate(kept)]
    recorded = [torch.full((latency, len(x), n), float("nan"), dtype=x.dtype, device=x.device) for n in kept]
    thresholds = torch.full((latency, L), float("nan"), dtype=torch.float64)
    outputs = []
    for t in range(latency):
        for l in range(L):
            if l > 0 and t >= (l - 1) * s:
                membranes[l] = net.blocks[l - 1](traces[l - 1])
            if membranes[l] is not None:
                recorded[l][t] = membranes[l].flatten(1)[:, :kept[l]]
            k = t - l * s
            if 0 <= k < T:
                thresholds[t, l] = float(tables[l][k])
                fire = (steps[l] < 0) & (membranes[l] >= tables[l][k])
                steps[l] = torch.where(fire, torch.full_like(steps[l], k), steps[l])
                traces[l] = torch.where(fire, tables[l][k], traces[l])
        if t >= (L - 1) * s:
            outputs.append(net.blocks[-1](traces[L - 1]))
            recorded[L][t] = outputs[-1].flatten(1)[:, :kept[L]]
    result = _result(net, cfg, steps, torch.stack(outputs), len(x))
    return ClockTrace(result, recorded, thresholds, list(net.layer_names) + [net.output_name], T, s)


register(TTFSConfig, _run)
