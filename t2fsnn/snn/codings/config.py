"""Validated configurations of the baseline codings: rate, phase and burst.

Each configuration is a frozen dataclass checked on construction; ``net.simulate(x, cfg)``
picks the engine by the configuration's type. Defaults are the settings of the authors'
code (``run.sh`` and ``lib_snn.py`` of Park et al.): rate and burst hidden thresholds 0.4,
burst input threshold 0.125, 8 phases per period for phase coding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from t2fsnn.checks import check_int, check_positive, is_finite, is_int

__all__ = ["RateConfig", "PhaseConfig", "BurstConfig", "CODING_CONFIGS"]


def _check_steps(T) -> None:
    check_int("T", T, 1, "the number of time steps")


@dataclass(frozen=True)
class RateConfig:
    """Rate coding (Diehl et al. 2015, Rueckauer et al. 2017): integrate-and-fire, reset by subtraction.

    T:          simulated time steps (an integer >= 1).
    input:      ``"constant"``: the input layer injects the pixel value as a current at every
                step (no input spikes); ``"poisson"``: each pixel fires a unit spike with
                probability equal to its value at every step.
    threshold:  firing threshold of hidden neurons (> 0). The authors' code uses 0.4 with
                spikes of amplitude 1, i.e. a neuron fires once its membrane reaches 0.4 and
                then loses 1; ``threshold == amplitude`` is the classic IF neuron.
    amplitude:  value a spike carries and subtracts from the membrane (> 0).
    seed:       random seed of the Poisson input (ignored for constant input).
    """

    T: int
    input: str = "constant"
    threshold: float = 0.4
    amplitude: float = 1.0
    seed: int = 0

    INPUTS = ("constant", "poisson")

    def __post_init__(self):
        _check_steps(self.T)
        if self.input not in self.INPUTS:
            raise ValueError(f"input={self.input!r} is not allowed: choose one of {', '.join(map(repr, self.INPUTS))}")
        check_positive("threshold", self.threshold)
        check_positive("amplitude", self.amplitude)
        check_int("seed", self.seed, 0)


@dataclass(frozen=True)
class PhaseConfig:
    """Phase coding with weighted spikes (Kim et al. 2018).

    A global oscillator of period ``phase_bits`` steps gives the ``k``-th step of each
    period (``k = 0 .. phase_bits-1``) the weight ``2**-k`` times the period's first
    weight. A neuron fires when its membrane reaches the current weight, sends a spike
    of that weight and subtracts it (a binary expansion of the membrane).

    T:          simulated time steps (an integer >= 1).
    phase_bits: steps per oscillator period (the authors' ``p_ws = 8``), 1 .. 30.
    threshold:  first-phase weight of hidden neurons (the authors' ``vth = 1.0``).
    input_threshold: first-phase weight of the input layer (0.5 in the authors' code,
                so one period encodes a pixel in ``[0, 1)`` with ``phase_bits`` bits).

    The input layer reloads the image at the start of every period, and biases are
    added once per period (the authors' ``bias_control``).
    """

    T: int
    phase_bits: int = 8
    threshold: float = 1.0
    input_threshold: float = 0.5

    def __post_init__(self):
        _check_steps(self.T)
        if not is_int(self.phase_bits) or not 1 <= self.phase_bits <= 30:
            raise ValueError(f"phase_bits={self.phase_bits!r} is not allowed: it must be an integer in 1 .. 30")
        check_positive("threshold", self.threshold)
        check_positive("input_threshold", self.input_threshold)


@dataclass(frozen=True)
class BurstConfig:
    """Burst coding (Park et al. 2019): consecutive spikes of growing amplitude.

    A neuron fires when its membrane reaches its threshold, sends a spike of the
    threshold's value and subtracts it; after a spike the threshold is multiplied by
    ``beta`` (the next spike of the burst carries more), after a silent step it returns
    to its initial value.

    T:               simulated time steps (an integer >= 1).
    threshold:       initial threshold of hidden neurons (the authors' ``vth = 0.4``).
    input_threshold: initial threshold of the input layer (the authors' ``vth_n_in = 0.125``).
    beta:            burst constant, the threshold's growth per spike of a burst (> 1; 2 in the paper).
    max_burst:       ``None`` (the authors' code: the threshold grows without bound) or the
                     number of spikes after which a burst's amplitude stops growing (>= 1).
    bias_schedule:   when the hidden and output layers receive their bias: ``"per_cycle"``
                     (the default, the authors' MNIST script: once per input cycle, i.e. at
                     step 0 and in the step after each reload) or ``"every_step"`` (the
                     authors' VGG-16 code: the bias current is added at every time step; on a
                     network normalized for one bias per input value this over-weights the
                     biases, e.g. the small MNIST CNN of the tests then agrees with its ANN on
                     about a quarter of the images).

    The input layer holds the image in its membrane and drains it in bursts; when an
    image's input layer sends no spike in a step, its membrane is reloaded with the image
    (one input cycle). With ``bias_schedule="per_cycle"`` the layers receive their bias
    once per such cycle.
    """

    T: int
    threshold: float = 0.4
    input_threshold: float = 0.125
    beta: float = 2.0
    max_burst: Optional[int] = None
    bias_schedule: str = "per_cycle"

    BIAS_SCHEDULES = ("every_step", "per_cycle")

    def __post_init__(self):
        _check_steps(self.T)
        check_positive("threshold", self.threshold)
        check_positive("input_threshold", self.input_threshold)
        if not is_finite(self.beta) or self.beta <= 1:
            raise ValueError(f"beta={self.beta!r} is not allowed: the burst constant must be a finite number > 1")
        if self.max_burst is not None and (not is_int(self.max_burst) or self.max_burst < 1):
            raise ValueError(f"max_burst={self.max_burst!r} is not allowed: it must be None or an integer >= 1")
        if not isinstance(self.bias_schedule, str) or self.bias_schedule not in self.BIAS_SCHEDULES:
            raise ValueError(f"bias_schedule={self.bias_schedule!r} is not allowed: choose one of "
                             f"{', '.join(map(repr, self.BIAS_SCHEDULES))}")


CODING_CONFIGS = {"rate": RateConfig, "phase": PhaseConfig, "burst": BurstConfig}
