"""Region enumeration with no-good cuts on one incremental HiGHS MILP, plus a walk between neighbours.

The big-M MILP (:mod:`milp.encode.bigm`) with the conditions as rows has a feasible point
exactly where some activation pattern meets the conditions. The loop:

1. solve the MILP; infeasible means every pattern has been found: the list is complete;
2. the unstable binaries give a pattern; an LP (Chebyshev ball) says whether its region has
   an interior. A pattern feasible only on a boundary is counted and cut off, never listed;
3. from a real region, walk to its neighbours: each facet of the region that lies on a
   neuron's hyperplane leads to the pattern with that neuron flipped; an LP checks it.
   Every region found this way is listed and cut off too;
4. a no-good cut over the unstable binaries removes each listed pattern, and the MILP is
   asked again. It is only needed to jump to regions not connected to those found, and to
   prove that none is left.

Degeneracy: at ``z = 0`` both phases of a neuron are feasible, so a plain MILP keeps
returning faces of regions (and ``y > 0`` on a ReLU output admits every pattern with
``y = 0``). The first pass therefore asks for a margin (``z >= m`` for active, ``z <= -m``
for inactive, strict conditions ``>= m``) far above HiGHS's tolerances; when that pass is
exhausted, a second pass with the margin ``1e-7`` (times the box scale) catches regions
thinner than ``m``, cutting off the few boundary patterns it meets. A region in which
some neuron or strict condition stays within ``1e-7`` of zero everywhere is below the
resolution of this engine (and of float64 weights).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.conditions import Condition
from milp.core.errors import InternalError
from milp.encode.bigm import affine_rows, build_milp, condition_rows
from milp.solvers.highs import HighsSolver
from milp.core.options import SolverOptions
from milp.core.network import Network
from milp.core.patterns import local_affine_maps, local_form
from milp.enumeration.geometry import QHULL_DIMENSIONS, chebyshev_center, remove_redundant
from milp.enumeration.tree import RawRegion, SearchStats

__all__ = ["nogood_search"]


def _labelled_rows(network: Network, box: Box, conditions: Sequence[Condition], pattern: np.ndarray):
    """All rows ``A x <= b`` of a pattern's region, with a label per row: the neuron's index, or -1
    (box face or condition). None when a row constant in x already fails."""
    maps = local_affine_maps(network, pattern)
    sign = np.where(pattern, -1.0, 1.0)  # active: -z <= 0; inactive: z <= 0
    G = np.vstack([A for A, _ in maps.layers]) if maps.layers else np.zeros((0, network.input_dim))
    g = np.concatenate([c for _, c in maps.layers]) if maps.layers else np.zeros(0)
    rows, rhs, labels, strict = [sign[:, None] * G], [-sign * g], [np.arange(G.shape[0])], [pattern.astype(bool)]
    for c in conditions:
        row, constant = local_form(network, pattern, c.expression)
        rows.append(-row)
        rhs.append(constant)
        labels.append(np.array([-1]))
        strict.append(np.array([c.strict]))
    A, b, lab, strict = np.vstack(rows), np.concatenate(rhs), np.concatenate(labels), np.concatenate(strict)
    free = box.upper > box.lower
    # Rows that do not vary with the free inputs are decided exactly ('1' needs z > 0).
    constant = ~np.any(A[:, free] != 0, axis=1)
    excess = A[constant] @ np.where(free, 0.0, box.lower) - b[constant]
    if np.any(np.where(strict[constant], excess >= 0, excess > 0)):
        return None
    keep = ~constant
    d = network.input_dim
    # every box face, fixed inputs included (they pin the Chebyshev centre's fixed coordinates)
    A = np.vstack([A[keep], np.eye(d), -np.eye(d)])
    b = np.concatenate([b[keep], box.upper, -box.lower])
    lab = np.concatenate([lab[keep], np.full(2 * d, -1)])
    return A, b, lab


def _region(network, box, conditions, pattern, tol, stats):
    built = _labelled_rows(network, box, conditions, pattern)
    if built is None:
        return None, None
    A, b, labels = built
    free = box.upper > box.lower
    center, radius = chebyshev_center(A, b, free)
    stats.lps += 1
    if center is None or radius <= tol:
        return None, None
    return RawRegion(pattern.copy(), A, b, center, radius), labels


def nogood_search(
    network: Network,
    box: Box,
    conditions: Sequence[Condition],
    bounds: Bounds,
    tol: float,
    stats: SearchStats,
    should_stop: Callable[[], bool] = lambda: False,
    options: SolverOptions = SolverOptions(presolve=False, mip_rel_gap=0.0),
) -> Iterator[RawRegion]:
    """Yield every region (see :mod:`milp.enumeration.tree` for ``tol`` and ``bounds``), proved complete when it returns normally.

    The first pass's phase margin is ``1e3 * tol``, at least 1e-5 in z units scaled by the box;
    neighbours are harvested by LP between MILP calls.
    """
    model = build_milp(network, box, bounds)
    solver = HighsSolver(model, options)
    rows, lower, upper = condition_rows(model.layout, conditions)
    solver.add_rows(rows, lower, upper)
    flat = model.layout.flat_binaries
    unstable = np.flatnonzero(flat >= 0)
    columns = flat[unstable]
    # z identically 0 counts as inactive ("1" means z > 0)
    stable_pattern = np.concatenate([(l >= 0) & (u > 0) for l, u in zip(bounds.lower, bounds.upper)]) if bounds.lower else np.zeros(0, dtype=bool)

    # Margin rows, for each unstable neuron:  z - (m - l) d >= l  (d = 1 forces z >= m)  and
    # z - (u + m) d <= -m  (d = 0 forces z <= -m);  for each strict condition:  e >= m.
    z_rows, z_const = [], []
    for affine in network.relu_layers:
        matrix, constant = affine_rows(model.layout, affine)
        z_rows.append(matrix)
        z_const.append(constant)
    Z = sp.vstack(z_rows, format="csr")[unstable] if z_rows else sp.csr_matrix((0, model.shape[1]))
    c = np.concatenate(z_const)[unstable] if z_const else np.zeros(0)
    lo = np.concatenate(bounds.lower)[unstable] if z_const else np.zeros(0)
    hi = np.concatenate(bounds.upper)[unstable] if z_const else np.zeros(0)
    D = sp.csr_matrix((np.ones(unstable.size), (np.arange(unstable.size), columns)), shape=(unstable.size, model.shape[1]))
    strict_rows, strict_lower, _ = condition_rows(model.layout, [x for x in conditions if x.strict])

    def add_margin_rows(m: float) -> np.ndarray:
        added = [np.zeros(0, dtype=int)]
        if unstable.size:
            added.append(solver.add_rows(Z - sp.diags(m - lo) @ D, lo - c, np.full(unstable.size, np.inf)))
            added.append(solver.add_rows(Z - sp.diags(hi + m) @ D, np.full(unstable.size, -np.inf), -m - c))
        if strict_rows.shape[0]:
            added.append(solver.add_rows(strict_rows, strict_lower + m, np.full(strict_rows.shape[0], np.inf)))
        return np.concatenate(added)

    scale = max(1.0, float(np.max(np.abs(np.concatenate([box.lower, box.upper])))))
    first_margin = float(max(1e3 * tol, 1e-5 * scale))
    final_margin = 1e-7 * scale
    margin_rows = add_margin_rows(first_margin)

    seen: set[bytes] = set()

    def cut(pattern: np.ndarray) -> None:
        delta = pattern[unstable]
        ones = columns[delta]
        coefficients = np.where(delta, -1.0, 1.0)
        row = sp.csr_matrix((coefficients, (np.zeros(columns.size, dtype=int), columns)), shape=(1, solver.column_count))
        solver.add_rows(row, np.array([1.0 - ones.size]), np.array([np.inf]))

    def relax_margin() -> None:
        # Second pass: the smallest margin that HiGHS's tolerances (1e-9 primal, 1e-8 integrality)
        # still tell apart from 0, so faces of regions (z = 0 exactly) do not come back.
        nonlocal margin_rows
        if margin_rows.size:
            solver.delete_rows(margin_rows)
        margin_rows = add_margin_rows(final_margin)

    # Families: regions sharing their layer-0 pattern tile one convex cell of the first layer's
    # hyperplanes (when the conditions read only x and h0, which are affine on that cell). The
    # tiles of a convex set are connected through their facets, so once the walk has crossed every
    # facet of a later-layer neuron inside the cell, the family is complete and one short cut over
    # the layer-0 binaries removes all of it; a degenerate crossing leaves it to long cuts.
    layer0 = np.flatnonzero(flat[: network.widths[0]] >= 0) if network.widths else np.zeros(0, dtype=int)
    width0 = network.widths[0] if network.widths else 0
    certify_families = all(max((s for s, _ in c.expression.terms), default=0) <= 1 for c in conditions)
    uncertified: set[bytes] = set()

    def cut_family(family: bytes) -> None:
        prefix = np.frombuffer(family, dtype=bool)[:width0]
        delta = prefix[layer0]
        cols = flat[layer0]
        coefficients = np.where(delta, -1.0, 1.0)
        row = sp.csr_matrix((coefficients, (np.zeros(cols.size, dtype=int), cols)), shape=(1, solver.column_count))
        solver.add_rows(row, np.array([1.0 - int(delta.sum())]), np.array([np.inf]))

    def _walk(start, start_labels):
        """Yield the regions connected to ``start``; return them grouped by family (None if stopped)."""
        component: dict[bytes, list[np.ndarray]] = {}
        queue = [(start, start_labels)]
        while queue:
            if should_stop():
                return None
            region, labels = queue.pop()
            stats.regions += 1
            family = region.pattern[:width0].tobytes()
            component.setdefault(family, []).append(region.pattern)
            yield region
            _, _, kept = remove_redundant(region.A, region.b, region.center, box.upper > box.lower)
            if int(np.sum(box.upper > box.lower)) > QHULL_DIMENSIONS:
                stats.lps += int(region.A.shape[0])  # one LP per row above qhull's dimensions
            for neuron in labels[kept]:
                if neuron < 0 or flat[neuron] < 0:
                    continue
                neighbour = region.pattern.copy()
                neighbour[neuron] = not neighbour[neuron]
                key = neighbour.tobytes()
                if key in seen:
                    continue
                found, found_labels = _region(network, box, conditions, neighbour, tol, stats)
                if found is None:
                    if neuron >= width0:
                        uncertified.add(family)  # a degenerate crossing inside the cell
                    continue  # the MILP will find what lies beyond
                seen.add(key)
                queue.append((found, found_labels))
        return component

    # The wide margin is kept for the first solve only: it starts the walk deep inside a
    # region. Proving that no pattern is left is the MILP's costliest call, so it is made once,
    # with the small margin.
    relaxed = False
    while not should_stop():
        solution = solver.solve()
        stats.milps += 1
        if solution.status == "infeasible":
            if relaxed:
                return
            relax_margin()
            relaxed = True
            continue
        if not solution.has_point:
            stats.incomplete = True
            return
        pattern = stable_pattern.copy()
        pattern[unstable] = solution.values[columns] > 0.5
        key = pattern.tobytes()
        if key in seen:  # cannot happen while the cut holds; stop rather than loop
            raise InternalError("the no-good MILP returned a pattern that was already cut off")
        seen.add(key)
        region, labels = _region(network, box, conditions, pattern, tol, stats)
        if region is None:
            cut(pattern)
            stats.lower_dimensional += 1
            continue
        component = yield from _walk(region, labels)
        if component is None:
            return  # stopped part-way: nothing more to prove
        for family, members in component.items():
            if family in uncertified or not certify_families:
                for member in members:
                    cut(member)
            else:
                cut_family(family)
        if not relaxed:
            relax_margin()
            relaxed = True
