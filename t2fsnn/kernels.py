"""Pure functions for the T2FSNN kernel, threshold, encoding and decoding.

Notation follows the paper (Section III): a layer's kernel is
``eps(t) = exp(-(t - td) / tau)`` where ``t`` counts steps since the start of the
layer's fire phase. All functions accept floats or tensors and broadcast.
"""
from __future__ import annotations

import torch

__all__ = [
    "kernel",
    "threshold",
    "encode",
    "decode",
    "precision_error",
    "representable_range",
    "threshold_table",
    "first_crossing",
]


def _as_tensor(x, dtype=torch.float64):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=dtype)


def kernel(t, tau, td):
    """Eq. 5: ``exp(-(t - td) / tau)``."""
    return torch.exp(-(_as_tensor(t) - td) / tau)


def threshold(t, tau, td, theta0: float = 1.0):
    """Eq. 6: the dynamic threshold ``theta0 * eps(t)`` at local fire-phase step ``t``."""
    return theta0 * kernel(t, tau, td)


def encode(u, T: int, tau, td, theta0: float = 1.0) -> torch.Tensor:
    """Eq. 7: the integer local step at which potential ``u`` first crosses the threshold.

    ``t = max(0, ceil(-tau * ln(u / theta0) + td))``. Returns ``-1`` where the neuron
    never fires inside the window ``0 .. T-1`` (including every ``u <= 0``).
    Computed by counting the thresholds above ``u`` so that it agrees bit for bit
    with a step-by-step comparison.
    """
    u = _as_tensor(u)
    table = threshold_table(T, tau, td, theta0, dtype=u.dtype, device=u.device)
    return first_crossing(u, table)


def decode(step, tau, td, theta0: float = 1.0):
    """Eq. 8 for one spike: the value carried by a spike at local step ``step``.

    The decoded value is the threshold that was crossed, ``theta0 * eps(step)``;
    a step of ``-1`` (no spike) decodes to 0.
    """
    step_t = _as_tensor(step)
    value = theta0 * kernel(step_t.clamp_min(0), tau, td)
    return torch.where(step_t >= 0, value, torch.zeros_like(value))


def precision_error(x_hat, tau):
    """The gap between a decoded value and the next representable one: ``x_hat (e^{1/tau} - 1)``."""
    return _as_tensor(x_hat) * torch.expm1(1.0 / _as_tensor(tau))


def representable_range(T, tau, td):
    """The smallest and largest values a kernel represents in a window of ``T`` steps.

    As in the paper: ``z_min = exp(-(T - td)/tau)`` and ``z_max = exp(td/tau)``.
    (The discrete engines fire at local steps ``0 .. T-1``, so the smallest value
    they actually transmit is ``exp(-(T - 1 - td)/tau)``.)
    """
    z_min = torch.exp(-(_as_tensor(T) - td) / tau)
    z_max = torch.exp(_as_tensor(td) / tau)
    return z_min, z_max


def threshold_table(T: int, tau: float, td: float, theta0: float = 1.0, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The threshold at each local step ``0 .. T-1`` of a fire phase (strictly decreasing)."""
    steps = torch.arange(T, dtype=torch.float64)
    table = theta0 * torch.exp(-(steps - float(td)) / float(tau))
    return table.to(dtype=dtype, device=device)


def first_crossing(u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """First index ``k`` with ``u >= table[k]`` for a decreasing ``table``; ``-1`` if none.

    Because the table decreases, that index equals the number of entries strictly
    above ``u``. NaN potentials never fire.
    """
    ascending = table.flip(0).contiguous()
    # entries <= u in the ascending table; entries above u = T - that count
    at_or_below = torch.searchsorted(ascending, u.contiguous(), right=True)
    step = table.numel() - at_or_below
    fired = (step < table.numel()) & ~torch.isnan(u)
    return torch.where(fired, step, torch.full_like(step, -1))
