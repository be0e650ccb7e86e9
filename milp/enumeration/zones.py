"""Which listed regions share a facet (:func:`adjacency`), their union as few convex zones (:func:`merge_regions`),
and the regions cut where the predicted class changes (:func:`decision_pieces`).

Both work on a list of :class:`~milp.core.region.Region` values alone (a search's, or a region
file's), whatever engine found them. Inputs that a region's rows pin (both faces of a fixed input)
are left alone: everything below happens in the free inputs.

**Adjacency.** Two regions are neighbours across row ``i`` of ``R`` when ``R``'s facet ``a . x <= c``
and a facet of ``N`` lie on the same hyperplane with opposite sides (``N`` has ``-a . x <= -c``, up to
``1e-6`` in the unit normal and in the offset relative to the box scale) and the two facets overlap
in a piece of the hyperplane that holds a ``(f - 1)``-dimensional ball of radius above the
tolerance (one Chebyshev LP in the hyperplane's coordinates, ``f`` the number of free inputs).
Candidates are found by a k-d tree over the facets, so the cost is one LP per facet pair that
lies on a common hyperplane. A facet may have several neighbours (where deeper neurons' bent
hyperplanes end on it) or none (a box face, or a condition's boundary: the other side is not in
the list).

**Zones.** Greedy merging: start with one zone per region; merge two adjacent zones ``P1``,
``P2`` whenever their union is convex; repeat until no pair merges. The union test is exact at
the tolerance: let ``P`` be the polytope of the rows of ``P1`` and ``P2`` that are valid for both
(a row of ``P1`` is valid for ``P2`` when its maximum over ``P2``, at a vertex or by an LP, is at
most ``b_i + 1e-9 * scale``). Then ``P1 ∪ P2 ⊆ P``, and

* ``P1 ∪ P2`` is convex iff it equals ``P``: a convex union is the intersection of its facets'
  half-spaces, and each facet of the union contains a ``(f - 1)``-dimensional piece of a facet
  of ``P1`` or ``P2`` on the same hyperplane, a row valid for both, hence a row of ``P``;
* ``P \\ P1`` is the union over the rows ``i`` of ``P1`` *not* valid for ``P2`` of
  ``P ∩ {a_i x > b_i}`` (the valid rows hold on all of ``P``), likewise for ``P2``, so
  ``P \\ (P1 ∪ P2)`` is the union over pairs ``(i, j)`` of ``P ∩ {a_i x >= b_i} ∩ {a'_j x >= b'_j}``
  (closures), and it is empty of interior iff none of these polytopes holds a ball of radius
  above the tolerance: one Chebyshev LP per pair.

So a merged zone equals the union of its regions up to pieces thinner than the tolerance. Greedy
pairwise merging gives a cover by convex zones but not always the fewest (three regions whose
union is convex while no two of them are, e.g. three 120-degree wedges of a hexagon, stay
apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from milp.core.options import check_tolerance
from milp.core.region import Neighbour, PolytopeError, Region, Zone
from milp.core.tolerances import REGION_TOLERANCE
from milp.enumeration.geometry import GEOMETRY_TOLERANCE, chebyshev_center, facets_and_vertices
from milp.solvers.highs import PolytopeLp

__all__ = ["DecisionPiece", "adjacency", "decision_pieces", "merge_regions", "neighbours_of"]

# Two facets lie on one hyperplane when their unit normals and offsets (relative to the scale) agree to this
# (as a Euclidean distance between (normal, offset) pairs); the shared piece is then checked.
SAME_HYPERPLANE = 1e-6


def _pinned_rows(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    axis = np.count_nonzero(A, axis=1) == 1
    pinned = np.zeros(A.shape[0], dtype=bool)
    for i in np.flatnonzero(axis):
        j = int(np.flatnonzero(A[i])[0])
        opposite = axis & (A[:, j] * A[i, j] < 0) & np.isclose(b * np.abs(A[:, j]), -b[i] * abs(A[i, j]), rtol=0, atol=1e-12)
        if np.any(opposite):
            pinned[i] = True
    return pinned


def _free_mask(regions: Sequence) -> np.ndarray:
    """Inputs that are free: not pinned by two opposite faces in the first region."""
    first = regions[0]
    free = np.ones(first.dim, dtype=bool)
    pins = _pinned_rows(first.A, first.b)
    for i in np.flatnonzero(pins):
        free[int(np.flatnonzero(first.A[i])[0])] = False
    return free


def _scale(regions: Sequence) -> float:
    return max(1.0, max(float(np.max(np.abs(r.b), initial=0.0)) for r in regions))


def _check_regions(regions: Sequence) -> None:
    if not regions:
        return
    d = regions[0].dim
    if any(r.dim != d for r in regions):
        raise PolytopeError("the regions do not all have the same number of inputs")
    patterns = [r.pattern for r in regions]
    if len(set(patterns)) != len(patterns):
        raise PolytopeError("a pattern is listed twice: adjacency and zones need each region once")


def _facet_ball(A1, b1, A2, b2, normal, offset, free, point) -> float:
    """Radius of the largest ``(f - 1)``-ball in the hyperplane ``normal . x = offset`` inside both polytopes.

    The hyperplane is parametrised as ``v0 + Q y`` (``Q`` an orthonormal basis of ``normal``'s
    complement in the free coordinates); rows parallel to it only say whether it is inside.
    """
    A = np.vstack([A1, A2])
    b = np.concatenate([b1, b2]) - A[:, ~free] @ point[~free]
    N = A[:, free]
    n = normal[free] / np.linalg.norm(normal[free])
    c = offset / np.linalg.norm(normal[free])
    f = int(free.sum())
    v0 = n * c
    # orthonormal complement of n: the last f - 1 left singular vectors
    basis = np.linalg.svd(n.reshape(f, 1), full_matrices=True)[0][:, 1:]
    M = N @ basis
    rhs = b - N @ v0
    along = np.linalg.norm(M, axis=1) > 1e-12
    if np.any(rhs[~along] < -GEOMETRY_TOLERANCE * max(1.0, abs(c))):
        return -math.inf
    if f == 1:
        return math.inf
    _, radius = chebyshev_center(M[along], rhs[along])
    return radius


def _segment_overlap(R, N, row: int, free: np.ndarray, touch: float) -> float:
    """Half the length of the common part of two polygons' edges on ``R``'s row ``row`` (two free
    inputs): the radius of the largest 1-ball in it, from the polygons' vertices (exact to ``touch``)."""
    a, c = R.A[row][free], R.b[row]
    direction = np.array([-a[1], a[0]])
    spans = []
    for region in (R, N):
        v = region.vertices[:, free]
        on = np.abs(v @ a - c) <= touch
        if np.count_nonzero(on) < 2:
            return -math.inf
        t = v[on] @ direction
        spans.append((t.min(), t.max()))
    return (min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0])) / 2


def adjacency(regions: Sequence[Region], tol: float = REGION_TOLERANCE) -> tuple[Neighbour, ...]:
    """Every pair of listed regions that share a piece of facet, from both sides (see the module docstring).

    ``tol`` is the smallest radius of the shared piece, relative to the regions' scale
    (``max(1, max |b|)``). Returns :class:`~milp.core.region.Neighbour` values ordered by region (as
    listed), then facet row, then neighbour pattern.

    >>> # for n in milp.adjacency(regions): n.region, n.facet, n.neighbour
    """
    tol = check_tolerance(tol, "tol")
    regions = list(regions)
    _check_regions(regions)
    if len(regions) < 2:
        return ()
    free = _free_mask(regions)
    scale = _scale(regions)
    keys, owners = [], []
    for index, region in enumerate(regions):
        varying = np.any(region.A[:, free] != 0, axis=1)
        for row in np.flatnonzero(varying):
            keys.append(np.append(region.A[row], region.b[row] / scale))
            owners.append((index, int(row)))
    if not keys:
        return ()
    keys = np.array(keys)
    tree = cKDTree(keys)
    radius_tol = tol * scale
    planar = int(free.sum()) == 2
    found = set()
    checked = {}
    for (index, row), key in zip(owners, keys):
        for other in tree.query_ball_point(-key, SAME_HYPERPLANE):
            j, other_row = owners[other]
            if j == index:
                continue
            pair = (min(index, j), max(index, j), *((row, other_row) if index < j else (other_row, row)))
            if pair not in checked:
                R, N = regions[index], regions[j]
                if planar and R.vertices is not None and N.vertices is not None:
                    ball = _segment_overlap(R, N, row, free, GEOMETRY_TOLERANCE * scale)
                else:
                    ball = _facet_ball(R.A, R.b, N.A, N.b, R.A[row], R.b[row], free, R.interior_point)
                checked[pair] = ball > radius_tol
            if checked[pair]:
                found.add((index, row, j))
    ordered = sorted(found, key=lambda t: (t[0], t[1], regions[t[2]].pattern))
    return tuple(Neighbour(regions[i].pattern, row, regions[j].pattern) for i, row, j in ordered)


def neighbours_of(neighbours: Sequence[Neighbour]) -> dict[str, tuple[tuple[int, str], ...]]:
    """``{pattern: ((facet, neighbour pattern), ...)}`` from :func:`adjacency`'s list (regions without a
    neighbour are absent)."""
    out: dict[str, list] = {}
    for n in neighbours:
        out.setdefault(n.region, []).append((n.facet, n.neighbour))
    return {k: tuple(v) for k, v in out.items()}


# ------------------------------------------------------------------ decision pieces
@dataclass(frozen=True)
class DecisionPiece:
    """A part of a region where one output is the largest: ``pattern`` (the region's), ``label`` (the output
    index ``k`` with ``y[k] >= y[j]`` for every ``j`` on the piece), ``A (k, d)``, ``b (k,)`` its rows and
    ``vertices`` (v, d) for two free inputs (counter-clockwise), else None."""

    pattern: str
    label: int
    A: np.ndarray
    b: np.ndarray
    vertices: np.ndarray | None


def _class_rows(C: np.ndarray, offset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``y[k] >= y[j]`` for every ``j != k`` as rows ``(C_j - C_k) x <= d_k - d_j``."""
    others = np.array([j for j in range(C.shape[0]) if j != k], dtype=int)
    return C[others] - C[k], offset[k] - offset[others]


def decision_pieces(regions: Sequence[Region], tol: float = REGION_TOLERANCE) -> tuple[DecisionPiece, ...]:
    """Each region cut by the predicted class (the argmax of its affine output ``y = C x + d``).

    A region whose argmax ``k`` (at its interior point) stays the largest everywhere on it is one
    piece. Over a polygon or polyhedron that is decided at its vertices (a difference of affine
    outputs is smallest at a vertex); without vertices by one LP per other output. Otherwise the
    region is cut into the cells ``{x in region : y[k](x) >= y[j](x) for all j}`` that hold a
    Chebyshev ball above ``tol`` (relative to the scale), one per class: the exact decision regions
    inside it. Ties (``y[k] = y[j]``) are the cells' common boundaries.

    >>> # for piece in decision_pieces(found): piece.pattern, piece.label, piece.vertices
    """
    regions = list(regions)
    _check_regions(regions)
    if not regions:
        return ()
    free = _free_mask(regions)
    scale = _scale(regions)
    touch = GEOMETRY_TOLERANCE * scale
    out = []
    for region in regions:
        C, offset = region.affine
        y = C @ region.interior_point + offset
        k = int(np.argmax(y))
        rows_A, rows_b = _class_rows(C, offset, k)
        pins = _pinned_rows(region.A, region.b)
        if region.vertices is not None:
            constant = bool(np.all(region.vertices @ rows_A.T <= rows_b + touch))
        else:
            lower = np.where(free, -np.inf, region.interior_point)
            upper = np.where(free, np.inf, region.interior_point)
            lp = PolytopeLp(region.A, region.b, lower, upper)
            constant = True
            for row, limit in zip(rows_A, rows_b):
                found = lp.maximize(row)
                if found is None or found[1] is None or found[0] > limit + touch:
                    constant = False
                    break
        if constant:
            vertices = region.vertices if int(free.sum()) == 2 else None
            out.append(DecisionPiece(region.pattern, k, region.A, region.b, vertices))
            continue
        for label in range(C.shape[0]):
            class_A, class_b = _class_rows(C, offset, label)
            A = np.vstack([region.A, class_A])
            b = np.concatenate([region.b, class_b])
            center, radius = chebyshev_center(A, b, free)
            if center is None or radius <= tol * scale:
                continue
            facets_A, facets_b, vertices = facets_and_vertices(A, b, center, free)
            out.append(DecisionPiece(region.pattern, label, np.vstack([facets_A, region.A[pins]]),
                                     np.concatenate([facets_b, region.b[pins]]), vertices if int(free.sum()) == 2 else None))
    return tuple(out)


# ------------------------------------------------------------------ zones
class _Piece:
    """A convex zone being built: varying rows ``A``, ``b`` (facets), its patterns and a centre; vertices when known."""

    def __init__(self, A, b, patterns, center, radius, vertices):
        self.A, self.b, self.patterns = A, b, patterns
        self.center, self.radius, self.vertices = center, radius, vertices

    def maxima(self, rows: np.ndarray, pins_A, pins_b, lower, upper) -> np.ndarray:
        """``max rows . x`` over this piece: at its vertices when known, else one LP per row."""
        if self.vertices is not None:
            return np.max(self.vertices @ rows.T, axis=0)
        lp = PolytopeLp(np.vstack([self.A, pins_A]), np.concatenate([self.b, pins_b]), lower, upper)
        out = np.empty(rows.shape[0])
        for k, row in enumerate(rows):
            found = lp.maximize(row)
            out[k] = math.inf if found is None or found[1] is None else found[0]
        return out


def _merge(P1: _Piece, P2: _Piece, context) -> _Piece | None:
    """The union of ``P1`` and ``P2`` as one piece when it is convex (module docstring), else None."""
    pins_A, pins_b, lower, upper, free, valid_tol, radius_tol = context
    valid1 = P2.maxima(P1.A, pins_A, pins_b, lower, upper) <= P1.b + valid_tol
    valid2 = P1.maxima(P2.A, pins_A, pins_b, lower, upper) <= P2.b + valid_tol
    if valid1.all() or valid2.all():
        return None  # one contains the other: not two regions with disjoint interiors
    A = np.vstack([P1.A[valid1], P2.A[valid2], pins_A])
    b = np.concatenate([P1.b[valid1], P2.b[valid2], pins_b])
    for i in np.flatnonzero(~valid1):
        for j in np.flatnonzero(~valid2):
            rows = np.vstack([A, -P1.A[i], -P2.A[j]])
            rhs = np.concatenate([b, [-P1.b[i], -P2.b[j]]])
            _, radius = chebyshev_center(rows, rhs, free)
            if radius > radius_tol:
                return None  # a part of P outside both pieces: the union is not convex
    center, radius = chebyshev_center(A, b, free)
    if center is None:
        return None
    facets_A, facets_b, vertices = facets_and_vertices(A, b, center, free)
    return _Piece(facets_A, facets_b, P1.patterns + P2.patterns, center, radius, vertices)


def merge_regions(regions: Sequence[Region], neighbours: Sequence[Neighbour] | None = None,
                  tol: float = REGION_TOLERANCE) -> tuple[Zone, ...]:
    """The union of ``regions`` as convex :class:`~milp.core.region.Zone` values, by greedy merging of adjacent
    zones while the union stays convex (exact at the tolerance; see the module docstring).

    ``neighbours`` is :func:`adjacency`'s answer when already computed. Every region is in exactly one
    zone; zones are ordered by their first region's place in ``regions``, their patterns in list order.

    >>> # zones = milp.merge_regions(list(milp.regions(net, box, where=["y[0] > 0"])))
    >>> # [(z.patterns, z.A, z.b) for z in zones]
    """
    tol = check_tolerance(tol, "tol")
    regions = list(regions)
    _check_regions(regions)
    if not regions:
        return ()
    if neighbours is None:
        neighbours = adjacency(regions, tol)
    free = _free_mask(regions)
    scale = _scale(regions)
    first = regions[0]
    pins = _pinned_rows(first.A, first.b)
    pins_A, pins_b = first.A[pins], first.b[pins]
    lower = np.where(free, -np.inf, first.interior_point)
    upper = np.where(free, np.inf, first.interior_point)
    context = (pins_A, pins_b, lower, upper, free, GEOMETRY_TOLERANCE * scale, tol * scale)
    order = {r.pattern: k for k, r in enumerate(regions)}
    pieces: dict[int, _Piece] = {}
    for k, r in enumerate(regions):
        varying = ~_pinned_rows(r.A, r.b)
        vertices = r.vertices if r.vertices is not None and int(free.sum()) <= 3 else None
        pieces[k] = _Piece(r.A[varying], r.b[varying], (r.pattern,), r.interior_point, r.radius, vertices)
    links: dict[int, set[int]] = {k: set() for k in pieces}
    for n in neighbours:
        if n.region in order and n.neighbour in order:
            a, c = order[n.region], order[n.neighbour]
            links[a].add(c)
            links[c].add(a)
    failed: set[tuple[int, int]] = set()
    next_id = len(regions)
    changed = True
    while changed:
        changed = False
        for key in sorted(pieces):
            if key not in pieces:
                continue
            for other in sorted(links[key]):
                pair = (min(key, other), max(key, other))
                if pair in failed:
                    continue
                merged = _merge(pieces[key], pieces[other], context)
                if merged is None:
                    failed.add(pair)
                    continue
                new_links = (links.pop(key) | links.pop(other)) - {key, other}
                for k in new_links:
                    links[k] -= {key, other}
                    links[k].add(next_id)
                links[next_id] = new_links
                del pieces[key], pieces[other]
                pieces[next_id] = merged
                next_id += 1
                changed = True
                break
    zones = []
    for piece in pieces.values():
        patterns = tuple(sorted(piece.patterns, key=order.__getitem__))
        A = np.vstack([piece.A, pins_A])
        b = np.concatenate([piece.b, pins_b])
        zones.append(Zone(patterns, A, b, piece.center, piece.radius, piece.vertices if int(free.sum()) == 2 else None))
    zones.sort(key=lambda z: order[z.patterns[0]])
    return tuple(zones)
