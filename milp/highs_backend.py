"""HiGHS through ``highspy``: the fast, incremental solver back-end.

All calls to highspy live here; queries and enumeration talk to :class:`HighsSolver`.
The model is handed over once from CSR arrays (``addVars`` + ``addRows`` takes
milliseconds where an expression API takes seconds); objectives, rows and column
bounds are then changed in place and re-solved without rebuilding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from .formulation import MilpModel

__all__ = ["SolverOptions", "Solution", "HighsSolver"]

_INF = highspy.kHighsInf


@dataclass(frozen=True)
class SolverOptions:
    """Options passed explicitly to every solve.

    ``mip_rel_gap`` and ``mip_abs_gap`` default to (nearly) zero: HiGHS's defaults (1e-4
    relative) stop before the optimum is proved. ``mip_feasibility_tolerance`` is what HiGHS
    uses to accept integrality and MIP rows (1e-6 by default); every point it returns is
    re-checked by a forward pass anyway.
    """

    time_limit: float | None = None
    threads: int = 1
    mip_rel_gap: float = 0.0
    mip_abs_gap: float = 1e-9
    mip_feasibility_tolerance: float = 1e-8
    primal_feasibility_tolerance: float = 1e-9
    dual_feasibility_tolerance: float = 1e-9
    presolve: bool = True
    random_seed: int = 0


@dataclass(frozen=True)
class Solution:
    """One solve's outcome.

    ``status`` is one of ``optimal``, ``feasible`` (a point, optimality not proved: time
    limit), ``infeasible``, ``time_limit`` (no point), ``unbounded``, ``error``.
    ``values`` has shape ``(columns,)`` when a point is known; ``bound`` is the proved
    bound on the objective (dual bound) in the objective's own sense, when known.
    """

    status: str
    objective: float | None
    bound: float | None
    values: np.ndarray | None
    seconds: float
    nodes: int = 0

    @property
    def has_point(self) -> bool:
        return self.values is not None


class HighsSolver:
    """A HiGHS model of a :class:`~milp.formulation.MilpModel`, changed in place between solves."""

    def __init__(self, model: MilpModel, options: SolverOptions = SolverOptions()):
        self.model = model
        self.options = options
        self.column_count = model.shape[1]
        self.maximize = False
        self.objective_constant = 0.0
        self.solves = 0
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", int(options.threads))
        h.setOptionValue("random_seed", int(options.random_seed))
        h.setOptionValue("mip_rel_gap", float(options.mip_rel_gap))
        h.setOptionValue("mip_abs_gap", float(options.mip_abs_gap))
        h.setOptionValue("mip_feasibility_tolerance", float(options.mip_feasibility_tolerance))
        h.setOptionValue("primal_feasibility_tolerance", float(options.primal_feasibility_tolerance))
        h.setOptionValue("dual_feasibility_tolerance", float(options.dual_feasibility_tolerance))
        h.setOptionValue("presolve", "on" if options.presolve else "off")
        lower = np.where(np.isfinite(model.col_lower), model.col_lower, -_INF)
        upper = np.where(np.isfinite(model.col_upper), model.col_upper, _INF)
        h.addVars(self.column_count, lower, upper)
        integer = np.flatnonzero(model.integer)
        if integer.size:
            h.changeColsIntegrality(
                integer.size, integer.astype(np.int32), np.full(integer.size, highspy.HighsVarType.kInteger)
            )
        self.highs = h
        self.add_rows(model.matrix, model.row_lower, model.row_upper)

    # ------------------------------------------------------------- changing
    def add_rows(self, matrix: sp.spmatrix, lower: np.ndarray, upper: np.ndarray) -> None:
        """Append rows ``lower <= matrix @ v <= upper`` (infinite entries allowed)."""
        matrix = sp.csr_matrix(matrix)
        if matrix.shape[0] == 0:
            return
        lower = np.where(np.isfinite(lower), lower, -_INF).astype(np.float64)
        upper = np.where(np.isfinite(upper), upper, _INF).astype(np.float64)
        self.highs.addRows(
            matrix.shape[0],
            lower,
            upper,
            int(matrix.nnz),
            matrix.indptr[:-1].astype(np.int32),
            matrix.indices.astype(np.int32),
            matrix.data.astype(np.float64),
        )

    def add_column(self, lower: float, upper: float) -> int:
        """Append one continuous column; returns its index."""
        self.highs.addVars(1, np.array([lower if np.isfinite(lower) else -_INF]), np.array([upper if np.isfinite(upper) else _INF]))
        self.column_count += 1
        return self.column_count - 1

    @property
    def row_count(self) -> int:
        return int(self.highs.getNumRow())

    def delete_rows_from(self, first: int) -> None:
        """Delete rows ``first ..`` (e.g. a query's temporary rows)."""
        count = self.row_count - first
        if count > 0:
            self.highs.deleteRows(count, np.arange(first, first + count, dtype=np.int32))

    def set_column_bounds(self, columns, lower, upper) -> None:
        columns = np.asarray(columns, dtype=np.int32).reshape(-1)
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), columns.shape).copy()
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), columns.shape).copy()
        self.highs.changeColsBounds(columns.size, columns, lower, upper)

    def set_integrality(self, columns, integer: bool) -> None:
        columns = np.asarray(columns, dtype=np.int32).reshape(-1)
        kind = highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous
        self.highs.changeColsIntegrality(columns.size, columns, np.full(columns.size, kind))

    def set_objective(self, columns, coefficients, constant: float = 0.0, maximize: bool = True) -> None:
        """Set the objective ``coefficients . v[columns] + constant`` (all other costs zero)."""
        cost = np.zeros(self.column_count)
        np.add.at(cost, np.asarray(columns, dtype=int), np.asarray(coefficients, dtype=float))
        self.highs.changeColsCost(self.column_count, np.arange(self.column_count, dtype=np.int32), cost)
        self.highs.changeObjectiveOffset(float(constant))
        self.highs.changeObjectiveSense(highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize)
        self.maximize = maximize
        self.objective_constant = float(constant)

    def clear_objective(self) -> None:
        self.set_objective([], [], 0.0, maximize=False)

    # --------------------------------------------------------------- solving
    def solve(self, time_limit: float | None = None) -> Solution:
        """Solve; ``time_limit`` (seconds) overrides the options' limit for this call."""
        limit = time_limit if time_limit is not None else self.options.time_limit
        self.highs.setOptionValue("time_limit", float(limit) if limit is not None else _INF)
        started = time.perf_counter()
        self.highs.run()
        seconds = time.perf_counter() - started
        self.solves += 1
        h = self.highs
        status = h.getModelStatus()
        info = h.getInfo()
        ms = highspy.HighsModelStatus
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        values = np.array(h.getSolution().col_value, dtype=np.float64) if has_point else None
        objective = float(info.objective_function_value) if has_point else None
        is_mip = bool(np.any(self.model.integer))
        nodes = int(getattr(info, "mip_node_count", 0) or 0)
        bound = None
        if status == ms.kOptimal:
            name = "optimal"
            bound = float(info.mip_dual_bound) if is_mip and np.isfinite(info.mip_dual_bound) else objective
        elif status in (ms.kInfeasible,):
            name = "infeasible"
        elif status == ms.kUnboundedOrInfeasible:
            name = "infeasible" if not has_point else "unbounded"
        elif status == ms.kUnbounded:
            name = "unbounded"
        elif status in (ms.kTimeLimit, ms.kInterrupt, ms.kIterationLimit, ms.kSolutionLimit, ms.kObjectiveBound, ms.kObjectiveTarget):
            name = "feasible" if has_point else "time_limit"
            if is_mip and np.isfinite(info.mip_dual_bound):
                bound = float(info.mip_dual_bound)
        else:
            name = "error"
        return Solution(name, objective, bound, values, seconds, nodes)

    def cancel(self) -> None:
        self.highs.cancelSolve()


class LpStack:
    """An LP over the input ``x`` (and a Chebyshev radius ``r``) whose rows form a stack.

    Rows are ``a . x + ||a|| r <= b``; with ``r`` fixed to 0 they are the polytope
    ``{x : A x <= b}``, with ``r`` free the LP finds its Chebyshev ball. A depth-first
    search pushes a row when it splits on a neuron and truncates back when it returns,
    so HiGHS keeps its basis and each LP is a warm re-solve of a few simplex iterations.
    ``x`` has shape ``(dim,)``; the box enters as column bounds.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, radius_cap: float):
        self.dim = int(lower.size)
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        self.radius_cap = float(radius_cap)
        self.solves = 0
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("presolve", "off")
        h.setOptionValue("primal_feasibility_tolerance", 1e-9)
        h.setOptionValue("dual_feasibility_tolerance", 1e-9)
        h.addVars(self.dim + 1, np.append(lower, 0.0).astype(float), np.append(upper, 0.0).astype(float))
        self.highs = h
        self._all_columns = np.arange(self.dim + 1, dtype=np.int32)
        self._radius_column = np.array([self.dim], dtype=np.int32)
        self.rows = 0
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []  # rows as pushed, for read-back

    def push(self, A: np.ndarray, b: np.ndarray, norms: np.ndarray) -> None:
        """Add rows ``A x + norms r <= b`` (A of shape (k, dim))."""
        A = np.atleast_2d(A)
        k = A.shape[0]
        if k == 0:
            return
        dense = np.hstack([A, np.asarray(norms, dtype=float).reshape(k, 1)])
        mask = dense != 0
        starts = np.concatenate([[0], np.cumsum(mask.sum(axis=1))[:-1]]).astype(np.int32)
        index = np.nonzero(mask)[1].astype(np.int32)
        b = np.asarray(b, dtype=float).reshape(k)
        self.highs.addRows(k, np.full(k, -_INF), b, int(index.size), starts, index, dense[mask])
        self._blocks.append((A, b))
        self.rows += k

    def truncate(self, rows: int) -> None:
        """Drop every row past the first ``rows``."""
        if self.rows > rows:
            self.highs.deleteRows(self.rows - rows, np.arange(rows, self.rows, dtype=np.int32))
            while self.rows > rows:
                A, _ = self._blocks.pop()
                self.rows -= A.shape[0]
            if self.rows != rows:
                raise ValueError("truncate must return to a row count that a push left")

    def current_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The polytope's rows ``(A (rows, dim), b (rows,))``."""
        if not self._blocks:
            return np.zeros((0, self.dim)), np.zeros(0)
        return np.vstack([A for A, _ in self._blocks]), np.concatenate([b for _, b in self._blocks])

    def _run(self) -> bool:
        self.highs.run()
        self.solves += 1
        return self.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal

    def optimize(self, c: np.ndarray, maximize: bool) -> tuple[float, np.ndarray] | None:
        """Optimum of ``c . x`` over the polytope: ``(value, x)``, or None when it is empty."""
        h = self.highs
        h.changeColsBounds(1, self._radius_column, np.zeros(1), np.zeros(1))
        h.changeColsCost(self.dim + 1, self._all_columns, np.append(c, 0.0).astype(float))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize)
        if not self._run():
            return None
        x = np.array(h.getSolution().col_value[: self.dim])
        return float(h.getInfo().objective_function_value), x

    def chebyshev(self) -> tuple[np.ndarray, float] | None:
        """Centre and radius of the largest ball inside the polytope (radius capped), or None when empty."""
        h = self.highs
        h.changeColsBounds(1, self._radius_column, np.zeros(1), np.array([self.radius_cap]))
        cost = np.zeros(self.dim + 1)
        cost[-1] = 1.0
        h.changeColsCost(self.dim + 1, self._all_columns, cost)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        ok = self._run()
        h.changeColsBounds(1, self._radius_column, np.zeros(1), np.zeros(1))
        if not ok:
            return None
        values = np.array(h.getSolution().col_value)
        return values[: self.dim], float(values[-1])
