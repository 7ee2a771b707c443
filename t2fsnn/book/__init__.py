"""Everything that runs or builds the book; no numbers are computed here.

- ``params``, ``profiles/``: every notebook parameter, its allowed values, and the profiles;
- ``runner``: runs a notebook through papermill with checked parameters;
- ``revision``: the source revision of a run; ``record``: recorded full-scale runs;
- ``report``: the reproduction report's claims and computed verdicts;
- ``cli``, ``preflight``, ``progress``: the ``t2fsnn`` command, its checks and its display;
- ``kernel``: the Jupyter kernel the notebooks run in; ``sphinx_ext``, ``static/``: the
  Sphinx extension; ``browser``: the check of the built pages in headless Chromium.

May import every other part of the package; nothing outside it imports from here.
"""
