"""Checks for option values, shared by the Python API and the command line (one message style).

Each check returns the value in its canonical type or raises :class:`OptionError` naming the
option, what it must be, and what it got:

>>> check_seconds(2, "time_limit")
2.0
>>> check_count(0, "max_regions")
Traceback (most recent call last):
...
milp.options.OptionError: max_regions must be a whole number >= 1, got 0
"""

from __future__ import annotations

import math
import numbers

from .errors import InputError

__all__ = ["OptionError", "check_seconds", "check_count", "check_tolerance", "check_threads"]


class OptionError(InputError):
    """An option value out of range or of the wrong kind."""


def _number(value, name: str, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(f"{name} must be {kind}, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise OptionError(f"{name} must be {kind}, got {value!r}")
    return value


def check_seconds(value, name: str = "time_limit") -> float | None:
    """A time limit: None (no limit) or a finite number of seconds >= 0."""
    if value is None:
        return None
    seconds = _number(value, name, "a finite number of seconds >= 0")
    if seconds < 0:
        raise OptionError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def check_count(value, name: str, minimum: int = 1, allow_none: bool = True) -> int | None:
    """A whole number >= ``minimum`` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise OptionError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_tolerance(value, name: str = "tol") -> float:
    """A relative tolerance: a finite number with 0 < value < 1."""
    tol = _number(value, name, "a number between 0 and 1 (exclusive)")
    if not 0 < tol < 1:
        raise OptionError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}")
    return tol


def check_threads(value, name: str = "threads") -> int:
    """A thread count >= 1."""
    return check_count(value, name, 1, allow_none=False)
