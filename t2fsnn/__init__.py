"""t2fsnn: deep spiking neural networks with time-to-first-spike coding (T2FSNN)."""
from .config import TTFSConfig
from .conversion import SpikingNetwork, convert

__version__ = "0.1.0"

__all__ = ["TTFSConfig", "SpikingNetwork", "convert", "__version__"]
