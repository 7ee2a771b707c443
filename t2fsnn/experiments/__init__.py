"""The paper's experiments and ours, built on the method in ``t2fsnn.snn``.

- ``experiment``: the common start of a notebook (trained ANN, conversion, data);
- ``ablation`` (Table I), ``comparison`` (Fig. 6, Tables II and III), ``analysis`` (where the
  coding error comes from), ``design_space`` (the sweep beyond the paper);
- ``benchmark``, ``peers``: speed against one ANN pass and against SpikingJelly;
- ``paper_results``: the paper's own numbers, labelled as the paper's;
- ``plots``: the figures.

May import ``t2fsnn.snn`` and the ANN side; never ``t2fsnn.book``.
"""
