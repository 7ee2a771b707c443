"""Gradient-based optimization (GO) of the T2FSNN kernels (Section III-B): the optimizer.

:func:`optimize_kernels` tunes each spiking layer's ``tau`` and ``td`` by mini-batch
gradient descent against the converted ANN's activations, with the losses and
analytic gradients of Eqs. 9-14 from :mod:`t2fsnn.snn.go_losses`. :func:`loss_trends`
and :func:`kernel_summary` summarise the history it returns.

Beyond the paper, ``objective="output"`` chooses the kernels for the network's output
instead: a coordinate search per layer that lowers the divergence of the spiking
network's output from the ANN's (see :func:`optimize_kernels`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from tqdm import tqdm

from t2fsnn import cache
from t2fsnn.checks import check_int, check_percentile, check_positive, check_finite_tensor
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.go_losses import MAX_TARGETS, layer_losses

__all__ = [
    "optimize_kernels",
    "loss_trends",
    "kernel_summary",
    "DEFAULT_RATES",
    "OBJECTIVES",
    "output_divergence",
]

# learning-rate factors of (L_prec -> tau, L_min -> tau, L_max -> td), as in the authors' code
DEFAULT_RATES = (10.0, 100.0, 1.0)

# what the kernels are fitted to: the ANN's activations layer by layer (the paper's GO) or its output (beyond the paper)
OBJECTIVES = ("activation", "output")
# the output search's first moves: tau times or divided by this factor, td plus or minus this many steps
OUTPUT_TAU_FACTOR = 1.25
OUTPUT_TD_STEP = 0.5


# ---------------------------------------------------------------------------
# The optimizer
# ---------------------------------------------------------------------------

def _weights_hash(net) -> str:
    return cache.digest(*(part for item in sorted(net.state_dict().items()) for part in item))


def _source_version() -> str:
    from t2fsnn.snn import go_losses, kernels
    from t2fsnn.snn.engines import ttfs

    return cache.source_digest(__file__, go_losses.__file__, ttfs.__file__, kernels.__file__)


def _cfg_spec(cfg: TTFSConfig) -> dict:
    return {"T": cfg.T, "tau": cfg.tau, "td": cfg.td, "ef_start": cfg.ef_start, "theta0": cfg.theta0}


def _minibatches(net, images: torch.Tensor, steps: int, batch_size: int, seed: int, desc: str, progress: bool):
    """``(step, x)`` for steps ``1 .. steps``: shuffled mini-batches (reshuffled after every pass) on the network's device."""
    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    batch = min(batch_size, len(images))
    order, cursor = torch.randperm(len(images), generator=generator), 0
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False):
        if cursor + batch > len(images):
            order, cursor = torch.randperm(len(images), generator=generator), 0
        yield step, images[order[cursor:cursor + batch]].float().to(device)
        cursor += batch


def optimize_kernels(
    net,
    images: torch.Tensor,
    cfg: TTFSConfig,
    steps: int = 100,
    lr: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
    rates: Sequence[float] = DEFAULT_RATES,
    min_percentile: float = 2.0,
    max_percentile: float = 100.0,
    max_target: str = "first_spike",
    tau_floor: float = 0.5,
    clip_targets: bool = False,
    use_cache: bool = True,
    cache_root=None,
    progress: bool = False,
    objective: str = "activation",
):
    """Optimize every spiking layer's ``tau`` and ``td`` (Section III-B); returns ``(cfg_opt, history)``.

    Each step draws a mini-batch of ``images`` (training images, shuffled with
    ``seed``, reshuffled after every pass) and sweeps the spiking layers input
    first. For layer ``l`` the ground truth is ``net.activations(x, clip=clip_targets)[l]``,
    the converted ANN's activation, unclipped by default as in the authors' code (values
    above 1 then pull the kernels towards a larger representable range); the spike steps are those of the exact T2FSNN
    engine with the current kernels, where layers before ``l`` already carry this
    step's update. Then

    * ``tau_l -= lr * (rates[0] * dL_prec/dtau + rates[1] * dL_min/dtau)`` (Eqs. 12, 13),
    * ``td_l  -= lr * rates[2] * dL_max/dtd`` (Eq. 14),

    and ``tau_l`` is kept at or above ``tau_floor``. The target of ``L_min`` is, per
    image, the ``min_percentile`` percentile of the positive ANN activations. The
    target of ``L_max`` is, per image, the value decoded from the layer's earliest
    spike (``max_target="first_spike"``, as in the authors' code: ``L_max`` vanishes
    once the first spike falls on local step 0), or the ``max_percentile`` percentile
    of the positive ANN activations (``max_target="ann"``, Eq. 11 read literally).

    ``history`` has one row per step and layer: ``step`` (1-based), ``layer``,
    ``tau`` and ``td`` (the values the losses were measured with, before the update)
    and ``L_prec``, ``L_min``, ``L_max``. The result is cached under a key of the
    network's weights, ``cfg``, the images and every option.

    ``objective="output"`` (an addition beyond the paper) fits the kernels to the
    network's output instead of each layer's activations, by a coordinate search: each
    step draws the same mini-batch as above and sweeps the spiking layers input first;
    for layer ``l`` it runs the exact engine from layer ``l`` on with the current kernel
    and its four neighbours (``tau`` times or divided by a factor, ``td`` plus or minus
    a step) and keeps the one whose output is closest to the converted ANN's
    (:func:`output_divergence`; a tie keeps the current kernel); when the current kernel
    wins, that layer's factor and step shrink (square root, half). It uses ``steps``,
    ``batch_size``, ``seed`` and ``tau_floor`` as above and ignores the options of the paper's losses
    (``lr``, ``rates``, the percentiles, ``max_target``, ``clip_targets``). The network
    stays a T2FSNN with the same ``T``, early firing and latency; only each layer's
    ``tau`` and ``td`` change. Its ``history`` has one row per step and layer: ``step``,
    ``layer``, ``tau`` and ``td`` before the step, ``loss`` (the output divergence on the
    step's mini-batch with them) and ``loss after`` (with the kernel the step chose).
    """
    from t2fsnn.snn.engines.ttfs import layer_fire_steps

    # --- arguments, before any work
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective!r} is not allowed: choose 'activation' (the paper's GO, "
                         f"against each layer's ANN activations) or 'output' (against the ANN's output)")
    if not isinstance(cfg, TTFSConfig):
        raise ValueError(f"cfg={cfg!r} is not allowed: kernel optimization needs a TTFSConfig")
    check_int("steps", steps, 1)
    check_positive("lr", lr)
    check_int("batch_size", batch_size, 1)
    check_int("seed", seed, 0)
    check_positive("tau_floor", tau_floor)
    if not isinstance(clip_targets, bool):
        raise ValueError(f"clip_targets={clip_targets!r} is not allowed: give True or False")
    if not isinstance(images, torch.Tensor) or images.dim() < 2 or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images={shape} is not allowed: give a non-empty tensor of images [N, C, H, W]")
    check_finite_tensor("images", images)
    try:
        rates = tuple(float(r) for r in rates)
    except TypeError:
        raise ValueError(f"rates={rates!r} is not allowed: give three numbers >= 0 (L_prec, L_min, L_max)") from None
    if len(rates) != 3 or not all(math.isfinite(r) and r >= 0 for r in rates):
        raise ValueError(f"rates={rates!r} is not allowed: give three finite numbers >= 0 (L_prec, L_min, L_max)")
    check_percentile("min_percentile", min_percentile)
    check_percentile("max_percentile", max_percentile)
    if min_percentile > max_percentile:
        raise ValueError(f"min_percentile={min_percentile!r} is not allowed above max_percentile={max_percentile!r}")
    if max_target not in MAX_TARGETS:
        raise ValueError(f"max_target={max_target!r} is not allowed: choose one of {', '.join(MAX_TARGETS)}")
    L = net.num_spiking_layers
    taus, tds = (list(v) for v in cfg.per_layer(L))
    net.check_input(images[:1])  # shape and dtype, before any work
    if objective == "output":
        return _output_search(net, images, cfg, steps, batch_size, seed, float(tau_floor), use_cache, cache_root,
                              progress)
    if cfg.theta0 != 1.0:
        raise ValueError(f"theta0={cfg.theta0!r} is not allowed here: the losses of Eqs. 9-11 assume theta0 = 1")

    # --- cache
    spec = {
        "what": "kernel-optimization", "weights": _weights_hash(net), "cfg": _cfg_spec(cfg),
        "images": cache.digest(images.float()), "steps": steps, "lr": float(lr), "batch_size": batch_size,
        "seed": seed, "rates": rates, "min_percentile": float(min_percentile),
        "max_percentile": float(max_percentile), "max_target": max_target, "tau_floor": float(tau_floor),
        "clip_targets": clip_targets, "code": _source_version(),
    }
    key = cache.cache_key(spec)
    path = Path(cache_root or cache.cache_dir()) / "kernels" / f"go-{key}.pt"
    stored = cache.load_entry(path, ("tau", "td", "history")) if use_cache else None  # damaged: removed, recomputed
    if stored is not None:
        return _config(cfg, stored["tau"], stored["td"]), pd.DataFrame(stored["history"])

    # --- mini-batch gradient descent, layer by layer (on the device that holds the network)
    names = list(net.layer_names)
    rows: list[dict] = []
    for step, x in _minibatches(net, images, steps, batch_size, seed, "kernel optimization", progress):
        truth = net.activations(x, clip=clip_targets)
        inputs = x
        for layer in range(L):
            current = _config(cfg, taus, tds)
            t_f = layer_fire_steps(net, current, layer, inputs)
            tau, td = taus[layer], tds[layer]
            losses = layer_losses(truth[layer], t_f, cfg.T, tau, td, min_percentile, max_percentile, max_target)
            rows.append({"step": step, "layer": names[layer], "tau": tau, "td": td,
                         "L_prec": losses["L_prec"], "L_min": losses["L_min"], "L_max": losses["L_max"]})
            new_tau = tau - lr * (rates[0] * losses["dprec_dtau"] + rates[1] * losses["dmin_dtau"])
            new_td = td - lr * rates[2] * losses["dmax_dtd"]
            if not (math.isfinite(new_tau) and math.isfinite(new_td)):
                raise FloatingPointError(
                    f"kernel optimization diverged at step {step}, layer {names[layer]} (tau={new_tau}, td={new_td}); "
                    f"lower lr={lr!r}")
            taus[layer], tds[layer] = max(new_tau, float(tau_floor)), new_td
            if layer + 1 < L:
                # the next layer integrates this layer's spikes with its updated kernel
                inputs = layer_fire_steps(net, _config(cfg, taus, tds), layer, inputs)
    history = pd.DataFrame(rows, columns=["step", "layer", "tau", "td", "L_prec", "L_min", "L_max"])
    if use_cache:
        cache.atomic_save({"tau": list(taus), "td": list(tds), "history": history.to_dict(orient="list"),
                           "spec": spec}, path)
    return _config(cfg, taus, tds), history


def _config(cfg: TTFSConfig, taus, tds) -> TTFSConfig:
    return TTFSConfig(T=cfg.T, tau=tuple(float(v) for v in taus), td=tuple(float(v) for v in tds),
                      ef_start=cfg.ef_start, theta0=cfg.theta0)


# ---------------------------------------------------------------------------
# Kernels chosen for the output (an addition beyond the paper)
# ---------------------------------------------------------------------------

def output_divergence(snn_logits: torch.Tensor, ann_logits: torch.Tensor) -> float:
    """Mean Kullback-Leibler divergence ``KL(softmax(ann) || softmax(snn))`` over a batch of output potentials."""
    target = torch.log_softmax(ann_logits.double(), dim=1)
    spiking = torch.log_softmax(snn_logits.double(), dim=1)
    return float((target.exp() * (target - spiking)).sum(1).mean())


def _output_from(net, cfg: TTFSConfig, layer: int, inputs: torch.Tensor) -> torch.Tensor:
    """The output layer's final potential when spiking layers ``layer ..`` run on ``inputs`` (as ``layer_fire_steps`` takes them)."""
    from t2fsnn.snn.engines.ttfs import layer_fire_steps
    from t2fsnn.snn.kernels import threshold_table

    steps = inputs
    for current in range(layer, net.num_spiking_layers):
        steps = layer_fire_steps(net, cfg, current, steps)
    taus, tds = cfg.per_layer(net.num_spiking_layers)
    weight = next(net.parameters())
    table = threshold_table(cfg.T, taus[-1], tds[-1], cfg.theta0, dtype=weight.dtype, device=weight.device)
    values = torch.where(steps >= 0, table[steps.clamp(min=0)], torch.zeros((), dtype=weight.dtype, device=weight.device))
    return net.blocks[-1](values)  # every spike of the last layer has arrived: the engines' last step


def _candidates(tau: float, td: float, factor: float, step: float, tau_floor: float) -> list[tuple[float, float]]:
    """The current kernel first, then its neighbours: tau divided or multiplied by ``factor``, td moved by ``step``."""
    found = [(tau, td)]
    for pair in ((max(tau / factor, tau_floor), td), (tau * factor, td), (tau, td - step), (tau, td + step)):
        if pair not in found:
            found.append(pair)
    return found


@torch.no_grad()
def _output_search(net, images, cfg: TTFSConfig, steps: int, batch_size: int, seed: int, tau_floor: float,
                   use_cache: bool, cache_root, progress: bool):
    """``optimize_kernels(objective="output")`` after its argument checks; cached like GO under its own key."""
    from t2fsnn.snn.engines.ttfs import layer_fire_steps

    L = net.num_spiking_layers
    taus, tds = (list(v) for v in cfg.per_layer(L))
    spec = {
        "what": "kernel-output-search", "weights": _weights_hash(net), "cfg": _cfg_spec(cfg),
        "images": cache.digest(images.float()), "steps": steps, "batch_size": batch_size, "seed": seed,
        "tau_floor": tau_floor, "moves": [OUTPUT_TAU_FACTOR, OUTPUT_TD_STEP], "code": _source_version(),
    }
    key = cache.cache_key(spec)
    path = Path(cache_root or cache.cache_dir()) / "kernels" / f"output-{key}.pt"
    stored = cache.load_entry(path, ("tau", "td", "history")) if use_cache else None
    if stored is not None:
        return _config(cfg, stored["tau"], stored["td"]), pd.DataFrame(stored["history"])

    names = list(net.layer_names)
    factors, moves = [OUTPUT_TAU_FACTOR] * L, [OUTPUT_TD_STEP] * L
    rows: list[dict] = []
    for step, x in _minibatches(net, images, steps, batch_size, seed, "kernel search (output)", progress):
        ann = net.ann_forward(x)
        inputs, known = x, None
        for layer in range(L):
            losses = [] if known is None else [known]  # the kernels the previous layer chose: its loss is known
            candidates = _candidates(taus[layer], tds[layer], factors[layer], moves[layer], tau_floor)
            for tau, td in candidates[len(losses):]:
                trial_taus, trial_tds = list(taus), list(tds)
                trial_taus[layer], trial_tds[layer] = tau, td
                losses.append(output_divergence(_output_from(net, _config(cfg, trial_taus, trial_tds), layer, inputs), ann))
            best = min(range(len(candidates)), key=losses.__getitem__)  # the first of equals: the current kernel
            known = losses[best]
            rows.append({"step": step, "layer": names[layer], "tau": taus[layer], "td": tds[layer],
                         "loss": losses[0], "loss after": losses[best]})
            if best == 0:
                factors[layer], moves[layer] = math.sqrt(factors[layer]), moves[layer] / 2
            taus[layer], tds[layer] = candidates[best]
            if layer + 1 < L:
                inputs = layer_fire_steps(net, _config(cfg, taus, tds), layer, inputs)
    history = pd.DataFrame(rows, columns=["step", "layer", "tau", "td", "loss", "loss after"])
    if use_cache:
        cache.atomic_save({"tau": list(taus), "td": list(tds), "history": history.to_dict(orient="list"),
                           "spec": spec}, path)
    return _config(cfg, taus, tds), history


# ---------------------------------------------------------------------------
# Summaries of a history
# ---------------------------------------------------------------------------

def loss_trends(history: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """Each loss summed over layers, averaged over the first and the last ``window`` steps.

    Columns ``first``, ``last`` and ``last / first``; one row per loss.
    """
    check_int("window", window, 1)
    per_step = history.groupby("step")[["L_prec", "L_min", "L_max"]].sum()
    window = min(window, len(per_step))
    first, last = per_step.iloc[:window].mean(), per_step.iloc[-window:].mean()
    frame = pd.DataFrame({"first": first, "last": last})
    frame["last / first"] = frame["last"] / frame["first"].where(frame["first"] != 0)
    frame.index.name = "loss"
    return frame


def kernel_summary(history: pd.DataFrame, cfg_opt: TTFSConfig) -> pd.DataFrame:
    """Per layer: ``tau`` and ``td`` before the first step and after the last."""
    start = history[history["step"] == history["step"].min()].set_index("layer")[["tau", "td"]]
    taus, tds = cfg_opt.per_layer(len(start))
    frame = pd.DataFrame({"tau before": start["tau"], "tau after": list(taus),
                          "td before": start["td"], "td after": list(tds)}, index=start.index)
    return frame
