"""The region search's polytope in the plane, kept exactly as a polygon instead of an LP.

With two free inputs, every polytope the search meets is a convex polygon, and clipping it by
one half-plane is a handful of array operations. :class:`PolygonStack` has the interface of
:class:`~milp.solvers.highs.LpStack` (``push``, ``truncate``, ``current_rows``, ``optimize``,
``chebyshev``), so the search runs unchanged, and it adds what only exact vertices give:

* ``ranges``: the exact minimum and maximum of many affine functions at once (over the vertices),
  so most neurons are decided without any optimisation;
* ``shape``: the facets (the rows that carry an edge), the counter-clockwise vertices and the
  area of a finished region, so the region's irredundant rows come from the search itself.

Each edge carries the index of the row it lies on. The interior point is the mean of the
vertices, with the disc its smallest row slack allows. When that disc is not wider than the
search's tolerance, the largest disc is found exactly by trying every three edges (the LP
``max r`` in three variables has an optimal vertex where three rows are tight; above
:data:`TRIPLE_EDGES` edges the LP is solved instead), so regions and thin pieces are decided
exactly as with the LP.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from milp.core.errors import InternalError
from milp.enumeration.exact import ExactStack

__all__ = ["PolygonStack", "TRIPLE_EDGES"]

TRIPLE_EDGES = 40  # beyond this many edges the Chebyshev ball is an LP (the triples grow as k^3)
_SAME_POINT = 1e-15  # relative to the box scale: vertices closer than this are one vertex


@lru_cache(maxsize=None)
def _triples(k: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(k), 3)), dtype=np.intp).reshape(-1, 3)


class PolygonStack(ExactStack):
    """The polygon ``{x in R^2 : A x <= b}`` of a depth-first search, clipped on ``push`` and restored on ``truncate``.

    ``lower`` and ``upper`` (2,) are the box: the starting rectangle. Vertices ``(k, 2)`` run
    counter-clockwise; ``labels[j]`` (the stack's ``marks``) is the row of the edge from vertex ``j``
    to vertex ``j + 1`` (-1 for a side of the starting rectangle that no row has covered yet).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray):
        (l0, l1), (u0, u1) = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        super().__init__(lower, upper, np.array([[l0, l1], [u0, l1], [u0, u1], [l0, u1]]), np.full(4, -1, dtype=np.intp))

    @property
    def labels(self) -> np.ndarray:
        return self.marks

    def _cut(self, a: np.ndarray, beta: float, label: int, opposite: bool = False):
        """Clip by ``a . x <= beta`` (its edge labelled ``label``); with ``opposite``, return the other
        side's ``(vertices, labels)`` (whose new edge carries the same label: the row that replaces this one)."""
        V, labels = self.vertices, self.marks
        k = V.shape[0]
        empty = (np.zeros((0, 2)), np.zeros(0, dtype=np.intp))
        if k == 0:
            return empty
        s = V @ a - beta
        eps = 1e-12 * self.scale * (1.0 + float(np.abs(a).sum()))
        out = s > eps
        if not out.any() or out.all():
            if out.all():
                self.vertices, self.marks = empty
                return (V, labels) if opposite else None
            # an edge lying on the row's line is now that row's edge (the rectangle's sides at first)
            on = np.abs(s) <= eps
            lying = on & np.concatenate([on[1:], on[:1]]) & (labels < 0)
            if lying.any():
                self.marks = np.where(lying, label, labels)
            return empty if opposite else None
        index = np.flatnonzero(out)
        starts = index[~out[index - 1]]
        if starts.size != 1:
            raise InternalError("clipping a convex polygon met vertices outside in two runs (rounding broke convexity)")
        p, n_out = int(starts[0]), index.size
        q = (p + n_out - 1) % k
        before, after = (p - 1) % k, (q + 1) % k
        t1 = s[before] / (s[before] - s[p])
        t2 = s[q] / (s[q] - s[after])
        P1 = V[before] + t1 * (V[p] - V[before])
        P2 = V[q] + t2 * (V[after] - V[q])
        order = (after + np.arange(k - n_out)) % k
        self.vertices, self.marks = self._tidy(
            np.vstack([V[order], P1, P2]), np.concatenate([labels[order], [label, labels[q]]])
        )
        if not opposite:
            return None
        run = (p + np.arange(n_out)) % k
        return self._tidy(np.vstack([V[run], P2, P1]), np.concatenate([labels[run], [label, labels[before]]]))

    def _tidy(self, V: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop edges of (almost) zero length (each goes with its first vertex); fewer than 3 vertices is empty."""
        following = np.concatenate([V[1:], V[:1]])
        keep = np.abs(following - V).sum(axis=1) > _SAME_POINT * self.scale
        if not keep.all():
            V, labels = V[keep], labels[keep]
        if V.shape[0] < 3:
            return np.zeros((0, 2)), np.zeros(0, dtype=np.intp)
        return V, labels

    # ------------------------------------------------------------------ what the search asks
    def _rows_for_ball(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit outward normals (k, 2) and offsets (k,) of the polygon's edges: the rows they lie on, or
        (for a rectangle side no row has covered) the line through the edge's two vertices."""
        V, labels = self.vertices, self.labels
        direction = np.concatenate([V[1:], V[:1]]) - V
        normal = np.column_stack([direction[:, 1], -direction[:, 0]])
        offset = np.sum(normal * V, axis=1)
        own = labels >= 0
        normal[own], offset[own] = self._A[labels[own]], self._b[labels[own]]
        norm = np.linalg.norm(normal, axis=1)
        return normal / norm[:, None], offset / norm

    def _largest_ball(self, N: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The largest disc: the best of every three edges (an LP above :data:`TRIPLE_EDGES` edges)."""
        k = N.shape[0]
        if k > TRIPLE_EDGES:
            return super()._largest_ball(N, c)
        T = _triples(k)
        M = np.concatenate([N[T], np.ones((T.shape[0], 3, 1))], axis=2)  # (t, 3, 3): n . x + r = c
        well = np.abs(np.linalg.det(M)) > 1e-12
        if not well.any():
            return self.vertices.mean(axis=0), 0.0
        solved = np.linalg.solve(M[well], c[T[well]][..., None])[..., 0]  # (t, 3): x, y, r
        slack = c[None, :] - solved[:, :2] @ N.T - solved[:, 2:3]  # >= 0 where feasible
        feasible = np.all(slack >= -1e-12 * self.scale, axis=1) & (solved[:, 2] >= 0)
        if not feasible.any():
            return self.vertices.mean(axis=0), 0.0
        best = solved[feasible][int(np.argmax(solved[feasible, 2]))]
        center = best[:2]
        return center, float(min(best[2], np.min(c - N @ center)))

    def shape(self, tol: float) -> tuple[np.ndarray, np.ndarray, float]:
        """``(facets, vertices, area)``: the sorted rows that carry an edge longer than ``tol``, the
        counter-clockwise vertices (an edge not longer than ``tol`` merges its two ends), and the area."""
        V, labels = self.vertices, self.labels
        step = np.concatenate([V[1:], V[:1]]) - V
        keep = np.hypot(step[:, 0], step[:, 1]) > tol
        if keep.sum() >= 3 and not keep.all():
            V, labels = V[keep], labels[keep]
        if np.any(labels < 0):
            raise InternalError("a polygon edge lies on no row (the box's rows were not pushed first)")
        following = np.concatenate([V[1:], V[:1]])
        area = 0.5 * float(np.sum(V[:, 0] * following[:, 1] - following[:, 0] * V[:, 1]))
        return np.sort(labels), V.copy(), area  # a row carries at most one edge of a convex polygon
