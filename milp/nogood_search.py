"""Region enumeration with no-good cuts on one incremental HiGHS MILP, plus a walk between neighbours.

The big-M MILP (:mod:`milp.formulation`) with the conditions as rows has a feasible point
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
returning faces of regions. The first pass therefore asks for a margin
(``z >= margin`` for active, ``z <= -margin`` for inactive, far above HiGHS's 1e-6
tolerances); when that pass is exhausted a second pass without margin catches regions
thinner than the margin, cutting off the boundary patterns it meets.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from .bounds import Bounds
from .box import Box
from .conditions import Condition
from .formulation import affine_rows, build_milp, condition_rows
from .highs_backend import HighsSolver, SolverOptions
from .network import Network
from .polytope import chebyshev_center, remove_redundant
from .split_search import RawRegion, SearchStats, _form_map, local_source_maps

__all__ = ["nogood_search"]


def _labelled_rows(network: Network, box: Box, conditions: Sequence[Condition], pattern: np.ndarray):
    """All rows ``A x <= b`` of a pattern's region, with a label per row: neuron index, or -1 (box/condition)."""
    d = network.input_dim
    offsets = network.neuron_offsets()
    layer_patterns = [pattern[offsets[l] : offsets[l + 1]] for l in range(len(network.widths))]
    maps = local_source_maps(network, layer_patterns[:-1] if layer_patterns else [], d)
    rows, rhs, labels = [], [], []
    for layer in range(len(network.widths)):
        affine = network.relu_layers[layer]
        G = np.zeros((affine.out_dim, d))
        g = affine.bias.copy()
        for source, weight in affine.terms:
            M, m = maps[source]
            G += weight @ M
            g += weight @ m
        sign = np.where(layer_patterns[layer], -1.0, 1.0)  # active: -z <= 0; inactive: z <= 0
        rows.append(sign[:, None] * G)
        rhs.append(-sign * g)
        labels.append(np.arange(offsets[layer], offsets[layer + 1]))
    full_maps = local_source_maps(network, layer_patterns, d)
    for c in conditions:
        row, constant = _form_map(c.expression, full_maps)
        rows.append(-row[None, :])
        rhs.append(np.array([constant]))
        labels.append(np.array([-1]))
    free = box.upper > box.lower
    eye = np.eye(d)[free]
    rows += [eye, -eye]
    rhs += [box.upper[free], -box.lower[free]]
    labels += [np.full(int(free.sum()), -1), np.full(int(free.sum()), -1)]
    A, b, lab = np.vstack(rows), np.concatenate(rhs), np.concatenate(labels)
    # Rows that vanish in x (a neuron constant on the whole input space) carry no facet.
    nonzero = np.linalg.norm(A * free, axis=1) > 0
    if np.any(b[~nonzero] < 0):
        return None
    return A[nonzero], b[nonzero], lab[nonzero]


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
    margin: float | None = None,
    walk: bool = True,
) -> Iterator[RawRegion]:
    """Yield every region (see :mod:`milp.split_search` for ``tol`` and ``bounds``), proved complete when it returns normally.

    ``margin`` (default ``1e3 * tol``, at least 1e-5 in z units scaled by the box) is the
    first pass's phase margin; ``walk`` harvests neighbours by LP between MILP calls.
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

    # Margin rows: z - (margin - l) d >= l  (d=1: z >= margin) and  z - (u + margin) d <= -margin  (d=0: z <= -margin)
    margin = float(margin if margin is not None else max(1e3 * tol, 1e-5))
    margin_first = solver.row_count
    if unstable.size:
        z_rows, z_const = [], []
        for layer, affine in enumerate(network.relu_layers):
            matrix, constant = affine_rows(model.layout, affine)
            z_rows.append(matrix)
            z_const.append(constant)
        Z, c = sp.vstack(z_rows, format="csr")[unstable], np.concatenate(z_const)[unstable]
        lo, hi = np.concatenate(bounds.lower)[unstable], np.concatenate(bounds.upper)[unstable]
        D = sp.csr_matrix((np.ones(unstable.size), (np.arange(unstable.size), columns)), shape=(unstable.size, model.shape[1]))
        solver.add_rows(Z - sp.diags(margin - lo) @ D, lo - c, np.full(unstable.size, np.inf))
        solver.add_rows(Z - sp.diags(hi + margin) @ D, np.full(unstable.size, -np.inf), -margin - c)
    margin_rows = np.arange(margin_first, solver.row_count)

    seen: set[bytes] = set()

    def cut(pattern: np.ndarray) -> None:
        delta = pattern[unstable]
        ones = columns[delta]
        coefficients = np.where(delta, -1.0, 1.0)
        row = sp.csr_matrix((coefficients, (np.zeros(columns.size, dtype=int), columns)), shape=(1, solver.column_count))
        solver.add_rows(row, np.array([1.0 - ones.size]), np.array([np.inf]))

    def relax_margin() -> None:
        # Second pass: margins off (rows become the plain phase implications, already implied).
        if margin_rows.size == 0:
            return
        half = margin_rows.size // 2
        lower_rows, upper_rows = margin_rows[:half], margin_rows[half:]
        solver.highs.changeRowsBounds(half, lower_rows.astype(np.int32), np.full(half, -np.inf), np.full(half, np.inf))
        solver.highs.changeRowsBounds(half, upper_rows.astype(np.int32), np.full(half, -np.inf), np.full(half, np.inf))

    passes = [True, False] if unstable.size else [False]
    for with_margin in passes:
        if not with_margin:
            relax_margin()
        while not should_stop():
            solution = solver.solve()
            stats.milps += 1
            if solution.status == "infeasible":
                break
            if not solution.has_point:
                stats.incomplete = True
                return
            pattern = stable_pattern.copy()
            pattern[unstable] = solution.values[columns] > 0.5
            key = pattern.tobytes()
            if key in seen:  # cannot happen while the cut holds; stop rather than loop
                raise RuntimeError("the MILP returned a pattern that was already cut off")
            seen.add(key)
            region, labels = _region(network, box, conditions, pattern, tol, stats)
            cut(pattern)
            if region is None:
                stats.lower_dimensional += 1
                continue
            queue = [(region, labels)]
            while queue and not should_stop():
                region, labels = queue.pop()
                stats.regions += 1
                yield region
                if not walk:
                    continue
                _, _, kept = remove_redundant(region.A, region.b, region.center)
                stats.lps += int(region.A.shape[0])
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
                        continue  # a degenerate crossing: the MILP will find what lies beyond
                    seen.add(key)
                    cut(neighbour)
                    queue.append((found, found_labels))
