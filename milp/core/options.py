"""Checks for option values, shared by the Python API and the command line (one message style).

Each check returns the value in its canonical type or raises :class:`OptionError` naming the
option, what it must be, and what it got:

>>> check_seconds(2, "time_limit")
2.0
>>> check_count(0, "max_regions")
Traceback (most recent call last):
...
milp.core.options.OptionError: max_regions must be a whole number >= 1, got 0
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from milp.core.errors import InputError
from milp.core.tolerances import SOLVER_FEASIBILITY

__all__ = ["SolverOptions", "OptionError", "check_seconds", "check_count", "check_index", "check_tolerance", "check_threads"]


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


def check_index(value, name: str) -> int:
    """An index: a whole number (its range is for the caller to check, with the caller's words)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionError(f"{name} must be a whole number, got {value!r}")
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


@dataclass(frozen=True)
class SolverOptions:
    """Options passed explicitly to every solve.

    ``mip_rel_gap`` and ``mip_abs_gap`` default to (nearly) zero: HiGHS's defaults (1e-4
    relative) stop before the optimum is proved. ``mip_feasibility_tolerance`` is what HiGHS
    uses to accept integrality and MIP rows; decisions from a proved bound are made at that
    resolution (:mod:`milp.core.tolerances`), and every point it returns is re-checked by a forward
    pass anyway. ``threads`` is HiGHS's thread count (1: parallelism here is processes).

    ``enumerate_binaries``: a MILP with at most this many binaries is solved as one LP per
    assignment of its binaries (``2**k`` LPs, the best feasible one is the optimum) instead of by
    HiGHS's branch and cut. Exact without cutting planes: HiGHS 1.16 declared a 3-binary model
    optimal below a point it contains, after an invalid root cut; no LP is cut.
    """

    time_limit: float | None = None
    threads: int = 1
    mip_rel_gap: float = 0.0
    mip_abs_gap: float = 1e-9
    mip_feasibility_tolerance: float = SOLVER_FEASIBILITY
    primal_feasibility_tolerance: float = SOLVER_FEASIBILITY
    dual_feasibility_tolerance: float = SOLVER_FEASIBILITY
    presolve: bool = True
    random_seed: int = 0
    enumerate_binaries: int = 4
