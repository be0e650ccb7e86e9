"""The region search's polytope in a few dimensions, kept exactly as its vertices instead of an LP.

Every polytope the search meets is the box cut by the rows pushed on the way down. In a few
dimensions it has few vertices, and cutting it by one half-space is array work: vertices
outside go, and each edge from a vertex inside to one outside gives a new vertex where it
crosses the plane (the double description method). :class:`VertexStack` has the interface of
:class:`~milp.solvers.highs.LpStack` (``push``, ``truncate``, ``current_rows``, ``optimize``,
``chebyshev``), so the search runs unchanged, and it adds what only exact vertices give:

* ``ranges``: the exact minimum and maximum of many affine functions at once, so neurons are
  decided without any LP;
* ``facets``: the rows that carry a facet (decided from which vertices are tight on which rows), so
  the region's irredundant rows come from the search itself.

Each vertex keeps the set of rows it is tight on (the incidence). Which pairs of vertices are
joined by an edge is decided combinatorially: ``u`` and ``w`` are adjacent when no other vertex is
tight on every row both are tight on (the face those rows define is then the segment ``uw``). A
vertex on the cutting plane (within rounding) stays and becomes tight on the new row, so
incidence never depends on a second rounding test.

The interior point is the mean of the vertices; its ball (the smallest row slack) certifies a
full-dimensional region. Only when that ball is not wider than the search's tolerance is the
Chebyshev ball solved as an LP, so regions and thin pieces are decided exactly as with the LP.
"""

from __future__ import annotations

import itertools

import numpy as np

from milp.enumeration.exact import ExactStack

__all__ = ["VertexStack", "VERTEX_DIMENSIONS"]

VERTEX_DIMENSIONS = 5  # up to this many free inputs the search keeps vertices (ACAS Xu has 5); above, an LP (vertices multiply with the dimension)


class VertexStack(ExactStack):
    """The polytope ``{x : A x <= b}`` of a depth-first search as vertices, cut on ``push`` and restored on ``truncate``.

    ``lower`` and ``upper`` (d,) are the box (every input free): the starting polytope, whose
    ``2^d`` corners are tight on the box's ``2 d`` faces. Those faces must be the first rows
    pushed, ``x <= upper`` then ``-x <= -lower`` (as the search does); corners are tight on them
    from the start. ``tight[v, r]`` (the stack's ``marks``) is 1 when vertex ``v`` lies on row ``r``.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray):
        lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        d = lower.size
        corners = np.array(list(itertools.product((0, 1), repeat=d)), dtype=bool)  # True: at upper
        # rows 0..d-1: x <= upper, rows d..2d-1: -x <= -lower; 0/1 floats, so that counts are products
        tight = np.hstack([corners, ~corners]).astype(np.float32)
        super().__init__(lower, upper, np.where(corners, upper, lower), tight, built_rows=2 * d)

    @property
    def tight(self) -> np.ndarray:
        return self.marks

    def _cut(self, a: np.ndarray, beta: float, row: int = -1, opposite: bool = False):
        """Cut by ``a . x <= beta`` (the newest row); with ``opposite``, return the other side's ``(vertices, tight)``."""
        V, T = self.vertices, self.marks
        s = V @ a - beta
        eps = 1e-12 * self.scale * (1.0 + float(np.abs(a).sum()))
        out, inside = s > eps, s < -eps
        on = ~(out | inside)
        ins, outs = np.flatnonzero(inside), np.flatnonzero(out)
        new_V, new_T = np.zeros((0, self.dim)), np.zeros((0, T.shape[1] + 1), dtype=np.float32)
        if ins.size and outs.size:
            # candidate edges: an inside and an outside vertex tight together on at least d - 1 rows
            pi, po = np.nonzero(T[ins] @ T[outs].T >= self.dim - 1.5)
            if pi.size:
                u, w = ins[pi], outs[po]
                common = T[u] * T[w]  # (candidates, rows)
                # an edge: no third vertex is tight on all of the common rows
                containing = (T @ common.T) >= common.sum(axis=1) - 0.5
                edge = np.count_nonzero(containing, axis=0) == 2
                u, w = u[edge], w[edge]
                t = (s[u] / (s[u] - s[w]))[:, None]
                new_V = V[u] + t * (V[w] - V[u])
                new_T = np.hstack([common[edge], np.ones((u.size, 1), dtype=np.float32)])
        on_column = on.astype(np.float32)[:, None]  # vertices on the plane are tight on the new row
        tagged = np.hstack([T, on_column])

        def side(keep):
            if keep.all() and not new_V.shape[0]:
                return V, tagged
            return np.vstack([V[keep], new_V]), np.vstack([tagged[keep], new_T])

        self.vertices, self.marks = side(~out)
        return side(~inside) if opposite else None

    # ------------------------------------------------------------------ what the search asks
    def facets(self) -> np.ndarray:
        """Sorted indices of the rows that carry a facet, decided from the incidence alone.

        A row's tight vertices form a face; it is a facet when it has at least ``d`` vertices and no
        other row's face strictly contains it (a facet is a maximal proper face, and a smaller face
        lies in a facet with more vertices). A row whose face equals an earlier row's is the same
        facet and is left out.
        """
        T = self.tight[:, : self.rows]
        counts = T.sum(axis=0)
        rows = np.flatnonzero(counts >= self.dim - 0.5)
        if rows.size == 0:
            return rows
        Tr, c = T[:, rows], counts[rows]
        shared = Tr.T @ Tr  # (rows, rows): vertices tight on both
        inside = shared >= c[:, None] - 0.5  # row i's face lies in row j's
        larger = c[None, :] > c[:, None] + 0.5
        earlier = np.tri(rows.size, k=-1, dtype=bool)  # j < i
        covered = (inside & (larger | (earlier & (c[None, :] < c[:, None] + 0.5)))).any(axis=1)
        return rows[~covered]

    def shape(self, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray | None, float | None]:
        """``(facets, vertices, volume)``: :meth:`facets`, and for three inputs the vertices and the volume
        (by their convex hull); above three, None for both (as a region reports them). ``tol`` is unused
        (facets are decided from the incidence)."""
        facets = self.facets()
        if self.dim != 3:
            return facets, None, None
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = ConvexHull(self.vertices)
        except QhullError:
            return facets, None, None
        return facets, hull.points[hull.vertices].copy(), float(hull.volume)
