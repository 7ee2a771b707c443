"""Gradient-based optimization (GO) of the T2FSNN kernels (Section III-B, Eqs. 9-14).

Pure functions first: the precision loss (Eq. 9), the minimum and maximum
representation losses (Eqs. 10-11) and their analytic gradients (Eqs. 12-14, with
the partial derivatives the paper leaves out). Then the optimizer, which tunes each
spiking layer's ``tau`` and ``td`` by mini-batch gradient descent against the
converted ANN's activations.

Notation: ``z_bar`` is the ground truth (the ANN's activation of a layer), ``t_f``
a neuron's local spike step in its fire phase (``-1`` = no spike, as the engines
return it), ``z_hat = exp(-(t_f - td) / tau)`` the value decoded from that spike.
The spike steps are integers and therefore piecewise constant in ``tau`` and
``td``: between two jumps the loss is smooth and its derivative is the one with
``t_f`` held fixed, which is what Eq. 12 computes. Every loss and gradient below
holds ``t_f`` fixed.

Tensors of spike steps and activations may have any shape ``[B, ...]``; ``tau``
and ``td`` are floats or 0-dim tensors (tensors with ``requires_grad`` keep the
autograd graph, which the tests use to check the analytic gradients).
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import torch
from tqdm import tqdm

from . import cache
from .config import TTFSConfig

__all__ = [
    "decoded_value",
    "precision_loss",
    "precision_loss_grad",
    "min_representation",
    "max_representation",
    "min_representation_loss",
    "min_representation_loss_grad",
    "max_representation_loss",
    "max_representation_loss_grad",
    "activation_range",
    "first_spike_value",
    "layer_losses",
    "optimize_kernels",
    "loss_trends",
    "kernel_summary",
    "DEFAULT_RATES",
    "MAX_TARGETS",
]

# learning-rate factors of (L_prec -> tau, L_min -> tau, L_max -> td), as in the authors' code
DEFAULT_RATES = (10.0, 100.0, 1.0)
# where the ground truth of the largest value comes from
MAX_TARGETS = ("ann", "first_spike")


def _t(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value if value.dtype == torch.float64 else value.double()
    return torch.tensor(float(value), dtype=torch.float64)


# ---------------------------------------------------------------------------
# Losses (Eqs. 9-11) and their gradients (Eqs. 12-14)
# ---------------------------------------------------------------------------

def decoded_value(t_f, tau, td) -> torch.Tensor:
    """``z_hat = exp(-(t_f - td) / tau)``; spike steps ``-1`` (no spike) decode to 0."""
    t_f = torch.as_tensor(t_f)
    value = torch.exp(-(t_f.clamp_min(0).double() - _t(td)) / _t(tau))
    return torch.where(t_f >= 0, value, torch.zeros_like(value))


def _fired_error(z_bar, t_f, tau, td):
    t_f = torch.as_tensor(t_f)
    fired = t_f >= 0
    z_hat = decoded_value(t_f, tau, td)
    error = torch.where(fired, _t(z_bar) - z_hat, torch.zeros_like(z_hat))
    return fired, z_hat, error, max(int(fired.sum()), 1)


def precision_loss(z_bar, t_f, tau, td) -> torch.Tensor:
    """Eq. 9: ``1/|F| sum_{f in F} 1/2 (z_bar_f - z_hat_f)^2`` over the neurons that fired.

    Returns 0 when no neuron fired.
    """
    _, _, error, count = _fired_error(z_bar, t_f, tau, td)
    return 0.5 * (error ** 2).sum() / count


def precision_loss_grad(z_bar, t_f, tau, td) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL_prec/dtau, dL_prec/dtd)`` with the spike steps held fixed.

    ``dz_hat/dtau = +(t_f - td)/tau^2 z_hat`` and ``dz_hat/dtd = z_hat/tau``, so
    ``dL/dtau = -1/|F| sum (t_f - td)/tau^2 (z_bar - z_hat) z_hat`` (Eq. 12) and
    ``dL/dtd = -1/|F| sum (z_bar - z_hat) z_hat / tau`` (not in the paper).
    """
    t_f = torch.as_tensor(t_f)
    _, z_hat, error, count = _fired_error(z_bar, t_f, tau, td)
    tau, td = _t(tau), _t(td)
    lag = t_f.double() - td
    d_tau = -(lag / tau ** 2 * error * z_hat).sum() / count
    d_td = -(error * z_hat / tau).sum() / count
    return d_tau, d_td


def min_representation(T, tau, td) -> torch.Tensor:
    """The smallest value a kernel represents in a window of ``T`` steps: ``exp(-(T - td)/tau)``."""
    return torch.exp(-(_t(T) - _t(td)) / _t(tau))


def max_representation(tau, td) -> torch.Tensor:
    """The largest value a kernel represents: ``exp(td/tau)`` (the threshold at local step 0)."""
    return torch.exp(_t(td) / _t(tau))


def _targets(values) -> torch.Tensor:
    values = _t(torch.as_tensor(values)).reshape(-1)
    return values[~torch.isnan(values)]


def min_representation_loss(z_min, T, tau, td) -> torch.Tensor:
    """Eq. 10: ``1/2 (z_bar_min - z_hat_min)^2``, averaged over the given targets (one per image).

    NaN targets (images without a positive activation) are ignored; none left gives 0.
    """
    targets = _targets(z_min)
    if targets.numel() == 0:
        return torch.zeros((), dtype=torch.float64)
    return 0.5 * ((targets - min_representation(T, tau, td)) ** 2).mean()


def min_representation_loss_grad(z_min, T, tau, td) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL_min/dtau, dL_min/dtd)``.

    ``dz_hat_min/dtau = +(T - td)/tau^2 z_hat_min`` gives Eq. 13,
    ``dL_min/dtau = -(T - td)/tau^2 (z_bar_min - z_hat_min) z_hat_min``;
    ``dz_hat_min/dtd = z_hat_min/tau`` gives ``dL_min/dtd = -(z_bar_min - z_hat_min) z_hat_min/tau``.
    """
    targets = _targets(z_min)
    zero = torch.zeros((), dtype=torch.float64)
    if targets.numel() == 0:
        return zero, zero
    tau, td = _t(tau), _t(td)
    z_hat = min_representation(T, tau, td)
    error = (targets - z_hat).mean()
    return -(_t(T) - td) / tau ** 2 * error * z_hat, -error * z_hat / tau


def max_representation_loss(z_max, tau, td) -> torch.Tensor:
    """Eq. 11: ``1/2 (z_bar_max - z_hat_max)^2``, averaged over the given targets (NaN ignored)."""
    targets = _targets(z_max)
    if targets.numel() == 0:
        return torch.zeros((), dtype=torch.float64)
    return 0.5 * ((targets - max_representation(tau, td)) ** 2).mean()


def max_representation_loss_grad(z_max, tau, td) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL_max/dtau, dL_max/dtd)``.

    ``dz_hat_max/dtd = z_hat_max/tau`` gives Eq. 14, ``dL_max/dtd = -(z_bar_max - z_hat_max) z_hat_max/tau``;
    ``dz_hat_max/dtau = -td/tau^2 z_hat_max`` gives ``dL_max/dtau = +td/tau^2 (z_bar_max - z_hat_max) z_hat_max``.
    """
    targets = _targets(z_max)
    zero = torch.zeros((), dtype=torch.float64)
    if targets.numel() == 0:
        return zero, zero
    tau, td = _t(tau), _t(td)
    z_hat = max_representation(tau, td)
    error = (targets - z_hat).mean()
    return td / tau ** 2 * error * z_hat, -error * z_hat / tau


# ---------------------------------------------------------------------------
# Ground truth of the representation losses
# ---------------------------------------------------------------------------

def activation_range(z_bar: torch.Tensor, min_percentile: float = 2.0, max_percentile: float = 100.0):
    """Per image: the ``min_percentile`` and ``max_percentile`` percentiles of the positive activations.

    ``min_percentile = 0`` and ``max_percentile = 100`` are the plain minimum and
    maximum of the paper; a small percentile above 0 ignores the few smallest
    activations (outliers). Returns two ``[B]`` float64 tensors, NaN for an image
    without any positive activation.
    """
    for name, value in (("min_percentile", min_percentile), ("max_percentile", max_percentile)):
        if not isinstance(value, numbers.Real) or not 0 <= value <= 100:
            raise ValueError(f"{name}={value!r} is not allowed: it must be a percentile in [0, 100]")
    flat = z_bar.detach().flatten(1).double()
    positive = torch.where(flat > 0, flat, torch.full_like(flat, float("nan")))
    q = torch.tensor([min_percentile / 100.0, max_percentile / 100.0], dtype=torch.float64, device=flat.device)
    low, high = torch.nanquantile(positive, q, dim=1)
    return low, high


def first_spike_value(t_f: torch.Tensor, tau, td) -> torch.Tensor:
    """Per image: the value decoded from the layer's earliest spike (NaN without spikes).

    The authors' code takes this, not the ANN's maximum, as the ground truth of
    ``L_max``: the loss then vanishes once every image's first spike falls on local step 0.
    """
    flat = t_f.flatten(1)
    big = torch.iinfo(flat.dtype).max
    earliest = torch.where(flat >= 0, flat, torch.full_like(flat, big)).min(1).values
    value = torch.exp(-(earliest.double() - float(td)) / float(tau))
    return torch.where(earliest < big, value, torch.full_like(value, float("nan")))


def layer_losses(z_bar, t_f, T, tau, td, min_percentile=2.0, max_percentile=100.0, max_target="first_spike") -> dict:
    """The three losses and their gradients for one layer and one batch.

    Returns floats: ``L_prec, L_min, L_max`` and ``dprec_dtau, dmin_dtau, dmax_dtd``.
    """
    if max_target not in MAX_TARGETS:
        raise ValueError(f"max_target={max_target!r} is not allowed: choose one of {', '.join(MAX_TARGETS)}")
    z_min, z_max = activation_range(z_bar, min_percentile, max_percentile)
    if max_target == "first_spike":
        z_max = first_spike_value(t_f, tau, td)
    fired = t_f >= 0  # Eq. 9 only sees the neurons that fired: select them once
    z_fired, t_fired = z_bar[fired], t_f[fired]
    return {
        "L_prec": float(precision_loss(z_fired, t_fired, tau, td)),
        "L_min": float(min_representation_loss(z_min, T, tau, td)),
        "L_max": float(max_representation_loss(z_max, tau, td)),
        "dprec_dtau": float(precision_loss_grad(z_fired, t_fired, tau, td)[0]),
        "dmin_dtau": float(min_representation_loss_grad(z_min, T, tau, td)[0]),
        "dmax_dtd": float(max_representation_loss_grad(z_max, tau, td)[1]),
    }


# ---------------------------------------------------------------------------
# The optimizer
# ---------------------------------------------------------------------------

def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {low}")


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number > 0")


def _weights_hash(net) -> str:
    return cache.digest(*(part for item in sorted(net.state_dict().items()) for part in item))


def _source_version() -> str:
    from . import kernels
    from .engines import ttfs

    return cache.source_digest(__file__, ttfs.__file__, kernels.__file__)


def _cfg_spec(cfg: TTFSConfig) -> dict:
    return {"T": cfg.T, "tau": cfg.tau, "td": cfg.td, "ef_start": cfg.ef_start, "theta0": cfg.theta0}


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
    """
    from .engines.ttfs import layer_fire_steps

    # --- arguments, before any work
    if not isinstance(cfg, TTFSConfig):
        raise ValueError(f"cfg={cfg!r} is not allowed: kernel optimization needs a TTFSConfig")
    _check_int("steps", steps, 1)
    _check_positive("lr", lr)
    _check_int("batch_size", batch_size, 1)
    _check_int("seed", seed, 0)
    _check_positive("tau_floor", tau_floor)
    if not isinstance(clip_targets, bool):
        raise ValueError(f"clip_targets={clip_targets!r} is not allowed: give True or False")
    if not isinstance(images, torch.Tensor) or images.dim() < 2 or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images={shape} is not allowed: give a non-empty tensor of images [N, C, H, W]")
    if not torch.isfinite(images).all():
        raise ValueError("images holds NaN or infinite values: give images in [0, 1]")
    try:
        rates = tuple(float(r) for r in rates)
    except TypeError:
        raise ValueError(f"rates={rates!r} is not allowed: give three numbers >= 0 (L_prec, L_min, L_max)") from None
    if len(rates) != 3 or not all(math.isfinite(r) and r >= 0 for r in rates):
        raise ValueError(f"rates={rates!r} is not allowed: give three finite numbers >= 0 (L_prec, L_min, L_max)")
    for name, value in (("min_percentile", min_percentile), ("max_percentile", max_percentile)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 100:
            raise ValueError(f"{name}={value!r} is not allowed: it must be a percentile in [0, 100]")
    if min_percentile > max_percentile:
        raise ValueError(f"min_percentile={min_percentile!r} is not allowed above max_percentile={max_percentile!r}")
    if max_target not in MAX_TARGETS:
        raise ValueError(f"max_target={max_target!r} is not allowed: choose one of {', '.join(MAX_TARGETS)}")
    L = net.num_spiking_layers
    taus, tds = (list(v) for v in cfg.per_layer(L))
    net.check_input(images[:1])  # shape and dtype, before any work
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
    device = next(net.parameters()).device
    names = list(net.layer_names)
    generator = torch.Generator().manual_seed(seed)
    batch = min(batch_size, len(images))
    order, cursor = torch.randperm(len(images), generator=generator), 0
    rows: list[dict] = []
    for step in tqdm(range(1, steps + 1), desc="kernel optimization", disable=not progress, leave=False):
        if cursor + batch > len(images):
            order, cursor = torch.randperm(len(images), generator=generator), 0
        x = images[order[cursor:cursor + batch]].float().to(device)
        cursor += batch
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
# Summaries of a history
# ---------------------------------------------------------------------------

def loss_trends(history: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """Each loss summed over layers, averaged over the first and the last ``window`` steps.

    Columns ``first``, ``last`` and ``last / first``; one row per loss.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window={window!r} is not allowed: it must be an integer >= 1")
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
