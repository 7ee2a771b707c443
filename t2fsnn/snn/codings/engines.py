"""Registration of the rate, phase and burst engines with ``t2fsnn.snn.engines``."""
from __future__ import annotations

from t2fsnn.snn.engines import register
from t2fsnn.snn.engines.result import SimulationResult
from t2fsnn.snn.codings.common import simulate_coding
from t2fsnn.snn.codings.config import BurstConfig, PhaseConfig, RateConfig
from t2fsnn.snn.codings.neurons import BurstCoding, PhaseCoding, RateCoding

__all__ = ["simulate_rate", "simulate_phase", "simulate_burst"]

_CODINGS = {RateConfig: RateCoding, PhaseConfig: PhaseCoding, BurstConfig: BurstCoding}


def _check_engine(engine: str) -> None:
    # these codings have a single, clock-driven engine; "exact" and "clock" both select it
    if engine not in ("exact", "clock"):
        raise ValueError(f"engine={engine!r} is not allowed: choose 'exact' or 'clock' (both run the clock engine)")


def _run(net, x, cfg, engine: str = "exact", progress: bool = False) -> SimulationResult:
    _check_engine(engine)
    return simulate_coding(net, x, _CODINGS[type(cfg)](cfg), cfg.T, progress=progress)


def simulate_rate(net, x, cfg: RateConfig, progress: bool = False) -> SimulationResult:
    """Rate-coded inference of ``x`` on ``net`` for ``cfg.T`` steps."""
    return simulate_coding(net, x, RateCoding(cfg), cfg.T, progress=progress)


def simulate_phase(net, x, cfg: PhaseConfig, progress: bool = False) -> SimulationResult:
    """Phase-coded (weighted-spike) inference of ``x`` on ``net`` for ``cfg.T`` steps."""
    return simulate_coding(net, x, PhaseCoding(cfg), cfg.T, progress=progress)


def simulate_burst(net, x, cfg: BurstConfig, progress: bool = False) -> SimulationResult:
    """Burst-coded inference of ``x`` on ``net`` for ``cfg.T`` steps."""
    return simulate_coding(net, x, BurstCoding(cfg), cfg.T, progress=progress)


for _config_type in _CODINGS:
    register(_config_type, _run)
