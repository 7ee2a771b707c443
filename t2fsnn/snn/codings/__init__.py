"""Baseline neural codings on the converted network: rate, phase (weighted spikes) and burst.

Importing this package registers their engines, so ``net.simulate(x, RateConfig(T=...))``
(and likewise ``PhaseConfig``, ``BurstConfig``) returns a ``SimulationResult``.
"""
from t2fsnn.snn.codings.config import CODING_CONFIGS, BurstConfig, PhaseConfig, RateConfig
from t2fsnn.snn.codings.engines import simulate_burst, simulate_phase, simulate_rate

__all__ = ["RateConfig", "PhaseConfig", "BurstConfig", "CODING_CONFIGS",
           "simulate_rate", "simulate_phase", "simulate_burst"]
