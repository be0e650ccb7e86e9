"""Does a polytope have an interior? Decided in rational arithmetic, for pieces thinner than the tolerance.

The question is whether ``{x : A x < b}`` (strictly inside every row; ``A``, ``b`` the float64 rows
taken as exact rationals) is non-empty. A floating-point LP proposes; ``fractions.Fraction``
checks:

1. The Chebyshev LP ``max r`` subject to ``a_i . x + w_i r <= b_i`` (``w_i`` the row norms over the
   free inputs) gives a centre. If every row has a positive exact slack there, the interior is
   non-empty: **certified interior**. A piece thinner than the LP's feasibility tolerance is
   then looked at through a zoom: the same LP in ``u`` with ``x = centre + s u`` (``s`` = 1e-6,
   1e-9, 1e-12 times the centre's size), each new centre checked the same way.
2. Otherwise square systems ``M = [A_S w_S]`` of ``f + 1`` rows (``f`` free inputs) are solved
   exactly: first the optimal basis of the same LP with the radius free to go negative (always
   feasible; its optimum is negative when the set is empty), then bases among the rows nearest its
   centre, ``M z = b_S`` for
   ``z = (x_S, r_S)``. If ``r_S > 0`` and every row has a positive exact slack at ``x_S``:
   **certified interior**.
3. And ``M^T y = (0, ..., 0, 1)``. When ``y >= 0``, then for any ``x`` strictly inside,
   ``0 = y . (A_S x) < y . b_S = r_S`` (``A_S^T y = 0``, ``y`` non-zero and non-negative), so
   ``r_S <= 0`` proves the interior empty (Farkas' lemma in Gordan's form): **certified empty**;
   ``r_S < 0`` proves even ``{x : A x <= b}`` empty (``0 = y . (A_S x) <= y . b_S < 0``), while
   ``r_S == 0`` leaves a possibly lower-dimensional piece (``flat``).
4. Anything else is **undecided** (the search then says its list may be incomplete).

Rows that vanish over the free inputs are decided exactly at the fixed inputs' values: a negative
slack makes the set empty, a non-negative one leaves the other rows to decide (such rows come
from the exact rules of :mod:`milp.core.patterns`, which already left out the satisfied ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations

import numpy as np

from milp.enumeration.geometry import chebyshev_center
from milp.solvers.highs import PolytopeLp

__all__ = ["Certificate", "certify_interior"]

# Zoom factors of the LP's second and later tries (relative to the centre's magnitude).
ZOOMS = (1e-6, 1e-9, 1e-12)
# The exact vertices tried: square systems among the f + 1 + SPARE_ROWS rows nearest the centre, at most MAX_BASES.
SPARE_ROWS = 4
MAX_BASES = 300


@dataclass(frozen=True)
class Certificate:
    """The verdict on a polytope's interior: ``verdict`` ``"interior"``, ``"empty"`` or ``"undecided"``;
    with ``"empty"``, ``flat`` True unless the closed set ``{x : A x <= b}`` is proved empty too; with
    ``"interior"``, ``point`` (d,) strictly inside every row (checked exactly before it is rounded to
    float64) and ``radius``, its
    smallest row slack over the row's norm in the free inputs (a float: the exact value rounded)."""

    verdict: str
    point: np.ndarray | None = None
    radius: float = 0.0
    flat: bool = False  # "empty" with r_S == 0: no interior, though the closed set may hold points

    @property
    def interior(self) -> bool:
        return self.verdict == "interior"


def _exact(values) -> list:
    return [Fraction(float(v)) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _solve(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction] | None:
    """``matrix z = rhs`` by Gaussian elimination in rationals; None when the matrix is singular."""
    n = len(rhs)
    rows = [row[:] + [value] for row, value in zip(matrix, rhs)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if rows[r][col] != 0), None)
        if pivot is None:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col] / head[col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], head)]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def _slacks(A: list[list[Fraction]], b: list[Fraction], x: list[Fraction]) -> list[Fraction]:
    return [bi - sum(a * xi for a, xi in zip(row, x)) for row, bi in zip(A, b)]


def certify_interior(A, b, free_mask, fixed_point) -> Certificate:
    """Whether ``{x : A x < b}`` with the fixed inputs at ``fixed_point`` is non-empty, decided exactly
    (see the module docstring). ``A`` (k, d), ``b`` (k,), ``free_mask`` (d,) bool, ``fixed_point`` (d,)."""
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    free = np.asarray(free_mask, dtype=bool)
    fixed_point = np.asarray(fixed_point, dtype=np.float64).reshape(-1)
    fixed = np.flatnonzero(~free)
    exact_b = _exact(b)
    for j in fixed:  # fold the fixed inputs into the right-hand side, exactly
        value = Fraction(float(fixed_point[j]))
        exact_b = [bi - Fraction(float(a)) * value for bi, a in zip(exact_b, A[:, j])]
    F = A[:, free]
    varying = np.any(F != 0.0, axis=1)
    if any(exact_b[i] < 0 for i in np.flatnonzero(~varying)):
        return Certificate("empty")
    flat_rows = any(exact_b[i] == 0 for i in np.flatnonzero(~varying))
    rows = np.flatnonzero(varying)
    exact_A = [_exact(F[i]) for i in rows]
    exact_b = [exact_b[i] for i in rows]
    norms = np.linalg.norm(F[rows], axis=1)
    f = int(free.sum())

    def finish(x_free: list[Fraction]) -> Certificate | None:
        slack = _slacks(exact_A, exact_b, x_free)
        if (slack and min(slack) <= 0) or flat_rows:
            return None
        point = fixed_point.copy()
        point[free] = [float(v) for v in x_free]
        radius = float(min((float(s) / n for s, n in zip(slack, norms)), default=float("inf")))
        return Certificate("interior", point, radius)

    if f == 0:
        return finish([]) or Certificate("empty", flat=True)
    b_free = np.array([float(v) for v in exact_b])
    F = F[rows]
    center, _ = chebyshev_center(F, b_free)
    center = np.zeros(f) if center is None else center
    found = finish(_exact(center))
    if found is not None:
        return found
    # Zoom in: the same LP in u with x = center + s u. A piece thinner than the LP's feasibility
    # tolerance (1e-9) becomes wide enough for it; nothing is cut off (a change of variables).
    for zoom in ZOOMS:
        s = zoom * max(1.0, float(np.max(np.abs(center))))
        u, _ = chebyshev_center(F, (b_free - F @ center) / s)
        if u is None:
            continue
        center = center + s * u
        found = finish(_exact(center))
        if found is not None:
            return found
    # Exact vertices of the Chebyshev LP: square systems of f + 1 rows. The LP with the radius free to
    # go negative is always feasible; its optimal basis (the rows with a positive dual) goes first,
    # then those among the rows nearest its centre.
    signed = PolytopeLp(np.hstack([F, norms[:, None]]), b_free, np.full(f + 1, -np.inf),
                        np.append(np.full(f, np.inf), 1.0 + float(np.max(np.abs(b_free / norms)))))
    objective = np.zeros(f + 1)
    objective[f] = 1.0
    solved = signed.maximize(objective)
    first: list[tuple[int, ...]] = []
    if solved is not None and solved[1] is not None:
        center = solved[1][:f]
    distance = (b_free - F @ center) / norms
    if solved is not None and solved[1] is not None:
        support = [int(i) for i in np.flatnonzero(signed.row_duals() > 1e-12)]
        if 0 < len(support) <= f + 1:  # completed by the other rows that bind (nearest the centre)
            rest = [int(i) for i in np.argsort(distance, kind="stable") if i not in support]
            first.append(tuple(sorted(support + rest[: f + 1 - len(support)])))
    near = [int(i) for i in np.argsort(distance, kind="stable")[: f + 1 + SPARE_ROWS]]
    for tried, basis in enumerate(first + list(combinations(near, f + 1))):
        if tried >= MAX_BASES:
            break
        M = [exact_A[i] + [Fraction(float(norms[i]))] for i in basis]
        z = _solve(M, [exact_b[i] for i in basis])
        if z is None:
            continue
        if z[-1] > 0:
            found = finish(z[:-1])
            if found is not None:
                return found
        transposed = [[M[r][c] for r in range(f + 1)] for c in range(f + 1)]
        y = _solve(transposed, [Fraction(0)] * f + [Fraction(1)])
        if y is not None and min(y) >= 0 and z[-1] <= 0:
            return Certificate("empty", flat=z[-1] == 0)
    return Certificate("undecided")
