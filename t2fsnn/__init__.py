"""t2fsnn: deep spiking neural networks with time-to-first-spike coding (T2FSNN).

The package has four parts, each importing only the ones listed before it:

- ``t2fsnn.data``, ``models``, ``training`` (with ``cache``, ``checks``, ``cluster``): the ANN side and the
  shared machinery;
- ``t2fsnn.snn``: the method (kernels, conversion, engines, codings, GO, metrics);
- ``t2fsnn.experiments``: the paper's experiments and ours, and their figures;
- ``t2fsnn.book``: running the notebooks, recording runs, the report, building the book.

The names below are the public entry points the book and README use.
"""
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.conversion import SpikingNetwork, convert
from t2fsnn.snn.codings import BurstConfig, PhaseConfig, RateConfig  # registers the rate, phase and burst engines

__version__ = "0.1.0"

__all__ = ["TTFSConfig", "RateConfig", "PhaseConfig", "BurstConfig", "SpikingNetwork", "convert", "__version__"]
