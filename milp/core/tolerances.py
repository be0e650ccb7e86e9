"""Every numerical tolerance of the project, each explained once.

A verdict is exact *at a stated resolution*: floating point and the LP/MILP solver's own
feasibility tolerances make anything finer meaningless. The rules:

* **Witness acceptance** (:data:`CONDITION_TOLERANCE`): at a point re-checked in float64,
  a non-strict condition ``e >= 0`` holds when ``e >= -1e-9 (1 + scale)``, a strict one
  ``e > 0`` when ``e > 1e-9 (1 + scale)`` (``scale``: the magnitude of the terms of ``e``),
  so that rounding never decides a strict inequality.
* **Solver feasibility** (:data:`SOLVER_FEASIBILITY`): HiGHS is asked for rows and integrality
  within 1e-9, the same for the LP (``primal_feasibility_tolerance``) and the MILP
  (``mip_feasibility_tolerance``): HiGHS >= 1.16 re-checks a MILP optimum against the LP
  tolerance and reports a "Solve error" when the MILP tolerance was the looser one.
* **Decisions from a proved bound** (:data:`DECISION_TOLERANCE`): "never fires" and "unsat"
  for a strict condition are decided when the solver's proved maximum is at most
  ``1e-8 (1 + |bound|)``. A point the solver accepts may violate each row by up to its
  feasibility tolerance, and these add up through the network, so an optimum it reports may
  exceed the true one by a few times that: a maximum of exactly 0 comes back as ``1.35e-9``
  from highspy 1.16 on the design notes' toy. A threshold at or below the solver's
  tolerance would turn such proofs into ``unknown``; 10x the tolerance leaves room.
* **Reference agreement** (:data:`REFERENCE_TOLERANCE`): a float32 ONNX model agrees with
  the float64 network to about 1e-6 relative; 1e-4 absolute + relative is the check.
* **Region radius** (:data:`REGION_TOLERANCE`): a pattern is a region when its Chebyshev
  ball has a radius above ``1e-7 * max(1, widest box side)``.
* **A node dropped by bounds** (:data:`PRUNE_MARGIN`): the region search drops a node when a
  condition's propagated upper bound over it is below ``-1e-6 (1 + |bound|)``. The search decides a
  neuron's phase within the region tolerance of its hyperplane, so a pattern's map may differ from
  the network on slivers that thin; a region (a ball wider than the tolerance) cannot lie in them,
  and the margin keeps the drop far from every such rounding.
* **Thin regions** (:data:`THIN_RESOLUTION`): a pattern whose Chebyshev radius is at most the region
  tolerance is decided in rational arithmetic (:mod:`milp.enumeration.certify`) and listed, marked
  ``thin``, when it holds a certified ball of radius above ``1e-12 * max(1, widest box side)``. The
  rows themselves are float64 compositions of the weights, each off by up to ~n * 2**-53 of its
  magnitude; a piece narrower than that (e.g. 1e-17 where three lines of the design notes' toy meet
  in exact arithmetic) exists only by rounding and counts as lower-dimensional.
* **Inactive at zero**: a neuron with ``z == 0`` counts as inactive (phase 0) everywhere
  (:func:`milp.core.network.is_active`).
* **Bound widening** (:data:`BOUND_MARGIN`): every propagated bound moves outward by
  ``1e-9 (1 + |bound| + magnitude)``, the magnitude being the sum of the absolute values of the
  terms added up into it. A bound is a long float64 sum (hundreds of terms, a chain of matrix
  products); each operation may round by 2**-53, so the computed value can sit up to ~n * 1e-16
  of that magnitude inside the true bound: 1e-9 is many orders above the rounding and far below
  anything that matters to a big-M constant.
* **LP bound widening** (:data:`LP_BOUND_MARGIN`): an LP-tightened bound moves outward by
  ``1e-7 (1 + |bound|)``: an LP optimum may sit the solver's feasibility tolerance inside the
  true one, amplified by the row scales.
* **Optimality** (:data:`OPTIMALITY_TOLERANCE`): a maximum is proved when no open sub-box's
  bound exceeds the best checked value by more than ``1e-7 (1 + |value|)``: bounds are widened
  outward by the margin above, so on a plateau of optima a tighter test would split forever.
* **A solver's optimum confirmed** (:data:`ATTAINED_TOLERANCE`): a MILP's claimed optimum
  counts as attained by its re-checked point when the two differ by at most
  ``1e-6 (1 + |value|)`` (the point's rows hold within the solver's feasibility tolerance,
  amplified through the network); a checked point above an arm's proved bound by more than that
  refutes the bound.
"""

from __future__ import annotations

__all__ = [
    "CONDITION_TOLERANCE",
    "DECISION_TOLERANCE",
    "SOLVER_FEASIBILITY",
    "REFERENCE_TOLERANCE",
    "REGION_TOLERANCE",
    "PRUNE_MARGIN",
    "THIN_RESOLUTION",
    "BOUND_MARGIN",
    "LP_BOUND_MARGIN",
    "OPTIMALITY_TOLERANCE",
    "ATTAINED_TOLERANCE",
    "attained_tolerance",
    "condition_tolerance",
    "proves_not_positive",
]

CONDITION_TOLERANCE = 1e-9
SOLVER_FEASIBILITY = 1e-9
DECISION_TOLERANCE = 10 * SOLVER_FEASIBILITY
REFERENCE_TOLERANCE = 1e-4
REGION_TOLERANCE = 1e-7
PRUNE_MARGIN = 1e-6
THIN_RESOLUTION = 1e-12
BOUND_MARGIN = 1e-9
LP_BOUND_MARGIN = 1e-7
OPTIMALITY_TOLERANCE = 1e-7
ATTAINED_TOLERANCE = 1e-6


def condition_tolerance(scale: float) -> float:
    """The slack a checked condition is allowed (non-strict) or must exceed (strict)."""
    return CONDITION_TOLERANCE * (1.0 + scale)


def attained_tolerance(value: float) -> float:
    """How far a solver's optimum may lie from the checked value of its point and still be attained."""
    return ATTAINED_TOLERANCE * (1.0 + abs(value))


def proves_not_positive(upper_bound: float | None) -> bool:
    """Does a solver's proved upper bound show the quantity is never positive (at the solver's resolution)?"""
    return upper_bound is not None and upper_bound <= DECISION_TOLERANCE * (1.0 + abs(upper_bound))
