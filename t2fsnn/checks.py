"""Argument checks shared by the package: each raises ``ValueError`` naming the argument and what is allowed.

Configurations (:class:`t2fsnn.snn.config.TTFSConfig`, the baseline codings' configurations) and
functions that take options (the kernel optimizer, the coding runs) check their
arguments with these before any work, so a bad value fails at once with a message of
the form ``name=value is not allowed: ...``.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

__all__ = ["is_int", "is_finite", "check_int", "check_finite", "check_positive", "check_percentile",
           "check_finite_tensor", "check_finite_weights"]


def is_int(value) -> bool:
    """Whether ``value`` is an integer (``bool`` is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite(value) -> bool:
    """Whether ``value`` is a finite real number (``bool`` is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_int(name: str, value, low: int, meaning: Optional[str] = None) -> None:
    """An integer ``>= low``; ``meaning`` (for example "the number of time steps") names it in the message."""
    if not is_int(value) or value < low:
        what = f"{meaning} must be" if meaning else "it must be"
        raise ValueError(f"{name}={value!r} is not allowed: {what} an integer >= {low}")


def check_finite(name: str, value) -> None:
    """A finite real number (``bool`` is not)."""
    if not is_finite(value):
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite real number")


def check_positive(name: str, value) -> None:
    """A finite real number ``> 0``."""
    if not is_finite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not allowed: it must be a finite number > 0")


def check_percentile(name: str, value) -> None:
    """A percentile in ``[0, 100]``."""
    if not is_finite(value) or not 0 <= value <= 100:
        raise ValueError(f"{name}={value!r} is not allowed: it must be a percentile in [0, 100]")


def _first_bad(tensor) -> Optional[tuple]:
    """Index and value of the first NaN or infinite element of ``tensor``, or ``None``."""
    import torch

    if not tensor.is_floating_point() and not tensor.is_complex():
        return None
    bad = ~torch.isfinite(tensor)
    if not bool(bad.any()):
        return None
    index = tuple(int(i) for i in bad.nonzero()[0].tolist())
    return index, float(tensor[index])


def check_finite_tensor(name: str, tensor, item: str = "image", offset: int = 0) -> None:
    """A tensor without NaN or infinite values; the message gives the first bad element.

    ``item`` names what the first dimension counts (``"image"``), so the message reads
    ``images hold nan at image 3, element [0, 5, 7]``; ``offset`` is the number of the
    tensor's first item when it is one batch of many.
    """
    found = _first_bad(tensor)
    if found is None:
        return
    index, value = found
    where = f"{item} {index[0] + offset}, element {list(index[1:])}" if len(index) > 1 else f"element {list(index)}"
    raise ValueError(f"{name} hold {value} at {where}: only finite numbers are allowed")


def check_finite_weights(module, source: str = "the model") -> None:
    """Every parameter and buffer of ``module`` finite; the message names the tensor and ``source``."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        found = _first_bad(tensor.detach())
        if found is not None:
            index, value = found
            raise ValueError(f"{source} holds {value} in {name} at {list(index)}: its weights must be finite "
                             "(a diverged training or a damaged file)")
