"""t2fsnn: deep spiking neural networks with time-to-first-spike coding (T2FSNN)."""
from .config import TTFSConfig
from .conversion import SpikingNetwork, convert
from .codings import BurstConfig, PhaseConfig, RateConfig  # registers the rate, phase and burst engines

__version__ = "0.1.0"

__all__ = ["TTFSConfig", "RateConfig", "PhaseConfig", "BurstConfig", "SpikingNetwork", "convert", "__version__"]
