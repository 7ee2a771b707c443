"""The clock-driven simulation loop shared by the rate, phase and burst codings.

Every coding is described by a :class:`Coding`: how the input layer turns pixels into
spikes, how a hidden neuron integrates and fires, and when the biases are injected.
The loop below is the same for all of them:

* one step at a time; within a step the layers are updated in order, so a spike
  reaches the next layer in the step it is fired;
* a layer's input current is ``W . s(t) + g(t) * b``, where ``s(t)`` holds the
  values of the spikes sent in step ``t`` (zero where none) and ``g(t)`` is the
  coding's bias gate (every step for rate coding, once per period or cycle otherwise);
* max-pooling passes, in each window, the spikes of the neuron that has sent the most
  value so far (spike-count gating, as in the authors' ``spike_max_pool``);
  average pooling and flattening act on the spikes directly;
* the output layer integrates its input current and never fires; the prediction at
  each step is the argmax of its potential.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from t2fsnn.snn.engines.result import SimulationResult

__all__ = ["Coding", "simulate_coding", "synaptic_current", "route", "gated"]

Gate = Union[float, torch.Tensor]


class Neuron:
    """State of one spiking layer; ``step`` returns ``(sent values, fired mask)``."""

    def step(self, current: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


class Coding:
    """One neural coding: its input layer, its hidden neurons and its bias schedule.

    ``constant_input``: the input layer sends the same values, and the first layer gets the
    same bias, at every step (so the first layer's current is computed once).
    """

    constant_input = False

    def start(self, x: torch.Tensor) -> None:
        """Reset the input layer for a new batch of images ``x``."""
        raise NotImplementedError

    def input_step(self, t: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Values sent by the input layer in step ``t`` and its spikes (``None``: no spikes, a current)."""
        raise NotImplementedError

    def bias_gate(self, t: int) -> Gate:
        """How much of the bias every layer receives in step ``t`` (a number, or one per image)."""
        raise NotImplementedError

    def neuron(self, like: torch.Tensor) -> Neuron:
        """A fresh hidden layer shaped like ``like``."""
        raise NotImplementedError


def route(routing: nn.Sequential, values: torch.Tensor, sent: Optional[torch.Tensor]) -> torch.Tensor:
    """Apply a block's pooling/flattening to spike values, max-pooling gated by ``sent`` (value sent so far)."""
    modules = list(routing)
    for position, module in enumerate(modules):
        if isinstance(module, nn.MaxPool2d):
            _, index = F.max_pool2d(sent, module.kernel_size, module.stride, module.padding, module.dilation,
                                    ceil_mode=module.ceil_mode, return_indices=True)
            values = values.flatten(2).gather(2, index.flatten(2)).view_as(index)
            if any(isinstance(later, nn.MaxPool2d) for later in modules[position + 1:]):
                sent = sent.flatten(2).gather(2, index.flatten(2)).view_as(index)
        else:
            values = module(values)
            if sent is not None and any(isinstance(later, nn.MaxPool2d) for later in modules[position + 1:]):
                sent = module(sent)
    return values


def gated(routing: nn.Sequential) -> bool:
    """Whether ``route`` needs the value each neuron has sent so far (the routing max-pools)."""
    return any(isinstance(module, nn.MaxPool2d) for module in routing)


def synaptic_current(synapse: nn.Module, x: torch.Tensor, gate: Gate) -> torch.Tensor:
    """``W . x + gate * b`` for a convolution or linear synapse; ``gate`` is a number or one per image."""
    if not isinstance(synapse, (nn.Conv2d, nn.Linear)):
        raise TypeError(f"synapse {synapse.__class__.__name__} is not supported: expected Conv2d or Linear")
    bias = synapse.bias
    if bias is not None and not isinstance(gate, torch.Tensor):  # a number: the bias rides in the same call
        bias = None if not gate else (bias if gate == 1 else bias * gate)
        return _apply(synapse, x, bias)
    y = _apply(synapse, x, None)
    if bias is None:
        return y
    return y.add_(gate.reshape((-1,) + (1,) * (y.dim() - 1)).to(y.dtype) * bias.reshape((1, -1) + (1,) * (y.dim() - 2)))


def _apply(synapse: nn.Module, x: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    if isinstance(synapse, nn.Conv2d):
        return synapse._conv_forward(x, synapse.weight, bias)
    return F.linear(x, synapse.weight, bias)


@torch.no_grad()
def simulate_coding(net, x: torch.Tensor, coding: Coding, steps: int, progress: bool = False) -> SimulationResult:
    """Run ``steps`` clock steps of ``coding`` on the converted network ``net`` for the batch ``x``.

    ``result.extra["spikes_per_step"]`` is ``[steps, L]``: spikes of each spiking layer
    in each step, summed over the batch.
    """
    x = net.check_input(x)
    dtype = x.dtype
    batch, L = len(x), net.num_spiking_layers
    shapes = [a.shape[1:] for a in net.activations(x[:1])]
    coding.start(x)
    layers = [coding.neuron(torch.zeros((batch,) + tuple(shape), dtype=dtype, device=x.device)) for shape in shapes[1:]]
    # the value each neuron has sent so far, kept only where the next block max-pools by it
    sent = [torch.zeros((batch,) + tuple(shape), dtype=dtype, device=x.device) if gated(block.routing) else None
            for shape, block in zip(shapes, net.blocks)]
    potential = None
    first_current = None
    predictions = torch.empty((steps, batch), dtype=torch.long, device=x.device)
    per_step = torch.zeros((steps, L), dtype=torch.long, device=x.device)
    per_layer = torch.zeros((batch, L), dtype=torch.long, device=x.device)
    for t in tqdm(range(steps), desc="steps", disable=not progress, leave=False):
        gate = coding.bias_gate(t)
        values, fired = coding.input_step(t)
        for l, block in enumerate(net.blocks):
            if fired is not None:
                counts = fired.flatten(1).sum(1)
                per_layer[:, l] += counts
                per_step[t, l] = counts.sum()
            if sent[l] is not None:
                sent[l] += values
            if l == 0 and coding.constant_input:
                if first_current is None:
                    first_current = synaptic_current(block.synapse, route(block.routing, values, sent[l]), gate)
                current = first_current
            else:
                current = synaptic_current(block.synapse, route(block.routing, values, sent[l]), gate)
            if l < L - 1:
                values, fired = layers[l].step(current, t)
            elif potential is None:
                potential = current.clone() if current is first_current else current
            else:
                potential += current
        predictions[t] = potential.argmax(1)
    return SimulationResult.from_run(predictions, per_layer, potential, extra={"spikes_per_step": per_step})
