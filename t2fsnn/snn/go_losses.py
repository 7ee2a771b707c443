"""The losses of gradient-based kernel optimization and their analytic gradients (Section III-B, Eqs. 9-14).

Pure functions, the module of the paper's equations: the precision loss (Eq. 9), the
minimum and maximum representation losses (Eqs. 10-11), their analytic gradients
(Eqs. 12-14, with the partial derivatives the paper leaves out) and the ground truth
of the representation losses. The optimizer that descends these gradients is
:func:`t2fsnn.snn.optimization.optimize_kernels`.

Notation: ``z_bar`` is the ground truth (the ANN's activation of a layer), ``t_f``
a neuron's local spike step in its fire phase (``-1`` = no spike, as the engines
return it), ``z_hat = exp(-(t_f - td) / tau)`` the value decoded from that spike
(:func:`t2fsnn.snn.kernels.decode`); the smallest and largest representable values
``z_hat_min`` and ``z_hat_max`` are those of :func:`t2fsnn.snn.kernels.representable_range`.
The spike steps are integers and therefore piecewise constant in ``tau`` and
``td``: between two jumps the loss is smooth and its derivative is the one with
``t_f`` held fixed, which is what Eq. 12 computes. Every loss and gradient below
holds ``t_f`` fixed and assumes ``theta0 = 1``.

Tensors of spike steps and activations may have any shape ``[B, ...]``; ``tau``
and ``td`` are floats or 0-dim tensors (tensors with ``requires_grad`` keep the
autograd graph, which the tests use to check the analytic gradients).
"""
from __future__ import annotations

import torch

from t2fsnn.checks import check_percentile
from t2fsnn.snn.kernels import decode, kernel, representable_range

__all__ = [
    "precision_loss",
    "precision_loss_grad",
    "min_representation_loss",
    "min_representation_loss_grad",
    "max_representation_loss",
    "max_representation_loss_grad",
    "activation_range",
    "first_spike_value",
    "layer_losses",
    "MAX_TARGETS",
]

# where the ground truth of the largest value comes from
MAX_TARGETS = ("ann", "first_spike")


def _t(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value if value.dtype == torch.float64 else value.double()
    return torch.tensor(float(value), dtype=torch.float64)


# ---------------------------------------------------------------------------
# Losses (Eqs. 9-11) and their gradients (Eqs. 12-14)
# ---------------------------------------------------------------------------

def _fired_error(z_bar, t_f, tau, td):
    t_f = torch.as_tensor(t_f)
    fired = t_f >= 0
    z_hat = decode(t_f, _t(tau), _t(td))
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


def _targets(values) -> torch.Tensor:
    values = _t(torch.as_tensor(values)).reshape(-1)
    return values[~torch.isnan(values)]


def _z_min(T, tau, td) -> torch.Tensor:
    return representable_range(T, _t(tau), _t(td))[0]


def _z_max(tau, td) -> torch.Tensor:
    return representable_range(0, _t(tau), _t(td))[1]


def min_representation_loss(z_min, T, tau, td) -> torch.Tensor:
    """Eq. 10: ``1/2 (z_bar_min - z_hat_min)^2``, averaged over the given targets (one per image).

    NaN targets (images without a positive activation) are ignored; none left gives 0.
    """
    targets = _targets(z_min)
    if targets.numel() == 0:
        return torch.zeros((), dtype=torch.float64)
    return 0.5 * ((targets - _z_min(T, tau, td)) ** 2).mean()


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
    z_hat = _z_min(T, tau, td)
    error = (targets - z_hat).mean()
    return -(_t(T) - td) / tau ** 2 * error * z_hat, -error * z_hat / tau


def max_representation_loss(z_max, tau, td) -> torch.Tensor:
    """Eq. 11: ``1/2 (z_bar_max - z_hat_max)^2``, averaged over the given targets (NaN ignored)."""
    targets = _targets(z_max)
    if targets.numel() == 0:
        return torch.zeros((), dtype=torch.float64)
    return 0.5 * ((targets - _z_max(tau, td)) ** 2).mean()


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
    z_hat = _z_max(tau, td)
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
    check_percentile("min_percentile", min_percentile)
    check_percentile("max_percentile", max_percentile)
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
    value = kernel(earliest.double(), float(tau), float(td))
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
