"""Region enumeration by depth-first splitting on neurons, with warm-started LPs (the default engine).

The search walks the ReLU layers in evaluation order. At a node, the phases of all earlier
layers are fixed, so the current layer's pre-activations are affine in the input,
``z = G x + g``, over the node's polytope ``P`` (box, conditions met so far, and one row per
neuron split on the way down). For each neuron of the layer:

* a neuron stable over the whole box (global bounds) costs nothing;
* otherwise the node's interior point ``p`` says which side is certainly non-empty, and one
  LP (min or max of ``z`` over ``P``) says whether the other side holds a ball of radius
  ``> tol``. If it does, the node splits: the side containing ``p`` keeps it, the other
  side gets an interior point on the segment from ``p`` to the LP's optimal vertex
  (no extra LP).

A side whose LP optimum is within ``tol ||G_i||`` of the hyperplane (either side of it) can only
contain pieces of Chebyshev radius at most ``tol``: a *thin piece*. It is not dropped: a second,
exact search (:meth:`_Search.thin_search`) splits it on the remaining neurons, deciding each side
by :func:`~milp.enumeration.certify.certify_interior` (an LP checked in rational arithmetic), and
lists every pattern whose region holds a certified ball wider than the rows' rounding
(:data:`~milp.core.tolerances.THIN_RESOLUTION`), marked ``thin``, with every row of the pattern's
region certified at the end; pieces proved to have no interior count as lower-dimensional. The
same happens to a leaf, or a node cut by a condition, whose Chebyshev radius is at most ``tol``.
A piece the rational check cannot decide is counted in ``thin_undecided`` and makes the list
incomplete. Conditions join the polytope as soon as the layers they read are fixed; before that,
at the end of each layer, bounds on the layers still open can prove that a condition fails on the
whole node, which is then dropped with its subtree (:meth:`_Search.excluded_by_bounds`). At a leaf,
the Chebyshev LP gives the region's interior point and radius.

The node's polytope is a stack: split rows are pushed on the way down and truncated on the way
back. With 2 to 5 inputs, all free, it is kept exactly, as a polygon
(:class:`~milp.enumeration.polygon.PolygonStack`) or as vertices
(:class:`~milp.enumeration.vertices.VertexStack`): every "LP" above is then a minimum over
vertices, a whole layer's neurons are decided at once from their exact ranges, one cut gives both
sides of a split, the leaf's facets come from the vertices, and the interior point is the mean of
the vertices (the Chebyshev ball is solved only when that point's ball is not wider than ``tol``).
Otherwise it is one :class:`~milp.solvers.highs.LpStack`, where every LP is a warm re-solve, and
the cheap test before an LP is the neuron's interval over a box that contains the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from milp.bounds.propagate import BatchBounder, Bounds
from milp.core.box import Box
from milp.core.compose import substitute, unit
from milp.core.conditions import Condition
from milp.solvers.highs import LpStack
from milp.enumeration.polygon import PolygonStack
from milp.enumeration.vertices import VERTEX_DIMENSIONS, VertexStack
from milp.core.network import Affine, Network, is_active
from milp.core.patterns import compose_in_x, pattern_constraints
from milp.core.tolerances import PRUNE_MARGIN, THIN_RESOLUTION
from milp.enumeration.certify import Certificate, certify_interior
from milp.enumeration.geometry import GEOMETRY_TOLERANCE

__all__ = ["Node", "RawRegion", "SearchStats", "split_search"]

# When bounds are tried against the conditions (see _Search.excluded_by_bounds). Checking every
# layer of every node took 3-32-32-32-1 with `y[0] >= c` at the 95th percentile of y0 from 7.0 s to
# 3.6 s (34,136 nodes to 5,440), but ACAS Xu 1_1 (property 3's box shrunk 2x), whose subtrees are a
# few regions each, from 1.33 s to 1.89 s with `y[3] >= 0.115`, and a condition that always holds
# from 15.1 s to 21.1 s on the first net. So a node whose last check left fewer than this many
# unstable neurons above it is not checked again (its subtree is small):
_CHECKED_UNSTABLE = 32
# and once more than RATE[1] checks have been made with fewer than one in RATE[0] dropping a node,
# only one node in RATE[1] is checked. With both, `benchmarks/regions.py --conditions` (64 and 128
# gave the same within noise): the first net 2.8 s, ACAS Xu 0.95x, the condition that always holds
# 0.97x; conditions met on half the box cost up to 0.75x on 2-D nets, whose nodes are cheap.
_CHECK_RATE = (8, 32)


@dataclass(frozen=True)
class RawRegion:
    """A region as the search finds it: ``pattern`` (neurons,) bool, rows ``A x <= b`` (k, d) possibly
    redundant, Chebyshev ``center`` (d,) and ``radius``; ``thin`` when its radius is at most the
    tolerance and its interior was certified in rational arithmetic (``center`` is then the certified
    point and ``radius`` its smallest slack)."""

    pattern: np.ndarray
    A: np.ndarray
    b: np.ndarray
    center: np.ndarray
    radius: float
    thin: bool = False
    affine: tuple | None = None  # (C (m, d), c (m,)): the output's map on the region, when the search has it
    shape: tuple | None = None  # (facets: row indices into A, vertices (v, 2), area): 2-D regions from the polygon


@dataclass
class SearchStats:
    """Counters of one enumeration (mutable: updated as the search runs)."""

    regions: int = 0
    lps: int = 0
    milps: int = 0
    nodes: int = 0
    thin_pieces: int = 0  # pieces within tol of a hyperplane, handed to the exact search
    thin_regions: int = 0  # regions listed with radius <= tol, interior certified exactly (also in ``regions``)
    thin_undecided: int = 0  # thin pieces the rational check could not decide (the list is then incomplete)
    lower_dimensional: int = 0
    pruned_by_conditions: int = 0
    pruned_by_bounds: int = 0  # nodes dropped because bounds prove a condition fails on all of them
    skipped_by_box: int = 0  # neuron checks decided by the node's outer box, without an LP
    incomplete: bool = False  # set when a solver limit stopped the search


@dataclass
class Node:
    """A node of the depth-first search: the patterns of the layers decided so far, the phases of
    the current layer, and the local maps and LP rows that go with them. Unexplored nodes become
    subproblems of a parallel run (:mod:`milp.enumeration.parallel`)."""

    layer: int
    position: int
    phases: np.ndarray  # current layer: +1 active, -1 inactive, 0 undecided
    patterns: tuple  # fixed patterns of earlier layers (bool arrays)
    maps: list
    z_map: tuple | None
    point: np.ndarray
    rows: int  # LP rows that belong to the parent
    new_rows: tuple | None  # (A, b, norms) this node adds
    outer: tuple  # (lower, upper) of a box that contains the node's polytope
    conditions_added: frozenset = field(default_factory=frozenset)
    known: tuple | None = None  # an exact polytope's state after ``new_rows``, computed with its sibling's
    # unstable neurons left in the layers above, by the bounds of the last check of an ancestor (or
    # this node) that could not drop it; fewer than a few: the subtree is too small to check again
    unstable_left: int = 1 << 30


def _tightened(outer: tuple, a: np.ndarray, beta: float) -> tuple:
    """The box ``outer`` cut by the row ``a . x <= beta`` (one pass of interval propagation).

    Each coordinate's new bound is what the row allows when every other coordinate takes its
    most favourable value; a small outward slack keeps the result a superset under rounding.
    """
    lower, upper = outer
    low_terms = np.minimum(a * lower, a * upper)
    rest = low_terms.sum() - low_terms
    room = beta - rest
    slack = 1e-9 * (1.0 + np.abs(room))
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = (room + slack) / a
    new_upper = np.where(a > 0, np.minimum(upper, limit), upper)
    new_lower = np.where(a < 0, np.maximum(lower, limit), lower)
    return new_lower, new_upper


def split_search(
    network: Network,
    box: Box,
    conditions: Sequence[Condition],
    bounds: Bounds,
    tol: float,
    stats: SearchStats,
    should_stop: Callable[[], bool] = lambda: False,
    fixed_phases: dict[tuple[int, int], int] | None = None,
    leftover: list | None = None,
    geometry: str = "auto",
    prune_by_bounds: bool = True,
) -> Iterator[RawRegion]:
    """Yield every region of ``network`` over ``box`` where ``conditions`` hold (see the module docstring).

    ``fixed_phases`` maps ``(layer, neuron)`` to +1 (active) or -1 (inactive): only regions with
    those phases are searched, so subproblems with different fixed phases are disjoint.

    ``tol`` is the Chebyshev radius at or below which a piece is not a region (absolute, in
    input units). ``bounds`` are sound pre-activation bounds over the box: neurons they prove
    stable are never split. The search stops early, between nodes, when ``should_stop()``; with a
    ``leftover`` list, the nodes it did not explore are appended to it then (a parallel run ships
    them as new subproblems) and the first node always runs, so that handing back always progresses.

    ``geometry`` is how the node's polytope is kept: ``"auto"`` exactly (a polygon for two inputs,
    vertices up to :data:`~milp.enumeration.vertices.VERTEX_DIMENSIONS` inputs) when every input is
    free, else as an LP; ``"lp"`` always as an LP. Both give the same regions.
    """
    if geometry not in ("auto", "lp"):
        raise ValueError(f"geometry must be 'auto' or 'lp', got {geometry!r}")
    d = network.input_dim
    free = box.upper > box.lower
    if geometry == "lp" or not free.all() or not 2 <= d <= VERTEX_DIMENSIONS:
        lp = LpStack(box.lower, box.upper, radius_cap=float(np.max(box.widths)) + 1.0)
    elif d == 2:
        lp = PolygonStack(box.lower, box.upper)  # exact, no LP at all
    else:
        lp = VertexStack(box.lower, box.upper)  # exact vertices: an LP only for a doubtful Chebyshev ball
    # Box faces of free inputs as rows, so that the Chebyshev ball stays inside the box.
    eye = np.eye(d)[free]
    lp.push(np.vstack([eye, -eye]), np.concatenate([box.upper[free], -box.lower[free]]), np.ones(2 * int(free.sum())))
    search = _Search(network, box, lp, stats, tol, free, bounds, conditions, fixed_phases or {}, prune_by_bounds)
    start = lp.chebyshev(tol)
    stats.lps += isinstance(lp, LpStack)
    if start is None or start[1] <= tol:
        return
    widths = network.widths
    root = Node(0, 0, np.zeros(widths[0] if widths else 0, dtype=int), (), [(np.eye(d), np.zeros(d))], None, start[0], lp.rows, None, (box.lower.copy(), box.upper.copy()))
    stack = [root]
    first = True
    while stack:
        if (leftover is None or not first) and should_stop():
            if leftover is not None:
                leftover.extend(stack)
            return
        first = False
        node = stack.pop()
        lp.truncate(node.rows)
        if node.new_rows is not None:
            lp.push(*node.new_rows, known=node.known) if node.known is not None else lp.push(*node.new_rows)
        stats.nodes += 1
        region = search.descend(node, stack)
        if region is not None:
            yield region
        while search.thin_found:
            yield search.thin_found.pop(0)


class _Search:
    """The per-search constants and the descent from a node to a leaf."""

    def __init__(self, network, box, lp, stats, tol, free, bounds, conditions, forced, prune_by_bounds=True):
        self.network, self.box, self.lp, self.stats, self.tol, self.free = network, box, lp, stats, tol, free
        self.thin_found: list[RawRegion] = []  # regions of thin pieces, yielded after the node that met them
        # a certified ball must be wider than the rows' rounding (see milp.core.tolerances, THIN_RESOLUTION)
        self.resolution = THIN_RESOLUTION * max(1.0, float(np.max(box.widths)))
        self.forced = dict(forced)
        self.conditions = conditions
        self.fixed_point = np.where(free, 0.0, lp.lower)  # fixed inputs at their value, free ones 0
        self.global_active = [np.asarray(l >= 0) for l in bounds.lower]
        self.global_inactive = [np.asarray(u <= 0) for u in bounds.upper]
        # per layer: +1 / -1 where the global bounds (inactive first) or the caller fix a phase, else 0
        self.stable_phase = [np.where(off, -1, np.where(on, 1, 0)) for on, off in zip(self.global_active, self.global_inactive)]
        self.forced_phase = [np.zeros(w, dtype=int) for w in network.widths]
        for (layer, i), phase in self.forced.items():
            self.forced_phase[layer][i] = phase
        self.exact = not isinstance(lp, LpStack)  # the polytope kept exactly (polygon or vertices), no LP
        self.geometry_tol = GEOMETRY_TOLERANCE * max(1.0, float(np.max(np.abs(np.concatenate([box.lower, box.upper])))))
        # A condition joins the polytope once every layer it reads is fixed.
        self.ready_at = [max((s for s, _ in c.expression.terms), default=0) for c in conditions]
        self.flat_lower = np.concatenate([np.asarray(l, dtype=float) for l in bounds.lower]) if bounds.lower else np.zeros(0)
        self.flat_upper = np.concatenate([np.asarray(u, dtype=float) for u in bounds.upper]) if bounds.upper else np.zeros(0)
        self.prune_by_bounds = prune_by_bounds
        # for each count of fixed layers: the conditions still pending, stacked into one form (None
        # when none is), and the sources left, renumbered from 1 (see excluded_by_bounds)
        widths = network.widths
        self.pending = [Affine.stack([c.expression for c, at in zip(conditions, self.ready_at) if at > fixed])
                        if any(at > fixed for at in self.ready_at) else None for fixed in range(len(widths) + 1)]
        self.open_sources = [[unit(s - fixed, widths[s - 1]) for s in range(fixed + 1, len(widths) + 1)] for fixed in range(len(widths) + 1)]
        self.offsets = network.neuron_offsets()
        self.checks = self.prunes = 0  # of excluded_by_bounds: nodes it was asked about, nodes it dropped

    def add_ready_conditions(self, node: Node) -> bool:
        """Add the conditions that became linear at this node; False when no ball of radius > tol is left."""
        pending = [i for i, layer in enumerate(self.ready_at) if layer <= node.layer and i not in node.conditions_added]
        if not pending:
            return True
        rows, rhs, norms = [], [], []
        for i in pending:
            G_c, g_c = compose_in_x(self.conditions[i].expression, node.maps)
            row, constant = G_c[0], float(g_c[0])
            norm = float(np.linalg.norm(row * self.free))
            if norm == 0.0:
                # constant on the polytope: decided exactly (a strict one needs a positive value)
                value = float(row @ self.fixed_point + constant)
                if value < 0 or (self.conditions[i].strict and value <= 0):
                    self.stats.pruned_by_conditions += 1
                    return False
                continue
            rows.append(-row)
            rhs.append(constant)
            norms.append(norm)
        node.conditions_added = node.conditions_added | frozenset(pending)
        if not rows:
            return True
        self.lp.push(np.array(rows), np.array(rhs), np.array(norms))
        for row, beta in zip(rows, rhs):
            node.outer = self._tightened(node.outer, row, beta)
        found = self.lp.chebyshev(self.tol)
        self.stats.lps += int(not self.exact)
        if found is None or found[1] <= self.tol:
            self.stats.pruned_by_conditions += 1
            if found is not None:
                A, b = self.lp.current_rows()
                self.thin_search(node, A, b)
            return False
        node.point = found[0]
        return True

    def excluded_by_bounds(self, node: Node) -> bool:
        """Do bounds prove that a condition not yet in the polytope fails everywhere in the node?

        At a node whose first ``node.layer`` layers are fixed, the layers left form a network over x
        (the fixed ones composed into their maps in x); the upper bound of each pending condition over a box
        that contains the node's polytope (its exact ranges, or the outer box the LP search keeps)
        comes from the one bounding engine (CROWN back-substitution, widened outward). Below zero, no
        region below the node can meet the condition, so the whole subtree is dropped instead of
        being walked pattern by pattern. The bound must clear zero by
        :data:`~milp.core.tolerances.PRUNE_MARGIN`, so that the regions listed are the same as without it.
        """
        if not self.prune_by_bounds or node.layer == 0 or node.unstable_left < _CHECKED_UNSTABLE:
            return False
        fixed = node.layer
        if self.pending[fixed] is None:
            return False
        self.checks += 1
        if self.checks > _CHECK_RATE[1] and self.prunes * _CHECK_RATE[0] < self.checks and self.checks % _CHECK_RATE[1]:
            return False
        if self.exact:
            lower, upper = self.lp.ranges(np.eye(self.box.dim), np.zeros(self.box.dim))
        else:
            lower, upper = node.outer
        # the layers left as a network over x: each fixed source through its map in x (the node's
        # patterns), the others renumbered from 1
        sources = [Affine(((0, M),), m) for M, m in node.maps] + self.open_sources[fixed]
        rest = Network(self.box.dim, tuple(substitute(layer, sources) for layer in self.network.relu_layers[fixed:]),
                       substitute(self.pending[fixed], sources))
        start = self.offsets[fixed]
        known_lower, known_upper = self.flat_lower[None, start:], self.flat_upper[None, start:]
        bounder = BatchBounder(rest, lower_slopes=False)  # one back-substitution a layer: half the work
        lo, hi = lower[None, :], upper[None, :]
        lowers, uppers, _ = bounder.neuron_bounds(lo, hi, known_lower, known_upper)
        if any(np.any(l > u) for l, u in zip(lowers, uppers)):
            return False  # rounding at a face of the box: decide nothing here
        high = bounder.form_bounds(rest.output, lo, hi, lowers, uppers)[1][0]
        if np.any(high < -PRUNE_MARGIN * (1.0 + np.abs(high))):
            self.stats.pruned_by_bounds += 1
            self.prunes += 1
            return True
        node.unstable_left = int(sum(np.count_nonzero((l < 0) & (u > 0)) for l, u in zip(lowers, uppers)))
        return False

    def descend(self, node: Node, stack: list) -> RawRegion | None:
        """Process ``node`` down to a leaf, pushing the far side of every split; the leaf's region or None."""
        lp, stats, tol = self.lp, self.stats, self.tol
        widths = self.network.widths
        if not self.add_ready_conditions(node):
            return None
        while node.layer < len(widths):
            layer = node.layer
            if node.z_map is None:
                node.z_map = self._z_map(layer, node.maps)
            G, g, norms = node.z_map[:3]
            phases = node.phases
            while node.position < widths[layer]:
                if self._settle(node) < 0:
                    return None
                if node.position >= widths[layer]:
                    break
                i = node.position
                node.position += 1
                norm = float(norms[i])
                margin = tol * norm
                zp = float(G[i] @ node.point + g[i])
                if abs(zp) > margin:
                    near = 1 if zp > 0 else -1
                    opt = lp.optimize(G[i], maximize=near < 0)
                    stats.lps += int(not self.exact)
                    far_value = None if opt is None else opt[0] + g[i]
                    if far_value is None or far_value * near >= -margin:
                        if far_value is not None and far_value * near < margin:
                            self._thin_side(node, i, -near, G[i], g[i])
                        phases[i] = near
                        if not self._allowed(layer, i, near):
                            return None
                        continue
                    far_vertex = opt[1]
                else:
                    # The point sits (nearly) on the hyperplane: look at both sides.
                    top = lp.optimize(G[i], maximize=True)
                    bottom = lp.optimize(G[i], maximize=False)
                    stats.lps += 2 * int(not self.exact)
                    up = top is not None and top[0] + g[i] > margin
                    down = bottom is not None and bottom[0] + g[i] < -margin
                    if not (up and down):
                        if not up and top is not None and top[0] + g[i] > -margin:
                            self._thin_side(node, i, 1, G[i], g[i])
                        if not down and bottom is not None and bottom[0] + g[i] < margin:
                            self._thin_side(node, i, -1, G[i], g[i])
                        if not (up or down):
                            return None  # the whole node lies within tol of this hyperplane
                        phases[i] = 1 if up else -1
                        if not self._allowed(layer, i, phases[i]):
                            return None
                        continue
                    near = 1 if top[0] + g[i] >= -(bottom[0] + g[i]) else -1
                    near_vertex, far_vertex = (top[1], bottom[1]) if near > 0 else (bottom[1], top[1])
                    far_point = _toward(node.point, far_vertex, G[i], g[i], zp)
                    node.point = _toward(node.point, near_vertex, G[i], g[i], zp)
                    zp = float(G[i] @ node.point + g[i])
                    self._split(node, stack, i, near, far_point, G[i], g[i], norm)
                    continue
                far_point = _toward(node.point, far_vertex, G[i], g[i], zp)
                self._split(node, stack, i, near, far_point, G[i], g[i], norm)
            # layer complete: fix its pattern and move on
            pattern = phases > 0
            node.maps = node.maps + [(G * pattern[:, None], g * pattern)]
            node.patterns = node.patterns + (pattern,)
            node.layer += 1
            node.position = 0
            node.z_map = None
            node.phases = np.zeros(widths[node.layer] if node.layer < len(widths) else 0, dtype=int)
            if not self.add_ready_conditions(node) or self.excluded_by_bounds(node):
                return None
        found = lp.chebyshev(tol)
        stats.lps += int(not self.exact)
        if found is None or found[1] <= tol:
            bits = np.concatenate(node.patterns) if node.patterns else np.zeros(0, dtype=bool)
            if found is None:
                stats.lower_dimensional += 1
                return None
            return self._certified(bits)
        A, b = lp.current_rows()
        stats.regions += 1
        affine = compose_in_x(self.network.output, node.maps)
        shape = None if isinstance(lp, LpStack) else lp.shape(self.geometry_tol)
        return RawRegion(np.concatenate(node.patterns) if node.patterns else np.zeros(0, dtype=bool), A, b, found[0], found[1], affine=affine, shape=shape)

    def _z_map(self, layer: int, maps: list) -> tuple:
        """``(G, g, norms, fixed, margins)`` of a layer's pre-activations ``z = G x + g`` at a node: ``norms``
        over the free inputs, ``fixed`` +1 / -1 where the phase does not depend on the node's polytope
        (stable over the box, inactive first; or constant on it), else 0, and ``margins = tol * norms``."""
        G, g = compose_in_x(self.network.relu_layers[layer], maps)
        norms = np.linalg.norm(G * self.free, axis=1)
        fixed = self.stable_phase[layer].copy()
        constant = (fixed == 0) & (norms == 0.0)
        if constant.any():  # z is constant on the polytope: its phase is decided exactly
            fixed[constant] = np.where(is_active(G[constant] @ self.fixed_point + g[constant]), 1, -1)
        return G, g, norms, fixed, self.tol * norms

    def _settle(self, node: Node) -> int:
        """Decide, in one pass over the rest of the node's layer, every neuron that needs no optimisation:
        stable over the box, constant on the polytope, or on one side by more than the margin over the
        node's outer box (over the exact polytope when the search keeps one). Stops at the first neuron
        that needs the LP.

        Returns the new ``node.position``, or -1 when a decided phase contradicts a fixed one.
        """
        G, g, norms, fixed, margins = node.z_map
        layer, start = node.layer, node.position
        phase = fixed[start:].copy()
        rows = start + np.flatnonzero(phase == 0)
        stop = phase.size
        if rows.size:
            Gr, gr = G[rows], g[rows]
            margin = margins[rows]
            if self.exact:  # exact ranges: the interior point is on the same side
                low, high = self.lp.ranges(Gr, gr)
                up, down = low >= margin, high <= -margin
            else:
                lower, upper = node.outer
                low = np.minimum(Gr * lower, Gr * upper).sum(axis=1) + gr
                high = np.maximum(Gr * lower, Gr * upper).sum(axis=1) + gr
                zp = Gr @ node.point + gr
                up = (low >= margin) & (zp > margin)
                down = (high <= -margin) & (zp < -margin)  # no LP: the far side is empty beyond the margin
            phase[rows - start] = up.view(np.int8) - down.view(np.int8)
            settled = up | down
            boxed = rows.size
            if not settled.all():
                boxed = int(np.argmin(settled))
                stop = int(rows[boxed]) - start
            self.stats.skipped_by_box += boxed
        if self.forced:
            forced = self.forced_phase[layer][start : start + stop]
            if np.any((forced != 0) & (forced != phase[:stop])):
                return -1
        node.phases[start : start + stop] = phase[:stop]
        node.position = start + stop
        return node.position

    # ------------------------------------------------------------ thin pieces, decided exactly
    def _certify(self, A, b):
        """:func:`certify_interior`, with a certified ball no wider than the rows' rounding taken as flat."""
        self.stats.lps += 1
        found = certify_interior(A, b, self.free, self.fixed_point)
        if found.interior and found.radius <= self.resolution:
            return Certificate("empty", flat=True)
        return found

    def _certified(self, bits: np.ndarray) -> RawRegion | None:
        """The thin region of pattern ``bits`` when its interior is certified (all its rows), else None
        (counted as lower-dimensional unless its closed set is proved empty too)."""
        A, b = pattern_constraints(self.network, self.box, bits, self.conditions)
        found = self._certify(A, b)
        self.stats.lower_dimensional += found.flat or found.verdict == "undecided"
        if found.verdict == "undecided":
            self.stats.thin_undecided += 1
            self.stats.incomplete = True
        if not found.interior:
            return None
        self.stats.regions += 1
        self.stats.thin_regions += 1
        return RawRegion(bits.copy(), A, b, found.point, found.radius, thin=True)

    def _thin_side(self, node: Node, i: int, phase: int, gi: np.ndarray, g: float) -> None:
        """Hand the side ``phase`` of neuron ``i`` of the node's layer (a thin piece) to :meth:`thin_search`."""
        if not self._allowed(node.layer, i, phase):
            return  # another subproblem has this side
        self.stats.thin_pieces += 1
        A, b = self.lp.current_rows()
        phases = node.phases.copy()
        phases[i] = phase
        piece = Node(node.layer, node.position, phases, node.patterns, node.maps, node.z_map, node.point, 0, None,
                     node.outer, node.conditions_added)
        self.thin_search(piece, np.vstack([A, -phase * gi]), np.append(b, phase * g))

    def _side_rows(self, A, b, gi, g):
        """The sides of ``z = gi . x + g`` over ``{A x <= b}`` with an interior: ``[(phase, A', b', certificate)]``."""
        sides = []
        for phase in (1, -1):
            rows_A, rows_b = np.vstack([A, -phase * gi]), np.append(b, phase * g)
            found = self._certify(rows_A, rows_b)
            if found.verdict == "undecided":
                self.stats.thin_undecided += 1
                self.stats.incomplete = True
            if found.interior:
                sides.append((phase, rows_A, rows_b))
        return sides

    def thin_search(self, node: Node, A: np.ndarray, b: np.ndarray) -> None:
        """Every region inside a thin piece: the node's decided phases plus rows ``A x <= b`` (the piece).

        Depth-first on the remaining neurons; a side is explored when :func:`certify_interior` proves its
        interior non-empty, and every leaf is certified again with all the rows of its pattern
        (:func:`~milp.core.patterns.pattern_constraints`). Regions go to :attr:`thin_found`.
        """
        first = self._certify(A, b)
        if not first.interior:
            self.stats.lower_dimensional += first.flat
            if first.verdict == "undecided":
                self.stats.thin_undecided += 1
                self.stats.incomplete = True
            return
        widths = self.network.widths
        states = [(node.layer, node.position, node.phases.copy(), node.patterns, node.maps, node.z_map, A, b, node.conditions_added)]
        while states:
            layer, position, phases, patterns, maps, z_map, A, b, added = states.pop()
            alive = True
            while alive:
                # conditions whose layers are all fixed
                pending = [k for k, ready in enumerate(self.ready_at) if ready <= layer and k not in added]
                if pending:
                    rows, rhs = [], []
                    for k in pending:
                        G_c, g_c = compose_in_x(self.conditions[k].expression, maps)
                        row, constant = G_c[0], float(g_c[0])
                        if not np.any(row * self.free):
                            value = float(row @ self.fixed_point + constant)
                            if value < 0 or (self.conditions[k].strict and value <= 0):
                                alive = False
                            continue
                        rows.append(-row)
                        rhs.append(constant)
                    added = added | frozenset(pending)
                    if alive and rows:
                        A, b = np.vstack([A, rows]), np.append(b, rhs)
                        found = self._certify(A, b)
                        alive = found.interior
                        if found.verdict == "undecided":
                            self.stats.thin_undecided += 1
                            self.stats.incomplete = True
                    if not alive:
                        break
                if layer >= len(widths):
                    break
                if z_map is None:
                    z_map = compose_in_x(self.network.relu_layers[layer], maps)
                G, g = z_map[:2]
                while position < widths[layer]:
                    i = position
                    position += 1
                    if self.global_inactive[layer][i] or self.global_active[layer][i]:
                        phases[i] = -1 if self.global_inactive[layer][i] else 1
                    elif not np.any(G[i] * self.free):
                        phases[i] = 1 if is_active(float(G[i] @ self.fixed_point + g[i])) else -1
                    else:
                        sides = [s for s in self._side_rows(A, b, G[i], g[i]) if self._allowed(layer, i, s[0])]
                        if not sides:
                            alive = False
                            break
                        for phase, side_A, side_b in sides[1:]:
                            other = phases.copy()
                            other[i] = phase
                            states.append((layer, position, other, patterns, maps, z_map, side_A, side_b, added))
                        phases[i], A, b = sides[0]
                        continue
                    if not self._allowed(layer, i, phases[i]):
                        alive = False
                        break
                if not alive:
                    break
                pattern = phases > 0
                maps = maps + [(G * pattern[:, None], g * pattern)]
                patterns = patterns + (pattern,)
                layer += 1
                position = 0
                z_map = None
                phases = np.zeros(widths[layer] if layer < len(widths) else 0, dtype=int)
            if alive:
                region = self._certified(np.concatenate(patterns) if patterns else np.zeros(0, dtype=bool))
                if region is not None:
                    self.thin_found.append(region)

    def _allowed(self, layer: int, i: int, phase: int) -> bool:
        forced = self.forced.get((layer, i))
        return forced is None or forced == phase

    def _split(self, node: Node, stack: list, i: int, near: int, far_point, gi, g, norm) -> None:
        """Push the far side (``z`` with sign ``-near``) and constrain the current node to the near side.

        A neuron whose phase the caller fixed (a subproblem) takes only that side.
        """
        # Row "near * z >= 0" is  -near*G x <= near*g ; the far side's is  near*G x <= -near*g.
        norms = np.array([norm])
        far_row = ((near * gi).reshape(1, -1), np.array([-near * g]), norms)
        near_row = ((-near * gi).reshape(1, -1), np.array([near * g]), norms)
        forced = self.forced.get((node.layer, i))
        if forced is not None:
            row = near_row if forced == near else far_row
            if forced != near:
                node.point = far_point
            node.phases[i] = forced
            node.outer = self._tightened(node.outer, row[0][0], float(row[1][0]))
            self.lp.push(*row)
            return
        far_phases = node.phases.copy()
        far_phases[i] = -near
        far_outer = self._tightened(node.outer, far_row[0][0], float(far_row[1][0]))
        rows = self.lp.rows
        # an exact polytope cuts once for both sides: the far one waits on the stack
        known = self.lp.push(*near_row, opposite=True) if self.exact else self.lp.push(*near_row)
        stack.append(
            Node(node.layer, node.position, far_phases, node.patterns, node.maps, node.z_map, far_point, rows, far_row,
                 far_outer, node.conditions_added, known, node.unstable_left)
        )
        node.phases[i] = near
        node.outer = self._tightened(node.outer, near_row[0][0], float(near_row[1][0]))

    def _tightened(self, outer: tuple, a: np.ndarray, beta: float) -> tuple:
        """:func:`_tightened`, needed only by the LP (an exact polytope gives exact ranges itself)."""
        return outer if self.exact else _tightened(outer, a, beta)


def _toward(point: np.ndarray, vertex: np.ndarray, gi: np.ndarray, g: float, z_point: float) -> np.ndarray:
    """The point on the segment from ``point`` to ``vertex`` where ``z`` is halfway from 0 to ``z(vertex)``.

    Interior to the polytope (a strict convex combination with an interior point) and strictly
    on the vertex's side of the hyperplane.
    """
    z_vertex = float(gi @ vertex + g)
    t = (z_vertex / 2.0 - z_point) / (z_vertex - z_point)
    return point + min(max(t, 0.0), 1.0) * (vertex - point)
