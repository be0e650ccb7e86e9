"""The big-M MILP of a ReLU network, as solver-neutral sparse matrices.

Columns are the input ``x`` (bounded by the box), every ReLU output ``h_l`` and one
binary ``d`` per *unstable* neuron. Pre-activations are not columns: ``z = w . v + c``
is an affine row over earlier columns (canonical form, see :mod:`milp.core.network`).

For a neuron with pre-activation bounds ``l <= z <= u`` (from :mod:`milp.bounds.propagate`):

* ``u <= 0`` (stable inactive): ``h`` is fixed to 0, no binary, and no row unless ``u == 0``
  exactly: that is how a branch and bound marks a neuron it split inactive, so ``z <= 0`` is kept
  as a row (a split active neuron, ``l == 0``, keeps ``z >= 0`` through ``h = z >= 0``);
* ``l >= 0`` (stable active): one equality row ``h - w.v = c``, ``h`` in ``[l, u]``;
* otherwise (unstable) ``h`` in ``[0, u]``, a binary ``d`` and the big-M rows::

      h - w.v           >= c          (h >= z)
      h - w.v - l d     <= c - l      (h <= z - l (1 - d): d = 1 forces h = z)
      h - u d           <= 0          (h <= u d:           d = 0 forces h = 0)

  so ``d = 1`` means active (``z >= 0``) and ``d = 0`` inactive (``z <= 0``). The big-M
  constants are the neuron's own bounds, never a generic M: loose constants make the
  LP relaxation weak and, at HiGHS's tolerances, let wrong "optimal" points through.

A maximisation needs no binary on an unstable neuron whose ``h`` it can only lose by raising:
one read by no later layer, with a coefficient ``<= 0`` in the objective (about half of the last
ReLU layer of an MLP). Such a neuron keeps ``h >= z`` and ``h >= 0`` alone; at an optimum ``h``
is then ``max(0, z)`` (any larger ``h`` lowers the objective), so the optimum is the network's.
The same holds for conditions ``e >= 0`` whose every row weighs the neuron at or below zero.
:func:`binary_free` finds them; :func:`build_milp` takes them as ``without_binary``.

The model is built once from CSR arrays (fast to hand to any solver); conditions and
objectives are linear rows over the same columns (:func:`affine_row`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.network import Affine, Network

__all__ = ["Layout", "MilpModel", "build_milp", "binary_free", "affine_row", "affine_rows", "condition_rows"]


@dataclass(frozen=True)
class Layout:
    """Where each value lives among the model's columns.

    ``input`` and ``activations[l]`` are column index arrays of shapes ``(input_dim,)`` and
    ``(width_l,)``; ``binaries[l]`` has shape ``(width_l,)`` with the binary's column for an
    unstable neuron and -1 for a stable one (or an unstable one built without its binary).
    """

    input: np.ndarray
    activations: tuple[np.ndarray, ...]
    binaries: tuple[np.ndarray, ...]
    column_count: int

    def source_columns(self, source: int) -> np.ndarray:
        return self.input if source == 0 else self.activations[source - 1]

    @property
    def unstable_binaries(self) -> np.ndarray:
        """Binary columns of every unstable neuron, in pattern order, shape ``(unstable,)``."""
        flat = np.concatenate(self.binaries) if self.binaries else np.zeros(0, dtype=int)
        return flat[flat >= 0]

    @property
    def flat_binaries(self) -> np.ndarray:
        """Binary column (or -1) of every neuron in pattern order, shape ``(neurons,)``."""
        return np.concatenate(self.binaries) if self.binaries else np.zeros(0, dtype=int)


@dataclass(frozen=True)
class MilpModel:
    """``row_lower <= matrix @ v <= row_upper``, ``col_lower <= v <= col_upper``, ``v[integer]`` integral.

    ``matrix`` is CSR of shape ``(rows, columns)``; ``integer`` is a bool mask of shape ``(columns,)``.
    """

    network: Network
    box: Box
    bounds: Bounds
    layout: Layout
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray
    matrix: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def relaxed(self) -> "MilpModel":
        """The LP relaxation (binaries continuous in [0, 1])."""
        return replace(self, integer=np.zeros_like(self.integer))


def affine_rows(layout: Layout, form: Affine) -> tuple[sp.csr_matrix, np.ndarray]:
    """``form`` as sparse rows over the model's columns: returns ``(matrix (out, columns), constant (out,))``."""
    blocks_rows, blocks_cols, blocks_vals = [], [], []
    for source, weight in form.terms:
        coo = sp.coo_matrix(weight)
        blocks_rows.append(coo.row)
        blocks_cols.append(layout.source_columns(source)[coo.col])
        blocks_vals.append(coo.data)
    if blocks_rows:
        rows, cols, vals = np.concatenate(blocks_rows), np.concatenate(blocks_cols), np.concatenate(blocks_vals)
    else:
        rows = cols = np.zeros(0, dtype=int)
        vals = np.zeros(0)
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(form.out_dim, layout.column_count))
    matrix.sum_duplicates()
    return matrix, form.bias.copy()


def affine_row(layout: Layout, form: Affine) -> tuple[np.ndarray, np.ndarray, float]:
    """A one-row form as ``(column indices, coefficients, constant)``."""
    matrix, constant = affine_rows(layout, form)
    row = matrix.getrow(0)
    return row.indices.astype(np.int32), row.data.astype(np.float64), float(constant[0])


def condition_rows(layout: Layout, conditions) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Rows ``expression >= 0`` for each condition (strict ones as ``>= 0`` too: callers add margins)."""
    if not conditions:
        return sp.csr_matrix((0, layout.column_count)), np.zeros(0), np.zeros(0)
    mats, lows = [], []
    for condition in conditions:
        matrix, constant = affine_rows(layout, condition.expression)
        mats.append(matrix)
        lows.append(-constant)
    lower = np.concatenate(lows)
    return sp.vstack(mats, format="csr"), lower, np.full(lower.shape, np.inf)


def binary_free(network: Network, form: Affine, per_row: bool = False) -> np.ndarray:
    """The neurons whose binary neither a maximisation of the one-row ``form`` nor the constraints
    ``form >= 0`` (each row) need, as a bool mask in pattern order, shape ``(neurons,)``: those read
    by no later ReLU layer whose coefficient in every row of ``form`` is ``<= 0``. With ``h >= z``
    and ``h >= 0`` alone, an ``h`` above ``max(0, z)`` only lowers each row: the maximum is the
    network's, and a point meeting the rows meets them in the network too. With ``per_row``, the
    mask of each row on its own, shape ``(rows, neurons)``."""
    coefficient = np.zeros((form.out_dim, network.neuron_count))
    offsets = network.neuron_offsets()
    for source, matrix in form.terms:
        if source > 0:
            coefficient[:, offsets[source - 1]:offsets[source]] += matrix
    free = network.unread_neurons() & (coefficient <= 0)
    return free if per_row else np.all(free, axis=0)


def build_milp(network: Network, box: Box, bounds: Bounds, without_binary: np.ndarray | None = None) -> MilpModel:
    """The big-M MILP of ``network`` over ``box`` with the given pre-activation bounds.

    ``without_binary`` (neurons,), a bool mask in pattern order, marks unstable neurons to model by
    ``h >= z``, ``h >= 0`` alone, which is exact only for an objective that :func:`binary_free` allows.
    """
    box.check_dim(network.input_dim)
    widths = network.widths
    offsets = network.neuron_offsets()
    free = [np.zeros(width, dtype=bool) if without_binary is None else without_binary[offsets[layer]:offsets[layer + 1]]
            for layer, width in enumerate(widths)]
    # Columns: x, then h of every layer, then binaries of unstable neurons.
    input_cols = np.arange(network.input_dim)
    activations, start = [], network.input_dim
    for width in widths:
        activations.append(np.arange(start, start + width))
        start += width
    binaries = []
    for layer in range(len(widths)):
        unstable = bounds.unstable(layer) & ~free[layer]
        cols = np.full(widths[layer], -1, dtype=int)
        cols[unstable] = np.arange(start, start + int(unstable.sum()))
        start += int(unstable.sum())
        binaries.append(cols)
    layout = Layout(input_cols, tuple(activations), tuple(binaries), start)

    col_lower = np.zeros(start)
    col_upper = np.zeros(start)
    integer = np.zeros(start, dtype=bool)
    col_lower[input_cols], col_upper[input_cols] = box.lower, box.upper

    rows, cols, vals, row_lower, row_upper = [], [], [], [], []
    row_count = 0

    def emit(z_matrix: sp.csr_matrix, select: np.ndarray, h_cols, h_coef, d_cols, d_coef, lower, upper):
        """Rows ``h_coef*h + d_coef*d + sign*z_terms`` for the neurons in ``select``."""
        nonlocal row_count
        n = int(select.size)
        if n == 0:
            return
        block = z_matrix[select].tocoo() if z_matrix is not None else None
        local = np.arange(n)
        if block is not None:
            rows.append(row_count + block.row)
            cols.append(block.col)
            vals.append(-block.data)
        rows.append(row_count + local)
        cols.append(h_cols)
        vals.append(np.broadcast_to(h_coef, (n,)).astype(float))
        if d_cols is not None:
            rows.append(row_count + local)
            cols.append(d_cols)
            vals.append(np.broadcast_to(d_coef, (n,)).astype(float))
        row_lower.append(np.broadcast_to(lower, (n,)).astype(float))
        row_upper.append(np.broadcast_to(upper, (n,)).astype(float))
        row_count += n

    for layer, affine in enumerate(network.relu_layers):
        lo, hi = bounds.lower[layer], bounds.upper[layer]
        h = activations[layer]
        z_matrix, c = affine_rows(layout, affine)
        active = np.flatnonzero(lo >= 0)
        inactive = np.flatnonzero(hi <= 0)
        unstable = np.flatnonzero((lo < 0) & (hi > 0) & ~free[layer])
        relaxed = np.flatnonzero((lo < 0) & (hi > 0) & free[layer])
        # stable inactive: h = 0 (column fixed)
        col_lower[h[inactive]] = col_upper[h[inactive]] = 0.0
        # upper bound exactly 0: a branch's split, whose z <= 0 is a constraint of the sub-problem, not a fact
        split = np.flatnonzero(hi == 0)
        emit(z_matrix, split, h[split], 0.0, None, None, c[split], np.inf)  # -w.v >= c, i.e. z <= 0
        # stable active: h = z
        col_lower[h[active]], col_upper[h[active]] = lo[active], hi[active]
        emit(z_matrix, active, h[active], 1.0, None, None, c[active], c[active])
        # unstable: big-M
        d = binaries[layer][unstable]
        col_lower[h[unstable]], col_upper[h[unstable]] = 0.0, hi[unstable]
        col_lower[d], col_upper[d], integer[d] = 0.0, 1.0, True
        l_u, u_u, c_u = lo[unstable], hi[unstable], c[unstable]
        emit(z_matrix, unstable, h[unstable], 1.0, None, None, c_u, np.inf)  # h >= z
        emit(z_matrix, unstable, h[unstable], 1.0, d, -l_u, -np.inf, c_u - l_u)  # h <= z - l (1 - d)
        emit(None, unstable, h[unstable], 1.0, d, -u_u, -np.inf, 0.0)  # h <= u d
        # unstable, no binary needed: h >= z and h in [0, u]
        col_lower[h[relaxed]], col_upper[h[relaxed]] = 0.0, hi[relaxed]
        emit(z_matrix, relaxed, h[relaxed], 1.0, None, None, c[relaxed], np.inf)

    if rows:
        matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(row_count, start)
        )
        matrix.sum_duplicates()
        lower_all, upper_all = np.concatenate(row_lower), np.concatenate(row_upper)
    else:
        matrix = sp.csr_matrix((0, start))
        lower_all = upper_all = np.zeros(0)
    return MilpModel(network, box, bounds, layout, col_lower, col_upper, integer, matrix, lower_all, upper_all)
