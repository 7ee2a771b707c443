"""The method of the paper: a converted ANN run as a spiking network.

- ``kernels``: the exponential kernel, the dynamic threshold, encode and decode (pure functions);
- ``config``: ``TTFSConfig``, the settings of one T2FSNN run;
- ``conversion``: batch-norm folding, data-based normalisation, ``SpikingNetwork``;
- ``engines``: the T2FSNN simulation engines (clock-driven reference and exact);
- ``codings``: the baseline codings (rate, phase, burst) on the same network;
- ``go_losses``, ``optimization``: gradient-based optimisation (GO) of the kernels;
- ``metrics``, ``costs``: accuracy, spikes, latency, energy and operation counts.

May import the ANN side of the package (``t2fsnn.data``, ``models``, ``training``, ``cache``,
``checks``); never ``t2fsnn.experiments`` or ``t2fsnn.book``.
"""
