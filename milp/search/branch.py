"""Input splitting: best-first branch and bound over sub-boxes, with the MILP kept for small leaves.

On a small input box most neurons are stable, so bounds are tight and the MILP is tiny.
For low-dimensional inputs (where the big-M MILP over the whole box spends thousands of
nodes) the search therefore splits the box instead:

* every sub-box gets symbolic pre-activation bounds and an upper bound on the objective;
* a sub-box whose upper bound cannot beat the best checked point (or cannot reach the
  target) is closed without any solver call;
* a sub-box with few unstable neurons is closed by an exact MILP over it;
* the others are bisected along the input that most lowers the children's upper bound.

Every value reported comes from a point checked by a forward pass; the proof of
optimality is that no open sub-box has an upper bound above it.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from milp.bounds.propagate import Bounds, bound_affine, symbolic_bounds
from milp.core.box import Box
from milp.core.network import Affine, Network
from milp.core.patterns import local_form

__all__ = ["BranchStats", "SubProblem", "split", "best_split", "open_subproblem"]


@dataclass
class BranchStats:
    """Counters of one branch-and-bound run."""

    subproblems: int = 0
    closed_by_bounds: int = 0
    milp_calls: int = 0
    splits: int = 0


@dataclass(frozen=True)
class SubProblem:
    """A sub-box with its pre-activation ``bounds`` and the objective's bounds ``(lower, upper)`` over it."""

    box: Box
    bounds: Bounds
    lower: float
    upper: float


def open_subproblem(network: Network, box: Box, forms: tuple[Affine, ...], combine: Callable = min) -> SubProblem:
    """Bounds of ``combine`` (min by default) of the one-row ``forms`` over ``box``."""
    bounds = symbolic_bounds(network, box)
    lows, highs = [], []
    for form in forms:
        lo, hi = bound_affine(network, bounds, box, form)
        lows.append(float(lo[0]))
        highs.append(float(hi[0]))
    return SubProblem(box, bounds, combine(lows), combine(highs))


def split(box: Box, dim: int) -> tuple[Box, Box]:
    """Halve ``box`` along input ``dim``."""
    middle = 0.5 * (box.lower[dim] + box.upper[dim])
    upper_left = box.upper.copy()
    upper_left[dim] = middle
    lower_right = box.lower.copy()
    lower_right[dim] = middle
    return Box(box.lower, upper_left), Box(lower_right, box.upper)


def best_split(
    network: Network, sub: SubProblem, forms: tuple[Affine, ...], combine: Callable = min
) -> tuple[SubProblem, SubProblem]:
    """Split along the input whose halves have the lowest larger upper bound (ties: the widest input).

    Trying every free input costs two bound computations per input; for the small input
    dimensions this search is used on, that buys far fewer sub-boxes than bisecting the
    widest side.
    """
    best = None
    free = np.flatnonzero(sub.box.upper > sub.box.lower)
    for dim in free:
        left, right = split(sub.box, int(dim))
        a = open_subproblem(network, left, forms, combine)
        b = open_subproblem(network, right, forms, combine)
        score = (max(a.upper, b.upper), a.upper + b.upper, -sub.box.widths[dim])
        if best is None or score < best[0]:
            best = (score, a, b)
    return best[1], best[2]


def gradient_at(network: Network, form: Affine, x: np.ndarray) -> np.ndarray:
    """The gradient (d,) of a one-row form at ``x``: the local affine map of ``x``'s activation pattern."""

    pattern = network.forward(x[None, :]).pattern()[0]
    return local_form(network, pattern, form)[0][0]


def smear_split(network: Network, sub: SubProblem, forms: tuple[Affine, ...], combine: Callable = min) -> tuple[SubProblem, SubProblem]:
    """Split along the input with the largest ``width * |gradient at the centre|`` (cheap: one forward pass).

    The gradient is summed over the forms in absolute value, so every condition counts.
    """
    centre = sub.box.center
    score = np.zeros(network.input_dim)
    for form in forms:
        score += np.abs(gradient_at(network, form, centre))
    score = score * sub.box.widths
    free = sub.box.upper > sub.box.lower
    if not np.any(score[free] > 0):
        score = sub.box.widths.astype(float)
    score[~free] = -1.0
    dim = int(np.argmax(score))
    left, right = split(sub.box, dim)
    return open_subproblem(network, left, forms, combine), open_subproblem(network, right, forms, combine)


def ascent_candidates(network: Network, box: Box, form: Affine, steps: int = 2) -> list[np.ndarray]:
    """The centre of ``box`` and the corners reached by following the local gradient (cheap primal points)."""
    x = box.center
    points = [x]
    for _ in range(steps):
        g = gradient_at(network, form, x)
        corner = np.where(g > 0, box.upper, np.where(g < 0, box.lower, x))
        if np.array_equal(corner, x):
            break
        points.append(corner)
        x = corner
    return points


class Frontier:
    """Open sub-problems, the one with the highest upper bound first."""

    def __init__(self) -> None:
        self._heap: list = []
        self._count = itertools.count()

    def push(self, sub: SubProblem) -> None:
        heapq.heappush(self._heap, (-sub.upper, next(self._count), sub))

    def pop(self) -> SubProblem:
        return heapq.heappop(self._heap)[2]

    def peek_upper(self) -> float:
        return -self._heap[0][0] if self._heap else -np.inf

    def __len__(self) -> int:
        return len(self._heap)


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.perf_counter())
