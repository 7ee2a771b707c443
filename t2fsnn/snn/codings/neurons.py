"""Neuron models and input layers of the rate, phase and burst codings (vectorised, one step at a time).

Each hidden neuron integrates its input current into a membrane potential ``u`` and
fires when ``u`` reaches its threshold; the value a spike carries is subtracted from
``u`` (reset by subtraction), so over time a neuron sends the value it integrates.

The step of each neuron is a pure function of its state and input (``rate_step``,
``phase_step``, ``burst_step``), testable on its own; the neuron classes hold the state
between the steps of a simulation and call them.
"""
from __future__ import annotations

from typing import Optional

import torch

from t2fsnn.snn.codings.common import Coding, Neuron
from t2fsnn.snn.codings.config import BurstConfig, PhaseConfig, RateConfig

__all__ = ["RateCoding", "PhaseCoding", "BurstCoding", "RateNeuron", "PhaseNeuron", "BurstNeuron",
           "rate_step", "phase_step", "burst_step", "phase_weight"]


# ----------------------------------------------------------------------------- pure steps
def rate_step(u: torch.Tensor, current: torch.Tensor, threshold: float, amplitude: float = 1.0):
    """Integrate-and-fire: ``u + current``; fire where it reaches ``threshold``, send ``amplitude``, subtract it.

    Returns ``(new u, values sent, fired)``.
    """
    u = u + current
    fired = u >= threshold
    values = fired.to(u.dtype) * amplitude
    return u - values, values, fired


def phase_step(u: torch.Tensor, current: Optional[torch.Tensor], weight: float):
    """Weighted spike: ``u + current``; fire where it reaches the phase's ``weight``, send it, subtract it.

    Returns ``(new u, values sent, fired)``.
    """
    if current is not None:
        u = u + current
    fired = u >= weight
    values = fired.to(u.dtype) * weight
    return u - values, values, fired


def burst_step(u: torch.Tensor, theta: torch.Tensor, current: Optional[torch.Tensor], threshold: float,
               beta: float, cap: Optional[float] = None):
    """Burst: ``u + current``; fire where it reaches ``theta``, send ``theta``, subtract it. After a spike
    ``theta`` grows by ``beta`` (at most to ``cap``), after a silent step it returns to ``threshold``.

    Returns ``(new u, new theta, values sent, fired)``.
    """
    if current is not None:
        u = u + current
    fired = u >= theta
    values = torch.where(fired, theta, 0.0)
    grown = theta * beta
    if cap is not None:
        grown = grown.clamp(max=cap)
    return u - values, torch.where(fired, grown, threshold), values, fired


# ----------------------------------------------------------------------------- rate
class RateNeuron(Neuron):
    """Integrate-and-fire neuron (:func:`rate_step`) holding its membrane between steps."""

    def __init__(self, like: torch.Tensor, threshold: float, amplitude: float):
        self.u = torch.zeros_like(like)
        self.threshold, self.amplitude = threshold, amplitude

    def step(self, current, t):
        self.u, values, fired = rate_step(self.u, current, self.threshold, self.amplitude)
        return values, fired


class RateCoding(Coding):
    """Rate coding: constant-current or Poisson input, IF neurons, bias at every step."""

    def __init__(self, cfg: RateConfig):
        self.cfg = cfg
        self.constant_input = cfg.input == "constant"  # the same current, bias included, at every step

    def start(self, x):
        self.x = x
        if self.cfg.input == "poisson":
            self.generator = torch.Generator(device=x.device).manual_seed(self.cfg.seed)

    def input_step(self, t):
        if self.cfg.input == "constant":
            return self.x, None
        fired = torch.rand(self.x.shape, generator=self.generator, device=self.x.device, dtype=self.x.dtype) < self.x
        return fired.to(self.x.dtype), fired

    def bias_gate(self, t):
        return 1.0

    def neuron(self, like):
        return RateNeuron(like, self.cfg.threshold, self.cfg.amplitude)


# ----------------------------------------------------------------------------- phase
def phase_weight(t: int, phase_bits: int, first: float) -> float:
    """The oscillator's weight at step ``t``: ``first * 2**-(t mod phase_bits)``."""
    return first * 0.5 ** (t % phase_bits)


class PhaseNeuron(Neuron):
    """Weighted-spike neuron (:func:`phase_step`) with the oscillator's weight of each step."""

    def __init__(self, like: torch.Tensor, threshold: float, phase_bits: int):
        self.u = torch.zeros_like(like)
        self.threshold, self.phase_bits = threshold, phase_bits

    def step(self, current, t):
        self.u, values, fired = phase_step(self.u, current, phase_weight(t, self.phase_bits, self.threshold))
        return values, fired


class PhaseCoding(Coding):
    """Phase coding: the input layer re-encodes the image every period; bias once per period."""

    def __init__(self, cfg: PhaseConfig):
        self.cfg = cfg

    def start(self, x):
        self.x = x
        self.u = torch.zeros_like(x)

    def input_step(self, t):
        if t % self.cfg.phase_bits == 0:
            self.u = self.x.clone()
        self.u, values, fired = phase_step(self.u, None, phase_weight(t, self.cfg.phase_bits, self.cfg.input_threshold))
        return values, fired

    def bias_gate(self, t):
        return 1.0 if t % self.cfg.phase_bits == 0 else 0.0

    def neuron(self, like):
        return PhaseNeuron(like, self.cfg.threshold, self.cfg.phase_bits)


# ----------------------------------------------------------------------------- burst
class BurstNeuron(Neuron):
    """Burst neuron (:func:`burst_step`) holding its membrane and threshold between steps; a burst's
    threshold is capped at ``beta**(max_burst-1)`` times the initial one."""

    def __init__(self, like: torch.Tensor, threshold: float, beta: float, max_burst: Optional[int]):
        self.u = torch.zeros_like(like)
        self.theta = torch.full_like(like, threshold)
        self.threshold, self.beta = threshold, beta
        self.cap = None if max_burst is None else threshold * beta ** (max_burst - 1)

    def step(self, current, t):
        self.u, self.theta, values, fired = burst_step(self.u, self.theta, current, self.threshold, self.beta,
                                                       self.cap)
        return values, fired


class BurstCoding(Coding):
    """Burst coding: the input layer drains the image in bursts and reloads it when it falls silent.

    An image's input layer is reloaded after a step in which none of its input neurons
    fired (with ``bias_schedule="per_cycle"`` the bias is injected in the next step,
    otherwise at every step); the authors' code does this when the
    whole batch is silent, which makes one image's result depend on the others'.
    """

    def __init__(self, cfg: BurstConfig):
        self.cfg = cfg

    def start(self, x):
        self.x = x
        self.input = BurstNeuron(x, self.cfg.input_threshold, self.cfg.beta, self.cfg.max_burst)
        self.input.u = x.clone()
        self.reloaded = torch.ones(len(x), dtype=x.dtype, device=x.device)

    def input_step(self, t):
        values, fired = self.input.step(None, t)
        silent = ~fired.flatten(1).any(1)
        shape = (-1,) + (1,) * (self.x.dim() - 1)
        self.input.u = torch.where(silent.reshape(shape), self.x, self.input.u)
        self.next_gate = silent.to(self.x.dtype)
        return values, fired

    def bias_gate(self, t):
        if self.cfg.bias_schedule == "every_step":
            return 1.0
        # per cycle; called before input_step: the bias follows a reload of the previous step (and step 0)
        return self.reloaded if t == 0 else self.next_gate

    def neuron(self, like):
        return BurstNeuron(like, self.cfg.threshold, self.cfg.beta, self.cfg.max_burst)
