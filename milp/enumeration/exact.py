"""What the region search's exact polytopes share: the row stack and the answers read off vertices.

:class:`~milp.enumeration.polygon.PolygonStack` (two inputs) and
:class:`~milp.enumeration.vertices.VertexStack` (up to five) keep the node's polytope as its
vertices plus one array of their own (edge labels, or the incidence). Both have the interface of
:class:`~milp.solvers.highs.LpStack`; this base holds the rows as pushed (with room to grow), the
saved states that ``truncate`` restores, and the minimum and maximum of affine functions over the
vertices (exact for a polytope).
"""

from __future__ import annotations

import numpy as np

from milp.core.errors import InternalError

__all__ = ["ExactStack"]


class ExactStack:
    """A polytope kept exactly by a subclass, whose state is ``(vertices (k, d), marks)``.

    A subclass sets ``vertices`` and ``marks`` (what each vertex or edge carries), and implements
    ``_cut(a, beta, row, opposite)``: cut by ``a . x <= beta`` (pushed as ``row``), returning the other
    side's state when ``opposite``. Rows with an index below ``built_rows`` are already part of the
    starting polytope (not cut again).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, vertices: np.ndarray, marks: np.ndarray, built_rows: int = 0):
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        self.dim = self.lower.size
        self.scale = max(1.0, float(np.max(np.abs(np.concatenate([self.lower, self.upper])))))
        self.vertices, self.marks = vertices, marks
        self.built_rows = built_rows
        self.rows = 0
        self.solves = 0
        self._A = np.zeros((64, self.dim))  # rows as pushed, with room to grow (doubled when full)
        self._b = np.zeros(64)
        self._saved: list[tuple[int, np.ndarray, np.ndarray]] = []

    def push(self, A: np.ndarray, b: np.ndarray, norms: np.ndarray | None = None, known=None, opposite: bool = False):
        """Add rows ``A x <= b`` (A of shape (k, d)) and cut the polytope by each; ``norms`` is unused
        (kept for the interface of :class:`~milp.solvers.highs.LpStack`).

        For one row: with ``opposite``, returns the polytope of the other side (``A x >= b``), from the
        same cut, for a later ``push`` of that side with ``known``; ``known`` is such a polytope, taken
        as the result instead of cutting again.
        """
        A = np.asarray(A, dtype=float).reshape(-1, self.dim)
        b = np.asarray(b, dtype=float).reshape(-1)
        if A.shape[0] == 0:
            return None
        self._saved.append((self.rows, self.vertices, self.marks))
        end = self.rows + A.shape[0]
        if end > self._b.size:
            grown = max(2 * self._b.size, end)
            self._A = np.vstack([self._A[: self.rows], np.zeros((grown - self.rows, self.dim))])
            self._b = np.concatenate([self._b[: self.rows], np.zeros(grown - self.rows)])
        self._A[self.rows : end] = A
        self._b[self.rows : end] = b
        other = None
        if known is not None:
            self.vertices, self.marks = known
        else:
            for k in range(A.shape[0]):
                if self.rows + k >= self.built_rows:
                    other = self._cut(A[k], float(b[k]), self.rows + k, opposite)
        self.rows = end
        return other

    def truncate(self, rows: int) -> None:
        """Drop every row past the first ``rows`` (the polytope returns to what it was then)."""
        while self.rows > rows:
            if not self._saved:
                raise InternalError("truncate must return to a row count that a push left")
            self.rows, self.vertices, self.marks = self._saved.pop()
        if self.rows != rows:
            raise InternalError("truncate must return to a row count that a push left")

    def current_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The polytope's rows ``(A (rows, d), b (rows,))``, as pushed."""
        return self._A[: self.rows].copy(), self._b[: self.rows].copy()

    def _cut(self, a: np.ndarray, beta: float, row: int, opposite: bool):
        raise NotImplementedError

    def _rows_for_ball(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit rows ``(N (k, d), c (k,))`` that bound the polytope (here: every row pushed)."""
        A, b = self._A[: self.rows], self._b[: self.rows]
        norms = np.linalg.norm(A, axis=1)
        return A / norms[:, None], b / norms

    def _largest_ball(self, N: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The Chebyshev centre and radius of ``{x : N x <= c}`` (an LP), or None when it is empty."""
        from milp.enumeration.geometry import chebyshev_center  # geometry builds on the search's modules

        center, radius = chebyshev_center(N, c)
        return None if center is None else (center, radius)

    def chebyshev(self, tol: float = 0.0) -> tuple[np.ndarray, float] | None:
        """An interior point and the radius of a ball around it inside the polytope, or None when it is empty.

        The point is the mean of the vertices; when its ball is not wider than ``tol``, the largest ball
        (the Chebyshev centre) is found instead, so that a ball wider than ``tol`` is never missed.
        """
        self.solves += 1
        if self.vertices.shape[0] == 0:
            return None
        N, c = self._rows_for_ball()
        center = self.vertices.mean(axis=0)
        radius = float(np.min(c - N @ center))
        if radius > tol:
            return center, radius
        return self._largest_ball(N, c)

    def ranges(self, G: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(min, max)`` of ``G x + g`` over the polytope, G of shape (n, d); (+inf, -inf) when empty."""
        if self.vertices.shape[0] == 0:
            n = G.shape[0]
            return np.full(n, np.inf), np.full(n, -np.inf)
        values = self.vertices @ G.T
        return values.min(axis=0) + g, values.max(axis=0) + g

    def optimize(self, c: np.ndarray, maximize: bool) -> tuple[float, np.ndarray] | None:
        """Optimum of ``c . x`` over the polytope: ``(value, vertex)``, or None when it is empty."""
        self.solves += 1
        if self.vertices.shape[0] == 0:
            return None
        values = self.vertices @ c
        j = int(np.argmax(values) if maximize else np.argmin(values))
        return float(values[j]), self.vertices[j].copy()
