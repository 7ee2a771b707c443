"""Pure functions for the T2FSNN kernel, threshold, encoding and decoding.

Notation follows the paper (Section III): a layer's kernel is
``eps(t) = exp(-(t - td) / tau)`` where ``t`` counts steps since the start of the
layer's fire phase. All functions accept floats or tensors and broadcast.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

__all__ = [
    "kernel",
    "threshold",
    "encode",
    "decode",
    "precision_error",
    "representable_range",
    "threshold_table",
    "lookup",
    "crossing_steps",
    "first_crossing",
    "fast_crossing_steps",
    "fire_and_decode",
    "spikes_per_image",
    "mark_crossings",
    "crossing_buffers",
    "fuse_elementwise",
]


def _as_tensor(x, dtype=torch.float64):
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.to(dtype)
    return torch.as_tensor(x, dtype=dtype)


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
    step_t = torch.as_tensor(step)
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


def lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for an integer index tensor of any shape (flat ``index_select`` is the fast path)."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


def crossing_steps(u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """First index ``k`` with ``u >= table[k]`` for a decreasing geometric ``table``; ``T`` if none.

    The closed form of Eq. 7 gives ``k`` to within one step; one comparison with
    the neighbouring thresholds then makes it agree exactly with a step-by-step
    comparison. NaN and non-positive potentials never fire.
    """
    T = table.numel()
    finite_steps = T > 1 and bool(table[-1] > 0) and bool(torch.isfinite(table[0]))
    if not finite_steps:
        # one-step windows or thresholds that underflow: count the thresholds above u
        steps = T - torch.searchsorted(table.flip(0).contiguous(), u.contiguous(), right=True)
        return torch.where(torch.isnan(u), torch.full_like(steps, T), steps)
    tau = float(1.0 / torch.log(table[0] / table[1]))
    log_first = float(torch.log(table[0]))
    # in-place arithmetic: these tensors are as large as a layer's output
    estimate = torch.log(u.clamp_min(torch.finfo(u.dtype).tiny))  # NaN stays NaN, u <= 0 -> far future
    estimate.sub_(log_first).mul_(-tau).ceil_().nan_to_num_(nan=float(T)).clamp_(0, T)
    k = estimate.to(torch.int32)
    # at_step[k] is the threshold of step k (-inf for "no spike"), before_step[k] that of step k-1 (+inf for k = 0)
    inf = torch.full((1,), float("inf"), dtype=table.dtype, device=table.device)
    at_step, before_step = torch.cat([table, -inf]), torch.cat([inf, table])
    k.add_(u < lookup(at_step, k))
    k.sub_((u >= lookup(before_step, k)).to(torch.int32))
    k = k.long()
    return k.clamp_(0, T)  # u = +inf meets the +inf guard


def first_crossing(u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """First index ``k`` with ``u >= table[k]`` for a decreasing ``table``; ``-1`` if none."""
    steps = crossing_steps(u, table)
    return torch.where(steps < table.numel(), steps, torch.full_like(steps, -1))


# ----------------------------------------------------------------------------- fast crossing steps
# A float32's bit pattern, shifted right by 15, names a bucket of consecutive floats (its sign,
# exponent and top 8 mantissa bits). Within a bucket the number of thresholds above ``u`` is a
# constant, plus one where the bucket holds a single threshold and ``u`` lies below it. Two table
# look-ups and one comparison then give ``crossing_steps`` exactly, without a logarithm.
_BUCKET_SHIFT = 15
_BUCKETS = 1 << (32 - _BUCKET_SHIFT)
_BUCKET_CACHE: dict = {}


def _bucket_tables(table: torch.Tensor):
    """``(inner, count)`` per bucket (count as int32) for a non-increasing float32 ``table``, or ``None`` if a bucket
    holds two thresholds."""
    key = (table.detach().cpu().numpy().tobytes(), str(table.device))
    if key in _BUCKET_CACHE:
        return _BUCKET_CACHE[key]
    thresholds = table.detach().cpu()
    ascending = thresholds.flip(0).contiguous()
    first_bits = torch.arange(_BUCKETS, dtype=torch.int64) << _BUCKET_SHIFT  # unsigned bit patterns
    last_bits = first_bits + (1 << _BUCKET_SHIFT) - 1
    a = (first_bits - (first_bits >= 2 ** 31) * 2 ** 32).to(torch.int32).view(torch.float32)
    b = (last_bits - (last_bits >= 2 ** 31) * 2 ** 32).to(torch.int32).view(torch.float32)
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    T = thresholds.numel()
    above_high = T - torch.searchsorted(ascending, high, right=True)  # thresholds > every u of the bucket
    above_low = T - torch.searchsorted(ascending, low, right=True)
    inside = above_low - above_high
    finite = torch.isfinite(low) & torch.isfinite(high)
    if bool((inside[finite] > 1).any()):
        result = None
    else:
        inner = torch.where(inside == 1, thresholds[above_high.clamp(max=T - 1)], torch.full_like(low, -float("inf")))
        count = torch.where(finite, above_high, torch.full_like(above_high, T))
        result = (inner.to(table.device), count.to(device=table.device, dtype=torch.int32))
    if len(_BUCKET_CACHE) > 64:
        _BUCKET_CACHE.clear()
    _BUCKET_CACHE[key] = result
    return result


def fast_crossing_steps(u: torch.Tensor, table: torch.Tensor, finite: bool = False) -> torch.Tensor:
    """``crossing_steps(u, table)`` (first ``k`` with ``u >= table[k]``, ``T`` if none) as int32, by bucket look-up.

    The same steps; a few cheap passes instead of a logarithm and its corrections. Used for
    float32 potentials that are all finite (``finite=True`` when the caller knows they are,
    otherwise they are checked); anything else goes to ``crossing_steps``. int32 because a CPU
    adds a comparison to it several times faster than to int64, with half the bytes to write.
    """
    buckets = _buckets_for(u, table, finite)
    if buckets is None:
        return crossing_steps(u, table).int()
    inner, count = buckets
    return _bucket_steps(u.contiguous().view(-1), count, inner).view(u.shape)


def _buckets_for(u: torch.Tensor, table: torch.Tensor, finite: bool):
    """``_bucket_tables(table)`` where the bucket look-up applies to ``u`` (float32 and finite), else ``None``."""
    if u.dtype != torch.float32 or table.dtype != torch.float32:
        return None
    buckets = _bucket_tables(table)
    if buckets is None or not (finite or bool(torch.isfinite(u).all())):
        return None
    return buckets


def _bucket_steps(flat: torch.Tensor, count: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Crossing steps of a flat float32 tensor, in ``count``'s dtype: each float's bucket (its bit pattern read as
    unsigned, shifted right; int32, fewer bytes to move than int64), two look-ups and one comparison."""
    index = flat.view(torch.int32).bitwise_right_shift(_BUCKET_SHIFT).bitwise_and_(_BUCKETS - 1)
    steps = count.index_select(0, index)
    steps += flat < inner.index_select(0, index)
    return steps


#: Whether :func:`fire_and_decode` runs as a fused kernel (``torch.compile``,
#: compiled on first use, about 5 s on a CPU). Off by default so that no test or notebook waits
#: for a compile; ``T2FSNN_FUSE=1`` turns it on. The results are identical either way.
fuse_elementwise = os.environ.get("T2FSNN_FUSE", "") == "1"
_COMPILED: dict = {}


def _steps_and_values(u: torch.Tensor, count: torch.Tensor, inner: torch.Tensor, values: torch.Tensor):
    """The bucket look-up of ``fast_crossing_steps``, the decoding of its steps and the spikes per row, on a
    float32 ``u`` of shape ``[B, n]``."""
    index = (u.view(torch.int32) >> _BUCKET_SHIFT) & (_BUCKETS - 1)
    steps = count[index] + (u < inner[index]).to(count.dtype)
    return steps, values[steps], (steps < values.numel() - 1).sum(1)


def _compiled(function):
    if function not in _COMPILED:
        _COMPILED[function] = torch.compile(function, dynamic=True)  # one graph for every layer's size
    return _COMPILED[function]


def mark_crossings(steps: torch.Tensor, potential: torch.Tensor, threshold: torch.Tensor, k: int,
                   buffers: Optional[tuple] = None) -> torch.Tensor:
    """``steps`` with ``k`` wherever ``potential >= threshold``, for a step ``k`` no later than any in ``steps`` (the
    engines mark their crossings latest step first), in place. ``buffers``: ``crossing_buffers(steps, potential)``,
    reused from call to call. ``fuse_elementwise`` leaves it alone: compiled by ``torch.compile`` it ran slower
    than these passes on a CPU."""
    # k where the potential crosses, the dtype's largest step elsewhere (NaN never crosses), then the minimum.
    # The comparison is written in the potential's own dtype: a CPU vectorizes that, not a bool or integer
    # output (measured 0.2 against 0.6-0.8 ms on 2M potentials); its 1.0/0.0 is then cast exactly to the steps' dtype.
    compared, marks = buffers if buffers is not None else crossing_buffers(steps, potential)
    largest = torch.iinfo(steps.dtype).max
    marks.copy_(torch.ge(potential, threshold, out=compared))
    marks.mul_(k - largest).add_(largest)
    return torch.minimum(steps, marks, out=steps)


def crossing_buffers(steps: torch.Tensor, potential: torch.Tensor) -> tuple:
    """The scratch tensors of :func:`mark_crossings` for ``steps`` and ``potential`` of one shape."""
    return (torch.empty(potential.shape, dtype=potential.dtype, device=potential.device),
            torch.empty(potential.shape, dtype=steps.dtype, device=steps.device))


def spikes_per_image(steps: torch.Tensor, T: int) -> torch.Tensor:
    """[B] number of neurons whose step is below ``T`` (``T`` = no spike) in each image of ``steps`` ``[B, ...]``."""
    fired = steps.reshape(len(steps), -1) < T
    return fired.view(torch.uint8).sum(1, dtype=torch.int32).long()  # no int64 copy of every neuron


def fire_and_decode(u: torch.Tensor, table: torch.Tensor, values: torch.Tensor, finite: bool = False):
    """``(steps, values[steps], spikes)`` with ``steps = fast_crossing_steps(u, table, finite)``: when each neuron
    of ``u`` ``[B, ...]`` fires, the value its spike carries and the spikes of each image. The steps are int32
    where the bucket look-up applies (half the bytes of int64 to write); with ``fuse_elementwise`` all three
    come from one fused pass."""
    if fuse_elementwise:
        buckets = _buckets_for(u, table, finite)
        if buckets is not None:
            inner, count = buckets
            steps, decoded, spikes = _compiled(_steps_and_values)(u.contiguous().view(len(u), -1), count, inner, values)
            return steps.view(u.shape), decoded.view(u.shape), spikes.long()
    steps = fast_crossing_steps(u, table, finite)
    return steps, lookup(values, steps), spikes_per_image(steps, table.numel())
