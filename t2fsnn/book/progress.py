"""What a user sees in the terminal while notebooks run (``t2fsnn run``, ``book``, ``record``).

Two modes, chosen by :meth:`Display.for_terminal`:

- ``bars`` (a terminal, not ``--quiet``): a line when each notebook starts,
  ``[2/8] 02_ttfs_coding_primer ...``; below it the kernel draws the tqdm bars
  of the long stages (training epochs with images per second, kernel
  optimization, simulation batches and steps), with tqdm's time left; a line
  when the notebook is done.
- ``lines`` (``--quiet``, or the output is not a terminal: CI, a log file): one
  line per notebook, written when it ends, with its time and result, and no
  carriage-return redraws.

The bars are drawn by the kernel straight onto the terminal
(``$T2FSNN_PROGRESS``, see :mod:`t2fsnn.book.kernel`), never into the executed
notebook.  Without a display (``mode="off"``) the kernel draws no bar at all.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence, TextIO

ENV = "T2FSNN_PROGRESS"
MODES = ("bars", "lines", "off")


def _tty_path(stream: TextIO) -> Optional[str]:
    """The device path of ``stream``'s terminal, or None when it is not a terminal."""
    try:
        if not stream.isatty():
            return None
        return os.ttyname(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def format_seconds(seconds: float) -> str:
    """``7.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _shown(path: os.PathLike) -> str:
    """A path as the user would type it: relative to the working folder when under it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


class Display:
    """Reports notebook runs to ``stream`` in one of :data:`MODES`."""

    def __init__(self, mode: str = "lines", stream: Optional[TextIO] = None, tty: Optional[str] = None):
        if mode not in MODES:
            raise ValueError(f"unknown progress mode {mode!r}; allowed: {', '.join(MODES)}")
        self.stream = stream if stream is not None else sys.stdout
        self.tty = tty if tty is not None else (_tty_path(self.stream) if mode == "bars" else None)
        if mode == "bars" and self.tty is None:
            mode = "lines"
        self.mode = mode
        self.started = time.perf_counter()

    @classmethod
    def for_terminal(cls, quiet: bool = False, stream: Optional[TextIO] = None) -> "Display":
        """Bars when ``stream`` (default stdout) is a terminal and not ``quiet``, else one line per notebook."""
        stream = stream if stream is not None else sys.stdout
        return cls("lines" if quiet else "bars", stream)

    # -- the kernel's side of the terminal --------------------------------

    def kernel_target(self) -> str:
        """The value of ``$T2FSNN_PROGRESS`` for the kernel: the terminal's path, or ``off``."""
        return self.tty if self.mode == "bars" and self.tty else "off"

    @contextlib.contextmanager
    def kernel_environment(self) -> Iterator[None]:
        """Set ``$T2FSNN_PROGRESS`` while a kernel is started, then restore the previous value."""
        saved = os.environ.get(ENV)
        os.environ[ENV] = self.kernel_target()
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = saved

    # -- lines ------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self.mode == "off":
            return
        if self.mode == "bars":  # start on a clean line, whatever a kernel's bar left there
            text = "\r\x1b[K" + text
        self.stream.write(text + "\n")
        self.stream.flush()

    @staticmethod
    def _counter(index: int, total: int) -> str:
        return f"[{index}/{total}]"

    def notebook_started(self, index: int, total: int, name: str, profile: str) -> None:
        if self.mode == "bars":
            self._write(f"{self._counter(index, total)} {name} (profile {profile}) running ...")

    def notebook_finished(self, index: int, total: int, name: str, seconds: float, output: os.PathLike) -> None:
        self._write(f"{self._counter(index, total)} {name}: done in {format_seconds(seconds)}, wrote {_shown(output)}")

    def notebook_failed(self, index: int, total: int, name: str, seconds: float) -> None:
        """The notebook's line on failure; the error itself is the caller's to report."""
        self._write(f"{self._counter(index, total)} {name}: FAILED after {format_seconds(seconds)}")

    def note(self, text: str) -> None:
        """A line of its own (for example "building the book ...")."""
        self._write(text)

    def summary(self, outputs: Sequence[os.PathLike], book: Optional[os.PathLike] = None,
                seconds: Optional[float] = None) -> str:
        """The closing line: total time, where the executed notebooks and the book are. Returned, and written."""
        seconds = time.perf_counter() - self.started if seconds is None else seconds
        folders = sorted({_shown(Path(p).parent) for p in outputs})
        parts = [f"finished in {format_seconds(seconds)}"]
        if outputs:
            n = len(outputs)
            where = ", ".join(folders)
            parts.append(f"{n} executed notebook{'s' if n != 1 else ''} in {where}")
        if book is not None:
            parts.append(f"book: {Path(book).resolve()}")
        line = "; ".join(parts)
        self._write(line)
        return line
