"""Spiking inference engines, chosen by the type of the configuration."""
from __future__ import annotations

from typing import Callable

from t2fsnn.snn.engines.result import SimulationResult

__all__ = ["simulate", "register", "SimulationResult"]

_ENGINES: dict[type, Callable] = {}


def register(config_type: type, run: Callable) -> None:
    """Make ``simulate`` run ``run(net, x, cfg, engine=..., progress=...)`` for ``config_type``."""
    _ENGINES[config_type] = run


def simulate(net, x, cfg, engine: str = "exact", progress: bool = False) -> SimulationResult:
    from t2fsnn.snn.engines import ttfs  # noqa: F401  (registers the T2FSNN engines)

    for config_type, run in _ENGINES.items():
        if isinstance(cfg, config_type):
            return run(net, x, cfg, engine=engine, progress=progress)
    known = ", ".join(t.__name__ for t in _ENGINES)
    raise TypeError(f"no engine for configuration {type(cfg).__name__}; known configurations: {known}")
