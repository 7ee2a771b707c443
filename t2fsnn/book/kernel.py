"""Start the IPython kernel that runs the book's notebooks (``t2fsnn run``, ``t2fsnn book``).

The runner's kernel spec starts this file by its path, not as ``python -m
t2fsnn.book.kernel``: that keeps the package (and torch) from being imported before
the kernel starts, and lets the progress set-up below apply to every tqdm bar
created afterwards, wherever it was imported.

Two things differ from ``python -m ipykernel_launcher``:

- ``$T2FSNN_PROGRESS`` routes tqdm bars away from the notebook.  Its value is
  either ``off`` (no bar anywhere) or the path of a terminal (``/dev/pts/3``),
  to which every bar is drawn (shown after ``$T2FSNN_PROGRESS_DELAY`` seconds, 0.5 by
  default, so quick loops stay silent).  Either way no bar lands in the executed notebook.  Unset, tqdm
  behaves as usual.
- ipykernel's warning "Kernel is running over TCP without encryption" is
  dropped: the kernel listens on 127.0.0.1 for the one notebook run, and the
  warning would look like an error to a reader of ``make book``.
"""

from __future__ import annotations

import logging
import os
import sys

ENV = "T2FSNN_PROGRESS"
DELAY_ENV = "T2FSNN_PROGRESS_DELAY"  # seconds before a bar shows (default 0.5)
_TCP_WARNING = "running over TCP without encryption"


class _DropTcpWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _TCP_WARNING not in record.getMessage()


def quiet_kernel_log() -> None:
    """Drop the TCP-encryption warning of ipykernel's application logger."""
    logging.getLogger("IPKernelApp").addFilter(_DropTcpWarning())


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


def route_progress(target: str | None) -> None:
    """Send every tqdm bar created from now on to ``target`` (a terminal path), or nowhere (``off``).

    Patches ``tqdm.std.tqdm.__init__`` in place, so bars of modules that did
    ``from tqdm import tqdm`` before or after this call are all routed, and the
    ``disable`` or ``file`` arguments of the caller are overridden: a caller's
    ``progress=False`` means "not in my output", which stays true.
    """
    if not target:
        return
    import tqdm.std as std

    if getattr(std.tqdm.__init__, "_t2fsnn_routed", False):
        return
    stream = None
    if target != "off":
        try:
            stream = open(target, "w", buffering=1, encoding="utf-8", errors="replace")
        except OSError:
            stream = None
    try:
        delay = max(0.0, float(os.environ.get(DELAY_ENV, "0.5")))
    except ValueError:
        delay = 0.5
    original = std.tqdm.__init__

    def __init__(self, *args, **kwargs):
        if stream is None:
            kwargs["disable"] = True
        else:
            kwargs["file"] = stream
            kwargs["disable"] = False
            kwargs.setdefault("delay", delay)
            kwargs.setdefault("mininterval", 0.5)
            if _columns(stream):
                kwargs["dynamic_ncols"] = True
            else:  # a terminal that reports no size (a bare pseudo-terminal): tqdm would draw nothing
                kwargs["dynamic_ncols"] = False
                kwargs.setdefault("ncols", 100)
        original(self, *args, **kwargs)

    __init__._t2fsnn_routed = True  # type: ignore[attr-defined]
    __init__.__doc__ = original.__doc__
    std.tqdm.__init__ = __init__


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    # run as a script, this folder is sys.path[0]: its modules (data, config, ...) must not shadow others
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    quiet_kernel_log()
    route_progress(os.environ.get(ENV))
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
