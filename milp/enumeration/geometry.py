"""From an activation pattern to an explicit input-space polytope (:class:`Region`).

A *pattern* holds one ``'0'``/``'1'`` per ReLU neuron (every ReLU layer in evaluation
order, an output ReLU and stable neurons included); ``'1'`` means active, ``z > 0``.
Fixing it makes the network affine in the input ``x``: ``z_l = A_l x + c_l`` for each ReLU
layer and ``y = C x + d`` (:func:`local_affine_maps`). The pattern's region is the closed set

    ``{x in box : z_{l,k}(x) >= 0 where '1', z_{l,k}(x) <= 0 where '0', every condition >= 0}``

(for a row that varies with ``x``, ``>`` and ``>=`` give the same interior). A row that does
not vary with the free inputs is decided exactly instead: ``'1'`` needs a positive
constant, ``'0'`` a non-positive one, a strict condition a positive one and a non-strict
condition a non-negative one. A coefficient counts as cancelled (exactly 0) when it is below
``1e-12`` times the sum of the magnitudes it was computed from, so ``h - h`` in a residual
network is exactly zero, not rounding noise.

A region *counts* when it has a non-empty interior: its Chebyshev ball (the largest ball
inside it) has a radius above ``tol * max(1, widest box side)``; the default ``tol`` is 1e-7.

Fixed inputs (``lower == upper`` in the box): ``x`` keeps all ``d`` coordinates, the fixed
ones pinned by their two box faces, and interiors, radii, vertices and volumes are measured
in the free coordinates only. A :class:`Region` writes its facets in the free coordinates
(unit norm, zero on the fixed inputs, whose values are folded into ``b``), followed by the
two faces of each fixed input.

Exact geometry by the number ``f`` of free inputs: ``f == 1`` an interval; ``f == 2`` the
polygon by half-plane clipping (counter-clockwise vertices, shoelace area); ``f == 3`` the
polyhedron by qhull (``scipy.spatial.HalfspaceIntersection`` and ``ConvexHull``). For
``f > 3`` (or when qhull or the clipping meets an unbounded or degenerate input) one LP per
row decides redundancy, and there are no vertices or volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError

from milp.core.box import Box
from milp.solvers.highs import PolytopeLp
from milp.core.conditions import evaluate, parse_conditions
from milp.core.network import Network
from milp.core.patterns import pattern_bits, pattern_text, local_affine_maps, pattern_constraints
from milp.core.region import PolytopeError, Region
from milp.core.tolerances import REGION_TOLERANCE

__all__ = [
    "chebyshev_center",
    "remove_redundant",
    "facets_and_vertices",
    "build_region",
    "finish_region",
    "region_of_point",
    "Stopped",
]

# Distances below this (times the box scale) are zero for vertices, edges and facets.
GEOMETRY_TOLERANCE = 1e-9


class Stopped(Exception):
    """A region's geometry was abandoned at a stop request (a time limit)."""


def _free_mask(free_mask, d: int) -> np.ndarray:
    if free_mask is None:
        return np.ones(d, dtype=bool)
    free = np.asarray(free_mask, dtype=bool).reshape(-1)
    if free.size != d:
        raise PolytopeError(f"free mask has {free.size} entries for {d} inputs")
    return free


def _rows(A, b) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if A.ndim != 2 or A.shape[0] != b.size:
        raise PolytopeError(f"rows A {A.shape} and b {b.shape} do not match")
    return A, b


def chebyshev_center(A, b, free_mask=None, radius_cap: float | None = None) -> tuple[np.ndarray | None, float]:
    """Centre ``(d,)`` and radius of the largest ball inside ``{x : A x <= b}``, or ``(None, -inf)`` when it is empty.

    The ball lives in the free coordinates (``free_mask``, default all): rows are measured
    by their norm over them, and rows that vanish there (e.g. the faces of fixed inputs)
    constrain the centre without bounding the ball. The LP is ``max r`` subject to
    ``a_i x + ||a_i|| r <= b_i``, ``0 <= r <= cap``; the cap (default ``1 + max_i |b_i| / ||a_i||``)
    is raised a thousandfold while the optimum reaches it, twice at most, so it is only active
    for unbounded polytopes. The radius returned is re-measured at the centre (the smallest
    row slack), never more than the LP's. With no free coordinate it is ``inf`` (a point).
    """
    A, b = _rows(A, b)
    d = A.shape[1]
    free = _free_mask(free_mask, d)
    zero = ~np.any(A != 0.0, axis=1)
    if np.any(b[zero] < 0):
        return None, -math.inf
    A, b = A[~zero], b[~zero]
    norms = np.linalg.norm(A[:, free], axis=1)
    ball = norms > 0
    scale = np.where(ball, norms, 1.0)
    An, bn = A / scale[:, None], b / scale
    cap = float(radius_cap) if radius_cap is not None else 1.0 + float(np.max(np.abs(bn[ball]), initial=0.0))
    with_radius = np.hstack([An, ball.astype(np.float64)[:, None]])
    has_ball = bool(np.any(free))
    lower = np.append(np.full(d, -np.inf), 0.0)
    lp = PolytopeLp(with_radius, bn, lower, np.append(np.full(d, np.inf), cap if has_ball else 0.0))
    objective = np.zeros(d + 1)
    objective[d] = 1.0
    for _ in range(3):
        found = lp.maximize(objective)
        if found is None or found[1] is None:  # infeasible (r is capped, so never unbounded)
            return None, -math.inf
        r = found[0]
        if not has_ball or r < cap * (1 - 1e-9):
            break
        cap *= 1e3
        lp.set_column_bounds(d, 0.0, cap)
    center = found[1][:d]
    if not has_ball:
        return center, math.inf
    measured = float(np.min(bn[ball] - An[ball] @ center, initial=math.inf))
    return center, min(float(r), measured)


# ------------------------------------------------------------------ irredundant rows
@dataclass(frozen=True)
class _Shape:
    """Facets and exact geometry of ``{v : N v <= c}`` in the free coordinates:
    ``kept`` sorted row indices, ``vertices`` (v, f) or None, ``volume`` or None."""

    kept: np.ndarray
    vertices: np.ndarray | None
    volume: float | None


def _drop_parallel(N: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Of rows with the same unit normal keep the tightest (lowest index on ties); sorted indices."""
    if N.shape[0] == 0:
        return np.zeros(0, dtype=int)
    keys = np.ascontiguousarray(np.round(N, 10) + 0.0)  # + 0.0 turns -0.0 into 0.0 so both group together
    # one opaque value per row: much faster than np.unique(axis=0)
    _, group = np.unique(keys.view(np.dtype((np.void, keys.itemsize * keys.shape[1]))), return_inverse=True)
    group = group.reshape(-1)
    order = np.lexsort((np.arange(c.size), c, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    return np.sort(order[first])


def _corners(normals: np.ndarray, offsets: np.ndarray) -> np.ndarray | None:
    """Vertex j of a polygon whose edges lie on ``normals[j] . v = offsets[j]`` in counter-clockwise
    order: the meeting point of edges j and j + 1. None when two consecutive edges do not turn left."""
    n2, c2 = np.roll(normals, -1, axis=0), np.roll(offsets, -1)
    det = normals[:, 0] * n2[:, 1] - normals[:, 1] * n2[:, 0]
    if np.any(det <= 1e-14):
        return None
    x = (offsets * n2[:, 1] - c2 * normals[:, 1]) / det
    y = (normals[:, 0] * c2 - n2[:, 0] * offsets) / det
    return np.column_stack([x, y])


def _polygon(N: np.ndarray, c: np.ndarray, rows: np.ndarray, center: np.ndarray, tol: float) -> _Shape | None:
    """The exact polygon by clipping a large square around ``center`` with each row (nearest first).

    Edges carry the row they lie on and vertices are recomputed from the two lines that meet
    there, so the result does not depend on the square. A row that cuts nothing off by more
    than ``tol`` is redundant; edges shorter than ``tol`` are dropped (their row only touches a
    vertex). None when the square's edges survive (unbounded) or the arithmetic is degenerate.
    """
    slack = c[rows] - N[rows] @ center
    rows = rows[np.argsort(slack, kind="stable")]
    square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    half = 2.0 * (1.0 + float(np.max(np.abs(slack), initial=0.0)))
    for _ in range(3):
        normals, offsets, labels = square.copy(), square @ center + half, np.full(4, -1)
        for i in rows:
            corners = _corners(normals, offsets)
            if corners is None:
                return None
            outside = corners @ N[i] - c[i] > tol
            if not outside.any():
                continue
            if outside.all():
                return None
            shift = int(np.flatnonzero(~outside)[0])
            outside = np.roll(outside, -shift)
            normals, offsets, labels = (np.roll(a, -shift, axis=0) for a in (normals, offsets, labels))
            run = np.flatnonzero(outside)
            first, last = int(run[0]), int(run[-1])
            if last - first + 1 != run.size:
                return None  # not one run of vertices: rounding broke convexity
            # Edges first+1..last have both ends outside; the new edge joins edges first and last+1.
            keep = np.r_[0 : first + 1, last + 1 : labels.size]
            normals = np.insert(normals[keep], first + 1, N[i], axis=0)
            offsets = np.insert(offsets[keep], first + 1, c[i])
            labels = np.insert(labels[keep], first + 1, i)
        while True:
            corners = _corners(normals, offsets)
            if corners is None:
                return None
            lengths = np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1)  # edge j ends at corner j
            j = int(np.argmin(lengths))
            if lengths[j] > tol or labels.size <= 3:
                break
            normals, offsets, labels = (np.delete(a, j, axis=0) for a in (normals, offsets, labels))
        if np.all(labels >= 0):
            x, y = corners[:, 0], corners[:, 1]
            area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
            return _Shape(np.sort(labels), corners, area)
        half *= 1e3
    return None


QHULL_DIMENSIONS = 6


def _polyhedron(N: np.ndarray, c: np.ndarray, rows: np.ndarray, center: np.ndarray, tol: float) -> _Shape | None:
    """Vertices by qhull's halfspace intersection (each refined from its ``f`` planes), volume by its hull;
    a row is a facet when the vertices on its plane span a face of width above ``tol`` in every one of
    its ``f - 1`` directions. None when qhull fails (the caller then uses LPs)."""
    if np.min(c[rows] - N[rows] @ center, initial=np.inf) <= tol:
        return None  # qhull needs a centre clearly inside
    halfspaces = np.hstack([N[rows], -c[rows, None]])
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # unbounded: points at infinity, rejected below
            meeting = HalfspaceIntersection(halfspaces, center)
        points = np.array(meeting.intersections, dtype=np.float64)
        f = N.shape[1]
        simple = [i for i, planes in enumerate(meeting.dual_facets) if len(planes) == f]
        if simple:
            planes = rows[np.array([meeting.dual_facets[i] for i in simple])]  # (k, f)
            M = N[planes]
            well = np.abs(np.linalg.det(M)) > 1e-12
            if np.any(well):
                chosen = np.array(simple)[well]
                points[chosen] = np.linalg.solve(M[well], c[planes[well]][..., None])[..., 0]
        if not np.all(np.isfinite(points)):
            return None
        # every intersection point is a vertex; the hull is needed only for the 3-D volume
        hull = ConvexHull(points) if f <= 3 else None
    except (QhullError, ValueError, np.linalg.LinAlgError):
        return None
    vertices = points if hull is None else hull.points[hull.vertices]
    distance = c[rows][None, :] - vertices @ N[rows].T  # (vertices, rows), >= 0 inside
    if np.min(distance) < -tol:
        return None  # a vertex outside a row: qhull's answer is not trustworthy here
    touching = distance <= tol
    kept = []
    # a facet's plane holds at least f vertices; most rows touch none, so test only the others
    for position in np.flatnonzero(touching.sum(axis=0) >= f):
        on = vertices[touching[:, position]]
        if np.linalg.svd(on - on[0], compute_uv=False)[f - 2] > tol:
            kept.append(rows[position])
    if f > 3:  # vertices and volume are reported for 2-D and 3-D inputs only
        return _Shape(np.array(kept, dtype=int), None, None)
    return _Shape(np.array(kept, dtype=int), vertices, float(hull.volume))


def _reach(N: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Max of each row ``n . v`` over the box ``lower <= v <= upper``."""
    return np.sum(np.maximum(N * lower, N * upper), axis=1)


def _touching_box(N: np.ndarray, c: np.ndarray, rows: np.ndarray, tol: float) -> np.ndarray:
    """Drop the rows implied by the axis-aligned rows alone (the box faces, which stay)."""
    f = N.shape[1]
    axis = np.max(np.abs(N[rows]), axis=1) >= 1.0 - 1e-15
    lower, upper = np.full(f, -np.inf), np.full(f, np.inf)
    for row in rows[axis]:
        j = int(np.argmax(np.abs(N[row])))
        if N[row, j] > 0:
            upper[j] = min(upper[j], c[row])
        else:
            lower[j] = max(lower[j], -c[row])
    if np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)):
        return rows[axis | (_reach(N[rows], lower, upper) > c[rows] + tol)]
    return rows


def _facets_by_lp(N: np.ndarray, c: np.ndarray, rows: np.ndarray, tol: float, should_stop=None) -> np.ndarray:
    """Rows whose LP maximum of ``n_i . v`` over the other rows (and ``n_i . v <= c_i + 1``) exceeds ``c_i + tol``.

    A row found redundant is switched off before the next test, so the kept rows describe
    the same polytope. Two cheap filters go first: rows implied by the axis-aligned rows
    alone (the box faces, which stay), and, when many rows are left, rows that stay more
    than ``tol`` clear of the polytope's bounding box (2 LPs per coordinate). Rows that never
    touch the polytope can all go at once without changing it. ``should_stop()`` true between two
    LPs raises :class:`Stopped` (one LP per row: hundreds on a 64-input net).
    """
    f = N.shape[1]
    rows = _touching_box(N, c, rows, tol)
    lp = PolytopeLp(N[rows], c[rows], np.full(f, -np.inf), np.full(f, np.inf))
    active = np.ones(rows.size, dtype=bool)
    if rows.size > 4 * f:
        extremes = []
        for unit in np.eye(f):
            if should_stop is not None and should_stop():
                raise Stopped()
            extremes += [lp.maximize(unit), lp.maximize(-unit)]
        if all(e is not None and e[1] is not None for e in extremes):  # a bounded polytope
            upper = np.array([e[0] for e in extremes[0::2]])
            lower = -np.array([e[0] for e in extremes[1::2]])
            active = _reach(N[rows], lower, upper) >= c[rows] - tol
            for position in np.flatnonzero(~active):
                lp.set_row_upper(position, np.inf)
    kept = []
    for position in np.flatnonzero(active):
        if should_stop is not None and should_stop():
            raise Stopped()
        row = rows[position]
        lp.set_row_upper(position, c[row] + 1.0)
        found = lp.maximize(N[row])
        if found is not None and found[1] is not None and found[0] <= c[row] + tol:
            lp.set_row_upper(position, np.inf)
        else:
            kept.append(row)  # a facet (or an empty polytope: keep it)
            lp.set_row_upper(position, c[row])
    return np.array(kept, dtype=int)


def _shape(N: np.ndarray, c: np.ndarray, center: np.ndarray, tol: float, should_stop=None) -> _Shape:
    """Facets (and, in 1 to 3 dimensions, vertices and volume) of ``{v : N v <= c}``, N of unit rows, ``center`` inside."""
    f = N.shape[1]
    rows = _drop_parallel(N, c)
    if f == 1:
        up, down = rows[N[rows, 0] > 0], rows[N[rows, 0] < 0]
        if up.size and down.size:
            ends = np.array([[-c[down[0]]], [c[up[0]]]])
            return _Shape(np.sort(np.r_[up, down]), ends, float(ends[1, 0] - ends[0, 0]))
        return _Shape(rows, None, None)
    shape = None
    if f == 2:
        shape = _polygon(N, c, rows, center, tol)
    elif f <= QHULL_DIMENSIONS:
        # qhull's halfspace intersection: much faster than one LP per row in low dimension;
        # it slows down with every halfspace, so rows that cannot touch the box go first
        shape = _polyhedron(N, c, _touching_box(N, c, rows, tol), center, tol)
    if shape is not None:
        return shape
    return _Shape(np.sort(_facets_by_lp(N, c, rows, tol, should_stop)), None, None)


def _in_free_coordinates(A: np.ndarray, b: np.ndarray, free: np.ndarray, point: np.ndarray):
    """Rows with the fixed coordinates substituted (values from ``point``), normalised over the free ones.

    Returns ``(indices of rows that vary, N (k, f) unit rows, c (k,))``.
    """
    shifted = b - A[:, ~free] @ point[~free]
    norms = np.linalg.norm(A[:, free], axis=1)
    rows = np.flatnonzero(norms > 0)
    return rows, A[rows][:, free] / norms[rows, None], shifted[rows] / norms[rows]


def remove_redundant(A, b, center, free_mask=None, tol: float = GEOMETRY_TOLERANCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The facets of ``{x : A x <= b}``: ``(A[kept], b[kept], kept)`` with ``kept`` sorted row indices.

    ``center`` (d,) is a point with a ball of positive radius inside (a Chebyshev centre).
    With ``free_mask``, the fixed coordinates take ``center``'s values and the polytope is
    taken in the free ones. Rows that do not vary there and rows parallel to a tighter one go
    first; then 2-D polygons are clipped exactly, 3-D polyhedra go through qhull, and above
    one LP per row decides. A row whose removal moves the boundary by at most ``tol`` times
    ``max(1, max |center|)`` counts as redundant.
    """
    A, b = _rows(A, b)
    center = np.asarray(center, dtype=np.float64).reshape(-1)
    if center.size != A.shape[1]:
        raise PolytopeError(f"centre has {center.size} coordinates, the rows have {A.shape[1]}")
    free = _free_mask(free_mask, A.shape[1])
    rows, N, c = _in_free_coordinates(A, b, free, center)
    scale = max(1.0, float(np.max(np.abs(center), initial=0.0)))
    kept = rows[_shape(N, c, center[free], tol * scale).kept]
    return A[kept], b[kept], kept


def facets_and_vertices(A, b, center, free_mask=None, tol: float = GEOMETRY_TOLERANCE):
    """The facets of ``{x : A x <= b}`` and its vertices: ``(A[kept], b[kept], vertices)``.

    As :func:`remove_redundant`, except that rows which do not vary over the free coordinates are
    dropped from the facets (the caller keeps the faces of fixed inputs), and ``vertices`` (v, d),
    with the fixed coordinates at ``center``'s values, are given for 1 to 3 free coordinates
    (counter-clockwise for 2), else None.
    """
    A, b = _rows(A, b)
    center = np.asarray(center, dtype=np.float64).reshape(-1)
    free = _free_mask(free_mask, A.shape[1])
    rows, N, c = _in_free_coordinates(A, b, free, center)
    scale = max(1.0, float(np.max(np.abs(center), initial=0.0)))
    shape = _shape(N, c, center[free], tol * scale)
    kept = rows[shape.kept]
    vertices = None
    if shape.vertices is not None:
        vertices = np.tile(center, (shape.vertices.shape[0], 1))
        vertices[:, free] = shape.vertices
    return A[kept], b[kept], vertices


def _assemble(network: Network, box: Box, bits: np.ndarray, A, b, center, radius: float, thin: bool = False,
              affine=None, shape=None, should_stop=None) -> Region:
    """A :class:`Region` from (possibly redundant) rows and a Chebyshev centre of a pattern's region.

    A ``thin`` region (interior certified exactly, radius at most the tolerance) keeps the certified
    ``radius`` and is measured with a geometry tolerance below its radius. ``affine`` is the output's
    map when the caller has it; ``shape`` ``(facets, vertices, volume)`` is what the caller already knows of
    the region's exact geometry, every input free (facets index the rows of ``A``; vertices and volume
    for 2 and 3 inputs, else None)."""
    A, b = _rows(A, b)
    output = affine if affine is not None else local_affine_maps(network, bits).output
    if shape is not None and not thin:
        facets, vertices, area = shape
        norms = np.linalg.norm(A[facets], axis=1)
        region_A, region_b = A[facets] / norms[:, None], b[facets] / norms
        center = np.array(center, dtype=np.float64).reshape(-1)
        # the radius is re-measured at the centre (the facets hold the ball): never more than the caller's claim
        radius = min(float(radius), float(np.min(region_b - region_A @ center, initial=math.inf)))
        return Region(pattern_text(bits), region_A, region_b, center, radius, output, vertices, area, thin)
    free = box.upper > box.lower
    fixed = ~free
    d = network.input_dim
    # The region lies in the box whether or not the rows say so; redundant faces are dropped below.
    A = np.vstack([A, np.eye(d), -np.eye(d)])
    b = np.concatenate([b, box.upper, -box.lower])
    center = np.array(center, dtype=np.float64).reshape(-1)
    center[fixed] = box.lower[fixed]
    rows, N, c = _in_free_coordinates(A, b, free, center)
    f = int(free.sum())
    scale = max(1.0, float(np.max(np.abs(box.lower))), float(np.max(np.abs(box.upper))))
    # The radius is re-measured at the centre: a certificate, never more than the caller's claim.
    if not thin:
        radius = min(float(radius), float(np.min(c - N @ center[free], initial=math.inf)))
    constant = np.setdiff1d(np.arange(b.size), rows)
    if np.any(b[constant] - A[constant] @ center < -GEOMETRY_TOLERANCE * scale):
        radius = -math.inf  # a row that does not vary fails: the rows describe an empty set
    geometry_tol = GEOMETRY_TOLERANCE * scale if not thin else min(GEOMETRY_TOLERANCE * scale, 1e-3 * max(radius, 1e-300))
    if f:
        shape = _shape(N, c, center[free], geometry_tol, should_stop)
    else:
        shape = _Shape(np.zeros(0, dtype=int), np.zeros((1, 0)), None)
    facets = np.zeros((shape.kept.size, d))
    facets[:, free] = N[shape.kept]
    eye = np.eye(d)[fixed]
    region_A = np.vstack([facets, eye, -eye])
    region_b = np.concatenate([c[shape.kept], box.lower[fixed], -box.lower[fixed]])
    vertices = None
    if shape.vertices is not None:
        vertices = np.tile(box.lower, (shape.vertices.shape[0], 1))
        vertices[:, free] = shape.vertices
    return Region(pattern_text(bits), region_A, region_b, center, radius, output, vertices, shape.volume, thin)


def _radius_tolerance(box: Box, tol: float) -> float:
    if not (tol > 0 and math.isfinite(tol)):
        raise PolytopeError(f"tol must be a positive number, got {tol}")
    return float(tol) * max(1.0, float(np.max(box.widths)))


def build_region(network: Network, box: Box, pattern, conditions=(), tol: float = REGION_TOLERANCE) -> Region | None:
    """The region of ``pattern`` (str or bools) in ``box`` where ``conditions`` hold, or None when its
    interior is empty: Chebyshev radius ``<= tol * max(1, widest box side)`` (relative to the box scale)."""
    threshold = _radius_tolerance(box, tol)
    bits = pattern_bits(network, pattern)
    A, b = pattern_constraints(network, box, bits, conditions)
    center, radius = chebyshev_center(A, b, box.upper > box.lower)
    if center is None or radius <= threshold:
        return None
    return _assemble(network, box, bits, A, b, center, radius)


def finish_region(network: Network, box: Box, raw, should_stop=None) -> Region:
    """A :class:`Region` from what an enumeration found: ``raw`` has ``pattern`` (bools), rows ``A``
    and ``b`` (possibly redundant; the box faces are added here), a Chebyshev ``center`` and ``radius``.

    Raises :class:`PolytopeError` when ``center`` (with the fixed inputs at their box values)
    is not strictly inside the rows: the enumeration's claim does not hold; :class:`Stopped` when
    ``should_stop()`` turns true while its facets are sought.
    """
    thin = bool(getattr(raw, "thin", False))
    region = _assemble(network, box, pattern_bits(network, raw.pattern), raw.A, raw.b, raw.center, raw.radius, thin,
                       getattr(raw, "affine", None), getattr(raw, "shape", None), should_stop)
    if not region.radius > 0:
        raise PolytopeError(
            f"region {region.pattern}: its centre is not inside its rows (slack {region.radius:.3g}); "
            "the enumeration handed over an empty or lower-dimensional piece"
        )
    return region


def region_of_point(network: Network, box: Box, x, conditions=(), tol: float = REGION_TOLERANCE) -> Region | None:
    """The region of the pattern of ``x`` (shape (input_dim,), inside ``box``; pattern by a forward pass).

    None when the conditions fail at ``x`` or the region is lower-dimensional (``x`` on a
    boundary where no full-dimensional region has its pattern).
    """
    box.check_dim(network.input_dim)
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (network.input_dim,):
        raise PolytopeError(f"point has shape {x.shape}, the network takes ({network.input_dim},)")
    if not box.contains(x):
        raise PolytopeError(f"point {x.tolist()} lies outside the box {box.to_text()}")
    conditions = parse_conditions(network, conditions)
    if not evaluate(network, conditions, x[None, :])[0]:
        return None
    return build_region(network, box, network.forward(x[None, :]).pattern()[0], conditions, tol)
