"""Validated configuration of a T2FSNN run."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Optional, Sequence, Union

from t2fsnn.checks import check_finite, check_int, is_int

__all__ = ["TTFSConfig"]

PerLayer = Union[float, Sequence[float]]


@dataclass(frozen=True)
class TTFSConfig:
    """Parameters of T2FSNN inference.

    T:        length of every fire phase (time window), an integer >= 1.
    tau, td:  kernel time constant (> 0) and delay, one value for all spiking
              layers or one value per spiking layer (input layer first).
    ef_start: ``None`` for the baseline pipeline; otherwise early firing: the
              step of a layer's integration phase (1 .. T) at which its fire
              phase starts. ``ef_start == T`` is the baseline pipeline.
    theta0:   threshold constant (> 0).
    """

    T: int
    tau: PerLayer
    td: PerLayer = 0.0
    ef_start: Optional[int] = None
    theta0: float = 1.0

    def __post_init__(self):
        check_int("T", self.T, 1)
        taus = self._as_tuple("tau", self.tau)
        tds = self._as_tuple("td", self.td)
        for i, tau in enumerate(taus):
            check_finite(f"tau[{i}]" if len(taus) > 1 else "tau", tau)
            if tau <= 0:
                name = f"tau[{i}]" if len(taus) > 1 else "tau"
                raise ValueError(f"{name}={tau!r} is not allowed: the time constant must be > 0")
        for i, td in enumerate(tds):
            check_finite(f"td[{i}]" if len(tds) > 1 else "td", td)
        if self.ef_start is not None:
            if not is_int(self.ef_start) or not 1 <= self.ef_start <= self.T:
                raise ValueError(
                    f"ef_start={self.ef_start!r} is not allowed: early firing must start at an integer "
                    f"step 1 .. T={self.T} of the integration phase, or be None for no early firing"
                )
        check_finite("theta0", self.theta0)
        if self.theta0 <= 0:
            raise ValueError(f"theta0={self.theta0!r} is not allowed: it must be > 0")
        object.__setattr__(self, "tau", taus if len(taus) > 1 or not isinstance(self.tau, numbers.Real) else float(taus[0]))
        object.__setattr__(self, "td", tds if len(tds) > 1 or not isinstance(self.td, numbers.Real) else float(tds[0]))

    @staticmethod
    def _as_tuple(name: str, value) -> tuple:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return (float(value),)
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            values = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r} is not allowed: give a number or one number per spiking layer") from None
        if not values:
            raise ValueError(f"{name}=() is not allowed: give a number or one number per spiking layer")
        return values

    def with_early_firing(self, ef_start: Optional[int] = None) -> "TTFSConfig":
        """The same kernels with early firing from ``ef_start``; ``None`` takes half the window, as the paper does."""
        start = max(1, self.T // 2) if ef_start is None else ef_start
        return TTFSConfig(T=self.T, tau=self.tau, td=self.td, ef_start=start, theta0=self.theta0)

    def without_early_firing(self) -> "TTFSConfig":
        return TTFSConfig(T=self.T, tau=self.tau, td=self.td, ef_start=None, theta0=self.theta0)

    @property
    def stride(self) -> int:
        """Steps between the fire-phase starts of consecutive layers."""
        return self.T if self.ef_start is None else self.ef_start

    def per_layer(self, num_layers: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(taus, tds)`` expanded to ``num_layers`` spiking layers."""
        return self._expand("tau", self.tau, num_layers), self._expand("td", self.td, num_layers)

    @staticmethod
    def _expand(name: str, value, num_layers: int) -> tuple[float, ...]:
        if isinstance(value, tuple):
            if len(value) != num_layers:
                raise ValueError(
                    f"{name} has {len(value)} values but the network has {num_layers} spiking layers "
                    f"(input included): give one value or exactly {num_layers}"
                )
            return value
        return (float(value),) * num_layers

    def latency(self, num_spiking_layers: int) -> int:
        """Total steps: the last spiking layer starts firing at ``(L-1)*stride`` and fires for ``T``."""
        return (num_spiking_layers - 1) * self.stride + self.T
