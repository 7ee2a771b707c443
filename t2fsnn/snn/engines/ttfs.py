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

Inside this module a local step equal to ``T`` means "no spike" (it indexes the
0 appended to every threshold table); public results use ``-1``.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from tqdm import tqdm

from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.kernels import (crossing_buffers, crossing_steps, fast_crossing_steps, fire_and_decode, lookup,
                                mark_crossings, spikes_per_image, threshold_table)
from t2fsnn.snn.engines import register
from t2fsnn.snn.engines.result import SimulationResult, SpikeTimes

__all__ = ["simulate_exact", "simulate_clock", "layer_fire_steps", "local_fire_steps", "trace_clock", "ClockTrace",
           "certify_against_clock", "Certificate", "rounding_bound", "EARLY_FIRING_METHODS", "early_firing_method",
           "chosen_early_firing_method", "engine_sums"]

# upper bound on the values held at once when stacking partial integrations
_STACK_BUDGET = 2 ** 25
# early firing stacks all of a layer's partial cutoffs into one batch up to this many input values
_ONE_BATCH = 2 ** 23


def _layer_table(cfg: TTFSConfig, tau: float, td: float, like: torch.Tensor) -> torch.Tensor:
    """Thresholds of local steps 0..T-1 followed by 0, the decoded value of 'no spike'."""
    zero = torch.zeros(1, dtype=like.dtype, device=like.device)
    return torch.cat([threshold_table(cfg.T, tau, td, cfg.theta0, dtype=like.dtype, device=like.device), zero])


def _tables(net, cfg: TTFSConfig, like: torch.Tensor) -> list[torch.Tensor]:
    taus, tds = cfg.per_layer(net.num_spiking_layers)
    return [_layer_table(cfg, tau, td, like) for tau, td in zip(taus, tds)]


def _public(steps: torch.Tensor, T: int) -> torch.Tensor:
    return torch.where(steps < T, steps, torch.full_like(steps, -1))


def _internal(steps: torch.Tensor, T: int) -> torch.Tensor:
    return torch.where(steps >= 0, steps, torch.full_like(steps, T))


def _route_steps(block, steps: torch.Tensor, T: int):
    """Apply the block's leading max-pools and flattens to spike steps instead of values.

    The kernel decreases, so the largest decoded value of a window is its earliest
    spike: max-pooling values equals min-pooling steps, done once for all cutoffs.
    Returns the routed steps and the routing modules still to apply to values.
    """
    modules = list(block.routing)
    position = 0
    while position < len(modules) and isinstance(modules[position], (nn.MaxPool2d, nn.Flatten)):
        module = modules[position]
        if isinstance(module, nn.MaxPool2d):
            steps = (-module(-steps.to(torch.float32))).clamp_(max=T).long()  # padding counts as no spike
        else:
            steps = module(steps)
        position += 1
    return steps, modules[position:]


def _integrate(block, routed: torch.Tensor, rest: list, table: torch.Tensor) -> torch.Tensor:
    """Membrane potentials from routed spike steps: remaining (linear) routing, then the synapse."""
    values = lookup(table, routed)
    for module in rest:
        values = module(values)
    return block.synapse(values)


def _stacked(block, routed: torch.Tensor, rest: list, table: torch.Tensor, cutoffs: list[int], T: int) -> torch.Tensor:
    """Potentials with only the spikes up to each step in ``cutoffs``: [len(cutoffs), B, ...]."""
    per_cutoff = max(1, routed.numel())
    chunk = max(1, _STACK_BUDGET // per_cutoff)
    outputs = []
    for start in range(0, len(cutoffs), chunk):
        part = torch.tensor(cutoffs[start:start + chunk], device=routed.device)
        arrived = routed.unsqueeze(0) <= part.view((-1,) + (1,) * routed.dim())
        values = torch.where(arrived, lookup(table, routed).unsqueeze(0), 0.0).flatten(0, 1)
        for module in rest:
            values = module(values)
        outputs.append(block.synapse(values).unflatten(0, (len(part), len(routed))))
    return torch.cat(outputs)


def _bounded(block, table: torch.Tensor) -> bool:
    """Whether every potential of ``block`` is finite for inputs decoded with ``table``: ``max|x| * sum|w| + |b|`` stays far from overflow."""
    weight = block.synapse.weight.detach()
    reach = torch.linalg.vector_norm(weight.flatten(1), ord=1, dim=1).double().max() * table.abs().max().double()
    if block.synapse.bias is not None:
        reach = reach + block.synapse.bias.detach().abs().max().double()
    return bool(reach < 1e30)


def _ascending(keys: torch.Tensor, bound: int) -> torch.Tensor:
    """The stable ascending order of non-negative integer ``keys`` below ``bound``: as int16 where they fit, which
    torch sorts several times faster than int64 (and a descending sort is slower still)."""
    return torch.argsort(keys.to(torch.int16) if bound <= 2 ** 15 else keys, stable=True)


def _late_events(routed: torch.Tensor, first: int, last: int):
    """Flat indices of the routed inputs that arrive at steps ``first .. last``, latest first, and their counts per step."""
    flat = routed.reshape(-1)
    late = ((flat >= first) & (flat <= last)).nonzero().squeeze(1)
    arrival = flat.index_select(0, late)
    order = _ascending(last - arrival, last - first + 1)  # latest first
    late = late.index_select(0, order)
    counts = torch.bincount(arrival - first, minlength=last - first + 1).flip(0).tolist()
    return late, counts


# How early firing finds the partial potentials of the first T-1-s local steps (see _fire_steps):
# "cutoffs" applies the synapse once per step; "events" starts from the complete potential and, latest
# step first, subtracts the inputs that arrive at each step as a sparse product (CSR rows: the grid cells
# they reach, columns: kernel offset and channel), so its cost follows the few late inputs, not the layer;
# "candidates" bounds every neuron's partial potentials with two passes over the synapses and sums,
# step by step, the inputs of the neurons the bound cannot rule out. "auto" takes "events" on the CPU
# and "cutoffs" elsewhere (benchmarks/benchmark.py measures them against each other).
# All agree with the clock up to float32 rounding (the book's primer states the rule).
EARLY_FIRING_METHODS = ("auto", "cutoffs", "events", "candidates")
#: How the exact engine finds the early-firing partial sums: one of ``EARLY_FIRING_METHODS``.
early_firing_method = "auto"
# CSR rows laid out at once by the events method
_EVENT_ROWS_BUDGET = 2 ** 22
# values held at once while summing the candidates' inputs
_CANDIDATE_BUDGET = 2 ** 22


def _fire_steps(block, prev_steps, prev_table, table, T: int, s: int) -> torch.Tensor:
    """Local fire steps of one layer (``T`` = none) from its inputs' local steps.

    The complete input gives every neuron's crossing in closed form. With early firing,
    local steps ``0 .. partial-1`` of the fire phase see only the inputs that arrived by
    step ``s + k`` of the previous layer (``partial = T - 1 - s``); there the potential is
    that of the clock, the synapse applied to the spikes received so far.
    """
    routed, rest = _route_steps(block, prev_steps, T)
    values = lookup(prev_table, routed)
    partial = max(0, T - 1 - s)
    potential = _through(block, rest, values)
    bounded = _bounded(block, prev_table)
    steps = fast_crossing_steps(potential, table[:T], finite=bounded)
    if partial == 0:
        return steps
    first = steps.clamp_min_(partial)  # crossings with the complete input happen no earlier than this
    method = chosen_early_firing_method(potential.device)
    if method == "candidates" and _sums_inputs(block, rest):
        return _early_by_candidates(block.synapse, routed, values, potential, first, table, prev_table, s, partial)
    if method == "events" and _sums_inputs(block, rest) and bounded:
        return _early_by_events(block.synapse, routed, potential, first, table, prev_table, s, partial, T)
    return _early_by_cutoffs(block, routed, rest, values, first, table, prev_table, s, partial, T)


def chosen_early_firing_method(device) -> str:
    """The early-firing method ``early_firing_method`` names, with "auto" resolved for ``device``."""
    if early_firing_method not in EARLY_FIRING_METHODS:
        raise ValueError(f"early_firing_method={early_firing_method!r} is not allowed: choose one of "
                         f"{', '.join(map(repr, EARLY_FIRING_METHODS))}")
    if early_firing_method == "auto":
        return "events" if torch.device(device).type == "cpu" else "cutoffs"
    return early_firing_method


def engine_sums(method: str) -> int:
    """How many times the method's float sum may hold each input's term: the events method adds a late
    input in the complete potential and subtracts it again, so its error bound counts such terms twice."""
    return 2 if method == "events" else 1


def _event_layout(synapse, routed: torch.Tensor):
    """Where the inputs sit in the potential buffer, and what each kernel offset adds.

    A linear synapse: one row per image, one column per input feature. A convolution: the
    inputs of every image sit in a zero-padded grid with room for the kernel, one row per grid
    cell, one column per channel; kernel offset ``(i, j)`` sends a cell's input to the potential
    ``shift`` rows further on. Returns the grid's ``(height, width)`` (``None`` for a linear
    synapse) and, per offset, ``(shift, weight block [in, out])``.
    """
    weight = synapse.weight.detach()
    if isinstance(synapse, nn.Linear):
        return None, [(0, weight.t().contiguous())]
    (kh, kw), (dh, dw), (ph, pw) = synapse.kernel_size, synapse.dilation, synapse.padding
    height, width = routed.shape[-2] + 2 * ph + (kh - 1) * dh, routed.shape[-1] + 2 * pw + (kw - 1) * dw
    blocks = [((kh - 1 - i) * dh * width + (kw - 1 - j) * dw, weight[:, :, i, j].t().contiguous())
              for i in range(kh) for j in range(kw)]
    return (height, width), blocks


def _arrival_layout(keys, channels, shifts, rows: int, inputs: int):
    """CSR layout of arriving inputs, several steps at once: ``crow`` over ``bins * rows`` rows, and the columns.

    ``keys = bin * rows + cell`` is sorted. Input ``(cell, channel)`` of a step sits in its rows
    ``cell + shift`` and columns ``offset * inputs + channel``, one per kernel offset. Filling each
    row offset by offset lays the entries out in CSR order (columns ascending within a row)
    without a comparison sort. Indices are int32 where they fit: half the bytes of int64 to move.
    """
    count = int(keys[-1]) // rows * rows + rows
    index = torch.int32 if len(keys) * len(shifts) < 2 ** 31 and count < 2 ** 31 else torch.long
    keys, shifts = keys.to(index), shifts.to(index)
    targets = keys.unsqueeze(0) + shifts.unsqueeze(1)  # [offsets, n]
    distinct, per_key = torch.unique_consecutive(keys, return_counts=True)
    per_key = per_key.to(index)
    reached = distinct.unsqueeze(0) + shifts.unsqueeze(1)  # [offsets, distinct keys]: fewer than the targets
    crow = torch.zeros(count + 1, dtype=index, device=keys.device)
    for rows_reached in reached:
        crow[1:].index_add_(0, rows_reached, per_key)
    crow.cumsum_(0)
    rank = torch.arange(len(keys), dtype=index, device=keys.device) - \
        (per_key.cumsum(0, dtype=index) - per_key).repeat_interleave(per_key)
    free = crow[:-1].clone()  # the next free place of each row
    columns = torch.empty(targets.numel(), dtype=torch.int32, device=keys.device)
    channels = channels.int()
    for o in range(len(shifts)):  # a row holds the entries of the earlier offsets first
        columns.index_put_((free.index_select(0, targets[o]).add_(rank),), channels + o * inputs)
        free.index_add_(0, reached[o], per_key)  # distinct rows: index_add_ is twice as fast as += here
    return crow, columns


def _csr(crow, columns, values, shape):
    with warnings.catch_warnings():  # torch marks its sparse CSR support as beta; the certificate tests hold this use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, columns, values, shape, check_invariants=False)


def _early_by_events(synapse, routed, potential, first, table, prev_table, s: int, partial: int, T: int):
    """Partial potentials from the complete one, latest step first, minus the inputs arriving at each step.

    Only the inputs arriving after step ``s`` are touched, each once, in one sparse matrix
    product per step; the potentials are compared with the threshold at every early step.
    """
    grid, blocks = _event_layout(synapse, routed)
    batch, outputs = potential.shape[0], potential.shape[1]
    shifts = torch.tensor([shift for shift, _ in blocks], device=routed.device)
    weights = torch.cat([weight for _, weight in blocks])  # [offsets * in, out]
    if grid is not None:
        # channels last: an image's cells in row order, channels inside; one flat index per input is cheaper
        # to find and take apart than the four columns of a 4-d nonzero
        channels_in, image_h, image_w = routed.shape[1:]
        cells = routed.permute(0, 2, 3, 1).reshape(-1)
        where = ((cells > s) & (cells < T)).nonzero().squeeze(1)
        arrival = cells.index_select(0, where)
        columns, cell = where % channels_in, where // channels_in
        height, width = grid
        (ph, pw), (sh, sw) = synapse.padding, synapse.stride
        image_row = cell // image_w  # image * image_h + row
        rows = (image_row + image_row // image_h * (height - image_h) + ph) * width + cell % image_w + pw
        count = batch * height * width
        buffer = potential.new_zeros(count + int(shifts.max()), outputs)
        top, left = (synapse.kernel_size[0] - 1) * synapse.dilation[0], (synapse.kernel_size[1] - 1) * synapse.dilation[1]
        out_h, out_w = potential.shape[-2:]
        current = buffer[:count].view(batch, height, width, outputs)[
            :, top:top + (out_h - 1) * sh + 1:sh, left:left + (out_w - 1) * sw + 1:sw]
        current.copy_(potential.permute(0, 2, 3, 1))
        small = torch.int8 if T < 2 ** 7 else torch.int16 if T < 2 ** 15 else first.dtype
        fired = torch.empty(current.shape, dtype=small, device=first.device)
        fired.copy_(first.permute(0, 2, 3, 1))  # channels last as the potentials, and less to write per step
    else:
        late = (routed > s) & (routed < T)
        where = late.nonzero()
        rows, columns, arrival = where[:, 0], where[:, 1], routed[late]
        buffer = potential.clone()
        current, fired = buffer, first
    bins = T - 1 - arrival  # 0: step T-1, 1: step T-2, ..
    order = _ascending(bins, T)  # latest first; rows stay sorted within a step
    bins = bins.index_select(0, order)
    rows, columns = rows.index_select(0, order), columns.index_select(0, order)
    height = len(buffer)
    shape = (height, len(shifts) * len(blocks[0][1]))
    bounds = torch.searchsorted(bins, torch.arange(T - s, device=bins.device)).tolist()  # first event of each bin
    chunk = max(1, _EVENT_ROWS_BUDGET // height)  # bins laid out at once
    layout = {}
    # the values of one step's matrix, all the decoded value of that step: one buffer refilled, not allocated per step
    entries = potential.new_empty(max(b1 - b0 for b0, b1 in zip(bounds, bounds[1:])) * len(shifts))

    def subtract(step: int) -> None:
        b = T - 1 - step
        if bounds[b] == bounds[b + 1]:
            return
        if b not in layout:  # lay out this bin and the next ones in one go
            last = min(T - 1 - s, b + chunk)
            lo, hi = bounds[b], bounds[last]
            crow, cols = _arrival_layout((bins[lo:hi] - b) * height + rows[lo:hi], columns[lo:hi], shifts, height,
                                         len(blocks[0][1]))
            layout.clear()
            for j in range(b, last):
                if bounds[j] < bounds[j + 1]:
                    start = (j - b) * height
                    row_pointers = crow[start:start + height + 1]
                    layout[j] = ((row_pointers - row_pointers[0]).int(), cols[int(row_pointers[0]):int(row_pointers[-1])])
        row_pointers, cols = layout[b]
        values = entries[:len(cols)].fill_(prev_table[step])
        buffer.addmm_(_csr(row_pointers, cols, values, shape), weights, alpha=-1)

    subtract(T - 1)  # inputs arriving at the last step never count in the early window
    buffers = crossing_buffers(fired, current)
    for k in reversed(range(partial)):  # latest step first, so the earliest crossing is written last
        fired = mark_crossings(fired, current, table[k], k, buffers)
        if k:
            subtract(s + k)
    if fired is not first:
        first.copy_(fired.permute(0, 3, 1, 2) if grid is not None else fired)
    return first


def _early_by_cutoffs(block, routed, rest, values, first, table, prev_table, s: int, partial: int, T: int):
    """The partial potentials of every neuron at every early step, one application of the synapse per step."""
    if routed.numel() * partial <= _ONE_BATCH:  # small layers: every cutoff in one batch, fewer and larger calls
        potentials = _stacked(block, routed, rest, prev_table, [s + k for k in range(partial)], T)
        buffers = crossing_buffers(first, potentials[0])
        for k in reversed(range(partial)):
            first = mark_crossings(first, potentials[k], table[k], k, buffers)
        return first
    # inputs still to arrive at the last partial cutoff (step T-1) never count; those at s+1 .. T-2 leave one by one
    arrived = values.masked_fill(routed >= T - 1, 0.0)
    late, counts = _late_events(routed, s + 1, T - 2)
    flat = arrived.view(-1)
    position = 0
    potential = buffers = None
    for k in reversed(range(partial)):  # latest cutoff first, so the earliest crossing is written last
        if k < partial - 1:
            leaving = counts[partial - 2 - k]  # the inputs that arrive at step s + k + 1
            if leaving:
                flat.index_fill_(0, late[position:position + leaving], 0.0)
                position += leaving
                potential = None
        if potential is None:
            potential = _through(block, rest, arrived)
            if buffers is None:
                buffers = crossing_buffers(first, potential)
        first = mark_crossings(first, potential, table[k], k, buffers)
    return first


def _sums_inputs(block, rest: list) -> bool:
    """Whether the synapse is a plain weighted sum of the routed inputs that ``unfold`` can lay out."""
    synapse = block.synapse
    if rest:
        return False
    if isinstance(synapse, nn.Linear):
        return True
    return (isinstance(synapse, nn.Conv2d) and synapse.groups == 1 and synapse.padding_mode == "zeros"
            and not isinstance(synapse.padding, str))


def rounding_bound(synapse, largest_input: float, sums: int = 1) -> torch.Tensor:
    """Per output channel, a bound on the float error of a potential summed in any order.

    ``gamma_n * (sums * sum_i |w_i| * max x + |b|)`` with ``gamma_n = n u / (1 - n u)``, ``u`` the
    unit roundoff of the weights' dtype and ``n = sums * fan-in + 1`` (Higham, Accuracy and
    Stability of Numerical Algorithms, section 3.1): every input lies in ``[0, largest_input]``,
    and a sum that holds each input's term up to ``sums`` times (added, then subtracted again)
    is a float sum of that many terms.
    """
    weight = synapse.weight.detach().flatten(1).double()
    n = sums * weight.shape[1] + 1
    u = torch.finfo(synapse.weight.dtype).eps / 2
    reach = sums * weight.abs().sum(1) * float(largest_input)
    if synapse.bias is not None:
        reach = reach + synapse.bias.detach().double().abs()
    return (n * u / (1 - n * u)) * reach


def _apply(synapse, values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The synapse's weighted sum with other weights and no bias."""
    if isinstance(synapse, nn.Linear):
        return nn.functional.linear(values, weight)
    return nn.functional.conv2d(values, weight, None, synapse.stride, synapse.padding, synapse.dilation)


def _early_by_candidates(synapse, routed, values, potential, first, table, prev_table, s: int, partial: int):
    """Early crossings found by summing, step by step, only the inputs of neurons that may cross early.

    A neuron's potential at early step ``k`` is the complete one minus the inputs arriving after
    ``s + k``; inputs are non-negative, so it never exceeds the complete potential plus the
    negative contributions of all inputs arriving after ``s``. A neuron whose bound (with the
    float rounding of both sums) stays below the lowest early threshold cannot cross early.
    """
    shape = (1, -1) + (1,) * (potential.dim() - 2)
    late = values.masked_fill(routed <= s, 0.0)
    lost = _apply(synapse, late, (-synapse.weight).clamp_min(0))
    margin = (3 * rounding_bound(synapse, float(prev_table.max()))).to(potential.dtype).view(shape)
    candidates = ((potential + lost + margin) >= table[partial - 1]).nonzero()
    if len(candidates) == 0:
        return first
    bucket = (routed - s).clamp_(0, partial).to(values.dtype)  # 0: arrived by step s; partial: never early
    weight = synapse.weight.detach().flatten(1)
    n = weight.shape[1]
    bias = synapse.bias.detach() if synapse.bias is not None else torch.zeros(len(weight), dtype=weight.dtype,
                                                                              device=weight.device)
    conv = isinstance(synapse, nn.Conv2d)
    if conv:
        layout = dict(kernel_size=synapse.kernel_size, dilation=synapse.dilation, padding=synapse.padding,
                      stride=synapse.stride)
        width = potential.shape[-1]
        per_image = n * potential.shape[-1] * potential.shape[-2]
    else:
        per_image = n
    images_per_chunk = max(1, (4 * _CANDIDATE_BUDGET) // max(1, per_image))
    starts = torch.searchsorted(candidates[:, 0].contiguous(),
                                torch.arange(0, len(values) + images_per_chunk, images_per_chunk,
                                             device=candidates.device))
    thresholds = table[:partial]
    for chunk, (lo, hi) in enumerate(zip(starts[:-1].tolist(), starts[1:].tolist())):
        if lo == hi:
            continue
        first_image = chunk * images_per_chunk
        images = slice(first_image, first_image + images_per_chunk)
        if conv:
            x_cols = nn.functional.unfold(values[images], **layout)  # [b, n, positions]
            k_cols = nn.functional.unfold(bucket[images], **layout)
        for start in range(lo, hi, max(1, _CANDIDATE_BUDGET // n)):
            part = candidates[start:min(hi, start + max(1, _CANDIDATE_BUDGET // n))]
            image, channel = part[:, 0] - first_image, part[:, 1]
            if conv:
                where = part[:, 2] * width + part[:, 3]
                x, k = x_cols[image, :, where], k_cols[image, :, where].long()
            else:
                x, k = values[images][image], bucket[images][image].long()
            x = x * weight.index_select(0, channel)
            sums = torch.zeros(len(part), partial + 1, dtype=x.dtype, device=x.device).scatter_add_(1, k, x)
            partial_potential = sums[:, :partial].cumsum_(1).add_(bias.index_select(0, channel).unsqueeze(1))
            crosses = partial_potential >= thresholds
            early = crosses.any(1)
            if bool(early.any()):
                index = tuple(part[early].t())
                first[index] = crosses[early].int().argmax(1).to(first.dtype)  # the first early step that crosses
    return first


def _through(block, rest: list, values: torch.Tensor) -> torch.Tensor:
    for module in rest:
        values = module(values)
    return block.synapse(values)


def _result(net, cfg, steps, potentials_over_window, batch, spikes: Optional[list] = None) -> SimulationResult:
    """Assemble the result from local fire steps (``T`` = none), the output potential of each window step and,
    where known, each layer's spikes per image."""
    L, T, s = net.num_spiking_layers, cfg.T, cfg.stride
    latency = cfg.latency(L)
    per_layer = torch.stack(spikes if spikes is not None else [spikes_per_image(k, T) for k in steps], 1)
    predictions_over_time = torch.full((latency, batch), -1, dtype=torch.long, device=per_layer.device)
    predictions_over_time[(L - 1) * s:] = potentials_over_window.argmax(-1)
    return SimulationResult.from_run(predictions_over_time, per_layer, potentials_over_window[-1],
                                     spike_times=SpikeTimes(steps, [l * s for l in range(L)], T))


@torch.no_grad()
def simulate_exact(net, x: torch.Tensor, cfg: TTFSConfig, progress: bool = False) -> SimulationResult:
    """Spike steps in closed form per layer; partial sums only where early firing needs them.

    ``x``: images that ``net.check_input`` accepted (finite), as ``net.simulate`` passes them.
    """
    T, s = cfg.T, cfg.stride
    tables = _tables(net, cfg, x)
    if T - 1 - s <= 0:  # no early firing: each block on the decoded spikes, as the clock's last step computes it
        k, decoded, fired = fire_and_decode(x, tables[0][:T], tables[0], finite=True)
        steps, spikes = [k], [fired]
        for l in tqdm(range(1, net.num_spiking_layers), desc="layers", disable=not progress, leave=False):
            block = net.blocks[l - 1]
            k, decoded, fired = fire_and_decode(block(decoded), tables[l][:T], tables[l],
                                                finite=_bounded(block, tables[l - 1]))
            steps.append(k)
            spikes.append(fired)
    else:
        spikes = None
        steps = [fast_crossing_steps(x, tables[0][:T])]
        for l in tqdm(range(1, net.num_spiking_layers), desc="layers", disable=not progress, leave=False):
            steps.append(_fire_steps(net.blocks[l - 1], steps[-1], tables[l - 1], tables[l], T, s))
    window = _output_window(net.blocks[-1], steps[-1], tables[-1], T)
    return _result(net, cfg, steps, window, len(x), spikes)


def _output_window(block, steps: torch.Tensor, table: torch.Tensor, T: int) -> torch.Tensor:
    """The output layer's potential at each local step ``0 .. T-1`` of the last hidden layer: ``[T, B, classes]``.

    As the clock: the block applied to the spikes sent up to each step. The spikes are written
    into one buffer in order of arrival, each once, and the block runs on it at every step with
    the clock's own input and batch shape. Routing that only selects spikes (max-pooling,
    flattening) runs once, on the steps.
    """
    routed, rest = _route_steps(block, steps, T)
    flat = routed.reshape(-1)
    order = _ascending(flat, T + 1)
    bounds = torch.bincount(flat, minlength=T + 1)[:T].cumsum(0).tolist()
    values = lookup(table, flat)
    buffer = torch.zeros_like(values)
    arrived = buffer.view(routed.shape)
    outputs, start = [], 0
    for k in range(T):
        if bounds[k] > start:
            spikes = order[start:bounds[k]]
            buffer.index_copy_(0, spikes, values.index_select(0, spikes))
            start = bounds[k]
        outputs.append(_through(block, rest, arrived))
    return torch.stack(outputs)


def _clock(net, x: torch.Tensor, cfg: TTFSConfig, progress: bool = False,
           observe: Optional[Callable] = None) -> SimulationResult:
    """The reference loop: every step, every active layer integrates and compares with its threshold.

    ``observe(t, membranes, output)`` is called after each step, for recording.
    """
    L, T, s = net.num_spiking_layers, cfg.T, cfg.stride
    tables = _tables(net, cfg, x)
    shapes = [a.shape[1:] for a in net.activations(x[:1])]
    steps = [torch.full((len(x),) + tuple(shape), T, dtype=torch.long, device=x.device) for shape in shapes]
    traces = [torch.zeros((len(x),) + tuple(shape), dtype=x.dtype, device=x.device) for shape in shapes]
    membranes: list = [x] + [None] * (L - 1)
    outputs = []
    for t in tqdm(range(cfg.latency(L)), desc="steps", disable=not progress, leave=False):
        for l in range(L):
            if l > 0 and (l - 1) * s <= t < l * s + T:  # integrating or firing
                membranes[l] = net.blocks[l - 1](traces[l - 1])
            k = t - l * s
            if 0 <= k < T:  # fire phase: compare with the dynamic threshold
                fire = (steps[l] == T) & (membranes[l] >= tables[l][k])
                steps[l] = torch.where(fire, k, steps[l])
                traces[l] = torch.where(fire, tables[l][k], traces[l])
        output = net.blocks[-1](traces[L - 1]) if t >= (L - 1) * s else None
        if output is not None:
            outputs.append(output)
        if observe is not None:
            observe(t, membranes, output)
    return _result(net, cfg, steps, torch.stack(outputs), len(x))


@torch.no_grad()
def simulate_clock(net, x: torch.Tensor, cfg: TTFSConfig, progress: bool = False) -> SimulationResult:
    """The clock-driven reference engine."""
    return _clock(net, x, cfg, progress)


@torch.no_grad()
def layer_fire_steps(net, cfg: TTFSConfig, layer: int, inputs: torch.Tensor) -> torch.Tensor:
    """Local fire steps (``0 .. T-1``, ``-1`` = no spike) of one spiking layer, as ``simulate_exact`` computes them.

    ``layer = 0`` is the input layer and ``inputs`` the images; for ``layer >= 1``,
    ``inputs`` are the local fire steps of spiking layer ``layer - 1``. The kernels
    (and early firing) are those of ``cfg``, so a caller can change one layer's
    kernel and recompute only the layers after it.
    """
    L = net.num_spiking_layers
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or not 0 <= layer < L:
        raise ValueError(f"layer={layer!r} is not allowed: choose a spiking layer 0 .. {L - 1}")
    taus, tds = cfg.per_layer(L)
    dtype = next(net.parameters()).dtype
    like = torch.empty(0, dtype=dtype, device=inputs.device)
    table = _layer_table(cfg, taus[layer], tds[layer], like)
    if layer == 0:
        return _public(fast_crossing_steps(inputs.to(dtype), table[:cfg.T]), cfg.T)
    prev_table = _layer_table(cfg, taus[layer - 1], tds[layer - 1], like)
    steps = _fire_steps(net.blocks[layer - 1], _internal(inputs, cfg.T), prev_table, table, cfg.T, cfg.stride)
    return _public(steps, cfg.T)


@torch.no_grad()
def local_fire_steps(net, x: torch.Tensor, cfg: TTFSConfig) -> list[torch.Tensor]:
    """Local fire steps of every spiking layer (input first) for images ``x``; ``-1`` = no spike."""
    steps = [layer_fire_steps(net, cfg, 0, x)]
    for layer in range(1, net.num_spiking_layers):
        steps.append(layer_fire_steps(net, cfg, layer, steps[-1]))
    return steps


@dataclass
class Certificate:
    """How the exact engine's spike steps compare with the clock's, layer by layer, on the clock's own inputs.

    differing:   neurons whose step differs, per spiking layer after the input (the input layer is identical);
    certified:   those whose clock potential, at the earlier of the two steps, lies within the float32
                 rounding bound of the threshold (:func:`rounding_bound`, both sums counted);
    uncertified: ``(layer, index, clock step, exact step, potential, threshold, bound)`` of every other one.
    """

    differing: list
    certified: list
    uncertified: list


@torch.no_grad()
def certify_against_clock(net, x: torch.Tensor, cfg: TTFSConfig) -> Certificate:
    """Compare the exact engine with the clock neuron by neuron and certify every difference.

    Each layer is computed by both engines from the clock's spikes of the layer below, so a
    difference never propagates. A neuron may fire at another step only where the clock's
    potential at the earlier of the two steps is within the rounding bound of both sums of the
    threshold (:func:`rounding_bound` for the clock, plus the engine's, which counts twice the terms
    that the events method adds and subtracts again): a float32 sum of the same terms in another
    order can then fall on either side.
    """
    cfg.per_layer(net.num_spiking_layers)
    x = net.check_input(x)
    T, s = cfg.T, cfg.stride
    clock = [torch.where(steps >= 0, steps - l * s, torch.full_like(steps, T))  # global to local steps, T = none
             for l, steps in enumerate(_clock(net, x, cfg).spike_times)]
    tables = _tables(net, cfg, x)
    differing, certified, uncertified = [], [], []
    for l in range(1, net.num_spiking_layers):
        block = net.blocks[l - 1]
        exact = _fire_steps(block, clock[l - 1], tables[l - 1], tables[l], T, s)
        where = (exact != clock[l]).nonzero()
        differing.append(len(where))
        ok = 0
        largest = float(tables[l - 1].max())
        bound = rounding_bound(block.synapse, largest) + rounding_bound(
            block.synapse, largest, engine_sums(chosen_early_firing_method(x.device)))
        earlier = torch.minimum(exact, clock[l])[tuple(where.t())]
        for k in earlier.unique().tolist():
            chosen = where[earlier == k]
            arrived = torch.where(clock[l - 1] <= s + k, clock[l - 1], torch.full_like(clock[l - 1], T))
            potential = block(lookup(tables[l - 1], arrived))[tuple(chosen.t())]
            gap = (potential.double() - float(tables[l][k])).abs()
            limit = bound.to(gap.device)[chosen[:, 1]]
            ok += int((gap <= limit).sum())
            for row, g, b, u in zip(chosen.tolist(), gap.tolist(), limit.tolist(), potential.tolist()):
                if g > b:
                    uncertified.append((l, tuple(row), int(clock[l][tuple(row)]), int(exact[tuple(row)]), u,
                                        float(tables[l][k]), b))
        certified.append(ok)
    return Certificate(differing, certified, uncertified)


def _run(net, x, cfg, engine: str = "exact", progress: bool = False) -> SimulationResult:
    if engine not in ("exact", "clock"):
        raise ValueError(f"engine={engine!r} is not allowed: choose 'exact' or 'clock'")
    cfg.per_layer(net.num_spiking_layers)  # checks the per-layer lengths before any work
    x = net.check_input(x)
    if engine == "exact" and cfg.ef_start is not None:
        chosen_early_firing_method(x.device)  # an unknown method is refused before any work
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
    L = net.num_spiking_layers
    if layers is not None:
        layers = list(layers)
        bad = [l for l in layers if not isinstance(l, int) or not 0 <= l <= L]
        if bad:
            raise ValueError(f"layers={layers!r} is not allowed: give indices 0 .. {L} "
                             f"(spiking layers, input first, then the output layer)")
    cfg.per_layer(L)
    x = net.check_input(x)
    T, s = cfg.T, cfg.stride
    latency = cfg.latency(L)
    activations = net.activations(x[:1])
    sizes = [a[0].numel() for a in activations] + [net.blocks[-1](activations[-1]).shape[1]]
    kept = [n if max_neurons is None else min(n, max_neurons) for n in sizes]
    kept = [n if layers is None or l in layers else 0 for l, n in enumerate(kept)]
    recorded = [torch.full((latency, len(x), n), float("nan"), dtype=x.dtype, device=x.device) for n in kept]
    thresholds = torch.full((latency, L), float("nan"), dtype=torch.float64)
    tables = _tables(net, cfg, x)
    for l in range(L):
        thresholds[l * s:l * s + T, l] = tables[l][:T].double().cpu()

    def observe(t, membranes, output):
        for l, membrane in enumerate(membranes):
            if membrane is not None:
                recorded[l][t] = membrane.flatten(1)[:, :kept[l]]
        if output is not None:
            recorded[L][t] = output.flatten(1)[:, :kept[L]]

    result = _clock(net, x, cfg, observe=observe)
    return ClockTrace(result, recorded, thresholds, list(net.layer_names) + [net.output_name], T, s)


register(TTFSConfig, _run)
