"""HiGHS through ``highspy``: the one place where the solver library is called.

Three model shapes live here: :class:`HighsSolver` (a MILP or LP handed over once from CSR
arrays, then changed in place between solves), :class:`LpStack` (the region search's LP whose
rows form a stack) and :class:`PolytopeLp` (the small LPs of polytope geometry). They share one
constructor (:func:`_new_highs`, where every option is set) and one status map
(:data:`_MODEL_STATUS`): every HiGHS model status this project has seen is mapped there to a
:class:`Status`; one it has not seen is an :class:`~milp.core.errors.SolverStatusError` that names
it, never a silent "unknown".
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from dataclasses import dataclass
from enum import Enum

import highspy
import numpy as np
import scipy.sparse as sp

from milp.core.deadline import NO_DEADLINE, Deadline
from milp.core.errors import InternalError, NumericRangeError, SolverStatusError
from milp.core.runtime import BackgroundCall
from milp.encode.bigm import MilpModel
from milp.core.options import SolverOptions
from milp.core.tolerances import SOLVER_FEASIBILITY

__all__ = ["SolverOptions", "Solution", "Status", "HighsSolver", "BackgroundSolve", "LpStack", "PolytopeLp"]

_INF = highspy.kHighsInf


class Status(str, Enum):
    """A solve's outcome in the project's words (a ``str``, so ``status == "optimal"`` reads naturally)."""

    OPTIMAL = "optimal"  # proved optimal (a MILP: gap closed)
    FEASIBLE = "feasible"  # a point, optimality not proved (a limit was reached)
    INFEASIBLE = "infeasible"  # proved: no point
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"  # a limit was reached before any point
    INTERRUPTED = "interrupted"  # stopped on request (Ctrl-C); a point may be known


_MS = highspy.HighsModelStatus
# HiGHS model status -> our status. Limits and interrupts become FEASIBLE when a point is known.
# Statuses that mean the solver failed (load, presolve, solve errors) are left out on purpose:
# they raise, as does any status a future HiGHS adds.
_MODEL_STATUS = {
    _MS.kOptimal: Status.OPTIMAL,
    _MS.kInfeasible: Status.INFEASIBLE,
    # Our models bound every column, so "unbounded or infeasible" without a point is infeasible.
    _MS.kUnboundedOrInfeasible: Status.INFEASIBLE,
    _MS.kUnbounded: Status.UNBOUNDED,
    _MS.kTimeLimit: Status.TIME_LIMIT,
    _MS.kIterationLimit: Status.TIME_LIMIT,
    _MS.kSolutionLimit: Status.TIME_LIMIT,
    _MS.kObjectiveBound: Status.TIME_LIMIT,
    _MS.kObjectiveTarget: Status.TIME_LIMIT,
    _MS.kMemoryLimit: Status.TIME_LIMIT,
    _MS.kInterrupt: Status.INTERRUPTED,
}
if hasattr(_MS, "kHighsInterrupt"):  # highspy >= 1.12 reports a user interrupt separately
    _MODEL_STATUS[_MS.kHighsInterrupt] = Status.INTERRUPTED


def model_status(highs: highspy.Highs, has_point: bool = False) -> Status:
    """The project's :class:`Status` for a HiGHS model after ``run``."""
    raw = highs.getModelStatus()
    status = _MODEL_STATUS.get(raw)
    if status is None:
        raise SolverStatusError(f"HiGHS answered with model status {highs.modelStatusToString(raw)!r} ({raw.name}), which milp does not expect")
    if has_point and status in (Status.TIME_LIMIT, Status.INTERRUPTED):
        return Status.FEASIBLE
    if has_point and status is Status.INFEASIBLE and raw == _MS.kUnboundedOrInfeasible:
        return Status.UNBOUNDED
    return status


def run(highs: highspy.Highs) -> None:
    """``highs.run()``, once more from scratch when a hot start fails.

    The models here are changed in place and solved again from the last basis. After an
    infeasible LP that basis can carry huge dual values, and HiGHS 1.16 then stops at once
    ("dual simplex ratio test failed due to excessive dual values") with status kNotset, which
    is a failed solve, not an answer about the model (seen in the refinement's leaf MILPs on
    mnist_fc's 256x4 net). The same LP solved without the basis (and with presolve) is fine.
    """
    if highs.run() == highspy.HighsStatus.kError and highs.getModelStatus() == _MS.kNotset:
        highs.clearSolver()
        highs.run()


_banner_shown = False


def _new_highs(*, threads: int = 1, presolve: bool = False, random_seed: int = 0,
               primal_feasibility_tolerance: float = SOLVER_FEASIBILITY,
               dual_feasibility_tolerance: float = SOLVER_FEASIBILITY) -> highspy.Highs:
    """A silent HiGHS instance; every option this project sets on an LP is set here.

    highspy >= 1.16 prints a copyright banner on stdout when the process creates its first
    instance; stdout carries answers, so the first instance is created with stdout pointed at
    the null device (the banner is not an answer, and on stderr it would be noise every run).
    """
    global _banner_shown  # a fact about this process (HiGHS prints its banner once per process)
    if not _banner_shown:
        sys.stdout.flush()
        saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
        _banner_shown = True
    else:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", int(random_seed))
    h.setOptionValue("presolve", "on" if presolve else "off")
    h.setOptionValue("primal_feasibility_tolerance", float(primal_feasibility_tolerance))
    h.setOptionValue("dual_feasibility_tolerance", float(dual_feasibility_tolerance))
    return h


def _add_csr_rows(h: highspy.Highs, matrix: sp.csr_matrix, lower: np.ndarray, upper: np.ndarray) -> None:
    lower = np.where(np.isfinite(lower), lower, -_INF).astype(np.float64)
    upper = np.where(np.isfinite(upper), upper, _INF).astype(np.float64)
    h.addRows(matrix.shape[0], lower, upper, int(matrix.nnz), matrix.indptr[:-1].astype(np.int32),
              matrix.indices.astype(np.int32), matrix.data.astype(np.float64))


@dataclass(frozen=True)
class Solution:
    """One solve's outcome.

    ``status`` is a :class:`Status`. ``values`` has shape ``(columns,)`` when a point is known;
    ``bound`` is the proved bound on the objective (dual bound) in the objective's own sense,
    when known.
    """

    status: Status
    objective: float | None
    bound: float | None
    values: np.ndarray | None
    seconds: float
    nodes: int = 0

    @property
    def has_point(self) -> bool:
        return self.values is not None


# HiGHS answers "Unknown" when its tolerances (about 1e-9 on rows with coefficients of 1e10) cannot
# settle a model: past this magnitude of a column's bound that is the model's range, not a bug here
WIDE_RANGE = 1e6
# HiGHS's option infinite_bound: a bound this large is read as no bound at all
HIGHS_INFINITY = 1e20


def _bounds_reach(model: MilpModel) -> float:
    """The largest magnitude of a finite column bound of ``model``: the range its numbers span."""
    bounds = np.concatenate([model.col_lower, model.col_upper])
    return float(np.abs(bounds[np.isfinite(bounds)]).max(initial=0.0))


class HighsSolver:
    """A HiGHS model of a :class:`~milp.encode.bigm.MilpModel`, changed in place between solves."""

    def __init__(self, model: MilpModel, options: SolverOptions = SolverOptions()):
        self.model = model
        self.options = options
        self.column_count = model.shape[1]
        self.is_mip = bool(np.any(model.integer))
        self._integer = np.flatnonzero(model.integer).astype(np.int32)
        self._has_objective, self._maximize = False, False  # HiGHS's default: no costs, minimise
        self.solves = 0
        h = _new_highs(threads=options.threads, presolve=options.presolve, random_seed=options.random_seed,
                       primal_feasibility_tolerance=options.primal_feasibility_tolerance,
                       dual_feasibility_tolerance=options.dual_feasibility_tolerance)
        h.setOptionValue("mip_rel_gap", float(options.mip_rel_gap))
        h.setOptionValue("mip_abs_gap", float(options.mip_abs_gap))
        h.setOptionValue("mip_feasibility_tolerance", float(options.mip_feasibility_tolerance))
        lower = np.where(np.isfinite(model.col_lower), model.col_lower, -_INF)
        upper = np.where(np.isfinite(model.col_upper), model.col_upper, _INF)
        reach = _bounds_reach(model)
        if reach >= HIGHS_INFINITY:
            raise NumericRangeError(f"the model's bounds reach {reach:.3g}, which HiGHS reads as infinite (from {HIGHS_INFINITY:.0e}); "
                                    "shrink the box, or scale the inputs or the weights")
        h.addVars(self.column_count, lower, upper)
        integer = np.flatnonzero(model.integer)
        if integer.size:
            h.changeColsIntegrality(
                integer.size, integer.astype(np.int32), np.full(integer.size, highspy.HighsVarType.kInteger)
            )
        self.highs = h
        self._deadline = NO_DEADLINE
        if self.is_mip:
            # A long MILP asks between nodes whether to stop: Ctrl-C ends it within a fraction of a second.
            h.cbMipInterrupt += self._interrupt
        self.add_rows(model.matrix, model.row_lower, model.row_upper)

    def _interrupt(self, event) -> None:
        if self._deadline.stopped:
            event.interrupt()

    # ------------------------------------------------------------- changing
    def add_rows(self, matrix: sp.spmatrix, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Append rows ``lower <= matrix @ v <= upper`` (infinite entries allowed); returns their indices."""
        matrix = sp.csr_matrix(matrix)
        first = self.row_count
        if matrix.shape[0]:
            _add_csr_rows(self.highs, matrix, lower, upper)
        return np.arange(first, first + matrix.shape[0])

    def delete_rows(self, rows: np.ndarray) -> None:
        """Delete the given rows (later rows move up)."""
        rows = np.asarray(rows, dtype=np.int32)
        if rows.size:
            self.highs.deleteRows(rows.size, rows)

    def add_column(self, lower: float, upper: float) -> int:
        """Append one continuous column; returns its index."""
        self.highs.addVars(1, np.array([lower if np.isfinite(lower) else -_INF]), np.array([upper if np.isfinite(upper) else _INF]))
        self.column_count += 1
        return self.column_count - 1

    @property
    def row_count(self) -> int:
        return int(self.highs.getNumRow())

    def set_objective(self, columns, coefficients, constant: float = 0.0, maximize: bool = True) -> None:
        """Set the objective ``coefficients . v[columns] + constant`` (all other costs zero)."""
        cost = np.zeros(self.column_count)
        np.add.at(cost, np.asarray(columns, dtype=int), np.asarray(coefficients, dtype=float))
        self.highs.changeColsCost(self.column_count, np.arange(self.column_count, dtype=np.int32), cost)
        self.highs.changeObjectiveOffset(float(constant))
        self.highs.changeObjectiveSense(highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize)
        self._has_objective = bool(np.any(cost != 0.0))
        self._maximize = maximize

    # --------------------------------------------------------------- solving
    def solve(self, deadline: Deadline = NO_DEADLINE) -> Solution:
        """Solve until optimal, or until the options' time limit or ``deadline`` (whichever comes first).

        A stop request on ``deadline`` interrupts a running MILP; the solution then has status
        ``INTERRUPTED`` (or ``FEASIBLE`` with the point found so far) and the bound proved so far.
        """
        deadline = deadline.sooner(self.options.time_limit)
        if deadline.expired():
            return Solution(Status.INTERRUPTED if deadline.stopped else Status.TIME_LIMIT, None, None, None, 0.0)
        if self.is_mip and self._integer.size <= self.options.enumerate_binaries:
            return self._solve_by_assignments(deadline)
        h = self.highs
        self._set_time_limit(deadline)
        self._deadline = deadline
        started = time.perf_counter()
        try:
            run(h)
        finally:
            self._deadline = NO_DEADLINE
        return self._solution(time.perf_counter() - started)

    def _set_time_limit(self, deadline: Deadline) -> None:
        limit = deadline.remaining()
        self.highs.setOptionValue("time_limit", max(float(limit), 1e-3) if limit is not None else _INF)

    def _solve_by_assignments(self, deadline: Deadline) -> Solution:
        """The MILP as one LP per assignment of its integer columns (see
        :attr:`SolverOptions.enumerate_binaries`): the best feasible LP is the optimum; its point is
        the solution and its value the proved bound. Without an objective the first feasible LP answers.
        At a limit, the best point so far and no bound (the LPs not solved are not bounded)."""
        h, integer, started = self.highs, self._integer, time.perf_counter()
        lower, upper = self.model.col_lower[integer], self.model.col_upper[integer]
        choices = [range(math.ceil(lo), math.floor(hi) + 1) for lo, hi in zip(lower, upper)]
        sign = 1.0 if self._maximize else -1.0
        best: tuple[float, np.ndarray] | None = None
        limited, solved = None, 0
        h.changeColsIntegrality(integer.size, integer, np.full(integer.size, highspy.HighsVarType.kContinuous))
        try:
            for assignment in itertools.product(*choices):
                if deadline.expired():
                    limited = Status.INTERRUPTED if deadline.stopped else Status.TIME_LIMIT
                    break
                fixed = np.asarray(assignment, dtype=np.float64)
                h.changeColsBounds(integer.size, integer, fixed, fixed)
                self._set_time_limit(deadline)
                run(h)
                solved += 1
                status = self._status()
                if status is Status.INFEASIBLE:
                    continue
                if status is not Status.OPTIMAL:
                    limited = status
                    break
                value = float(h.getInfo().objective_function_value)
                if best is None or sign * value > sign * best[0]:
                    best = (value, np.array(h.getSolution().col_value, dtype=np.float64))
                if not self._has_objective:
                    break
        finally:
            h.changeColsBounds(integer.size, integer, lower.astype(np.float64), upper.astype(np.float64))
            h.changeColsIntegrality(integer.size, integer, np.full(integer.size, highspy.HighsVarType.kInteger))
        self.solves += 1
        seconds = time.perf_counter() - started
        if limited is not None:
            if limited is Status.UNBOUNDED:
                return Solution(Status.UNBOUNDED, None, None, None, seconds, solved)
            status = Status.FEASIBLE if best is not None else limited
            return Solution(status, None if best is None else best[0], None, None if best is None else best[1], seconds, solved)
        if best is None:
            return Solution(Status.INFEASIBLE, None, None, None, seconds, solved)
        return Solution(Status.OPTIMAL, best[0], best[0], best[1], seconds, solved)

    def _status(self, has_point: bool = False) -> Status:
        """:func:`model_status`, with HiGHS's "Unknown" on a model of huge bounds reported as such."""
        if self.highs.getModelStatus() == _MS.kUnknown:
            scale = _bounds_reach(self.model)
            if scale > WIDE_RANGE:
                raise NumericRangeError(f"HiGHS gave up on the model (status 'Unknown'): its bounds reach {scale:.3g}, too wide for its "
                                        "tolerances; shrink the box, or scale the inputs or the weights")
        return model_status(self.highs, has_point)

    def _solution(self, seconds: float) -> Solution:
        h = self.highs
        self.solves += 1
        info = h.getInfo()
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        status = self._status(has_point)
        values = np.array(h.getSolution().col_value, dtype=np.float64) if has_point else None
        objective = float(info.objective_function_value) if has_point else None
        nodes = int(getattr(info, "mip_node_count", 0) or 0)
        bound = None
        if self.is_mip and np.isfinite(info.mip_dual_bound) and status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT, Status.INTERRUPTED):
            bound = float(info.mip_dual_bound)
        elif status is Status.OPTIMAL:
            bound = objective
        return Solution(status, objective, bound, values, seconds, nodes)


# HiGHS 1.16 asks whether to stop between nodes, not within its root's cut rounds and sub-MIP
# heuristics: on a 10-64x4 net's root it went 7 s without asking. A cancelled background solve
# has this long to stop; then its process is ended (Ctrl-C answers within the second or two promised).
CANCEL_GRACE = 1.0


class BackgroundSolve(BackgroundCall):
    """One MILP solved by HiGHS in a child process, beside the caller's own work (a portfolio's arm).

    A process (:class:`~milp.core.runtime.BackgroundCall`), not a thread: HiGHS releases the
    interpreter lock while it runs, but asks at every node whether to stop, through a Python
    callback that waits for the lock while the caller's numpy code holds it. ``objective`` is
    :meth:`HighsSolver.set_objective`'s ``(columns, coefficients, constant, maximize)``;
    ``deadline`` limits the solve (its stop request is passed on by :meth:`join`); :meth:`cancel`
    stops it at its next node (its outcome is then ``INTERRUPTED`` or ``FEASIBLE``), or after
    :data:`CANCEL_GRACE` seconds ends the process, and with it what the solve had found.
    """

    def __init__(self, model: MilpModel, options: SolverOptions, objective: tuple, deadline: Deadline = NO_DEADLINE):
        super().__init__(_solve_model, (model, options, objective), deadline, name="the HiGHS child process", grace=CANCEL_GRACE)

    def join(self) -> Solution:
        """Wait for the solve's :class:`Solution` (a stop request on the deadline is passed on)."""
        answer = super().join()
        if answer is None:  # stopped before the model was read: nothing found, nothing proved
            return Solution(Status.INTERRUPTED, None, None, None, 0.0)
        return answer


def _solve_model(model: MilpModel, options: SolverOptions, objective: tuple, deadline: Deadline) -> Solution:
    """:class:`BackgroundSolve`'s call, in the child."""
    solver = HighsSolver(model, options)
    solver.set_objective(*objective)
    return solver.solve(deadline)


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
        h = _new_highs()
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
                raise InternalError("truncate must return to a row count that a push left")

    def current_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The polytope's rows ``(A (rows, dim), b (rows,))``."""
        if not self._blocks:
            return np.zeros((0, self.dim)), np.zeros(0)
        return np.vstack([A for A, _ in self._blocks]), np.concatenate([b for _, b in self._blocks])

    def _run(self) -> bool:
        run(self.highs)
        self.solves += 1
        return model_status(self.highs) is Status.OPTIMAL

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

    def chebyshev(self, tol: float = 0.0) -> tuple[np.ndarray, float] | None:
        """Centre and radius of the largest ball inside the polytope (radius capped), or None when empty.
        (``tol``: a ball wider than it would do; this LP always gives the largest.)"""
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


class PolytopeLp:
    """``max c . x`` subject to ``A x <= b`` and ``lower <= x <= upper``: the small LPs of polytope geometry.

    One silent, one-thread HiGHS model changed in place (row and column bounds, costs).
    """

    def __init__(self, A: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray):
        h = _new_highs()
        k, n = A.shape
        h.addVars(n, np.where(np.isfinite(lower), lower, -_INF).astype(np.float64), np.where(np.isfinite(upper), upper, _INF).astype(np.float64))
        if k:
            _add_csr_rows(h, sp.csr_matrix(A), np.full(k, -np.inf), np.asarray(b, dtype=np.float64))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.highs = h
        self.columns = np.arange(n, dtype=np.int32)

    def set_row_upper(self, row: int, upper: float) -> None:
        self.highs.changeRowBounds(int(row), -_INF, float(upper))

    def set_column_bounds(self, column: int, lower: float, upper: float) -> None:
        self.highs.changeColBounds(int(column), float(lower), float(upper))

    def row_duals(self) -> np.ndarray:
        """The rows' duals at the last optimum (k,): positive on the rows that bind a maximum."""
        return np.array(self.highs.getSolution().row_dual)

    def maximize(self, c: np.ndarray) -> tuple[float, np.ndarray | None] | None:
        """``(optimum, x)``; ``(inf, None)`` when unbounded; None when infeasible.
        Any other outcome is an :class:`~milp.core.errors.InternalError` (a small LP has no limit to reach)."""
        h = self.highs
        h.changeColsCost(self.columns.size, self.columns, np.asarray(c, dtype=np.float64))
        run(h)
        status = model_status(h)
        if status is Status.OPTIMAL:
            return float(h.getInfo().objective_function_value), np.array(h.getSolution().col_value)
        if status is Status.INFEASIBLE:
            if h.getModelStatus() == _MS.kUnboundedOrInfeasible:
                return float("inf"), None  # kept as before: unproved either way, treated as unbounded
            return None
        if status is Status.UNBOUNDED:
            return float("inf"), None
        raise InternalError(f"HiGHS could not solve a polytope LP: {h.modelStatusToString(h.getModelStatus())}")
