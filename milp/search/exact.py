"""One exact MILP over a box: the maximum of an affine form, or whether conditions can hold.

Both hand every solver point to :func:`milp.search.witness.solve_checked`; a maximum is
``optimal`` only when the checked point attains the solver's proved bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from milp.core.box import Box
from milp.core.conditions import Condition
from milp.core.deadline import Deadline
from milp.core.errors import InternalError
from milp.core.network import Affine, Network
from milp.core.options import SolverOptions
from milp.core.runtime import BackgroundCall
from milp.core.tolerances import attained_tolerance, proves_not_positive
from milp.encode.bigm import MilpModel, affine_row, binary_free, build_milp, condition_rows
from milp.search.witness import Reference, check_point, clip_to_box, polish_in_pattern
from milp.solvers.highs import CANCEL_GRACE, BackgroundSolve, HighsSolver, Solution, Status

__all__ = ["Maximum", "MaximumArm", "ReachArm", "milp_maximum", "milp_reach", "solve_checked", "check_solution", "limit_reason", "values_at"]


def limit_reason(deadline: Deadline) -> str:
    return "stopped on request" if deadline.stopped else "time limit reached"


def values_at(network: Network, x: np.ndarray) -> list[np.ndarray]:
    """The sources ``[x, h_0, h_1, ...]`` at the points ``x`` ((d,) or (n, d)), each (n, dim)."""
    trace = network.forward(np.atleast_2d(x))
    return [trace.inputs, *trace.activations]


@dataclass(frozen=True)
class Maximum:
    """The proved maximum of a one-row form: ``status`` ``optimal``, ``unknown`` (limit) or ``empty``
    (a branch's sub-problem without a point);
    ``value`` at the checked point ``x`` (input_dim,), both None when no point was checked;
    ``upper_bound`` proved."""

    status: str
    value: float | None
    x: np.ndarray | None
    upper_bound: float | None
    subproblems: int = 0
    milp_calls: int = 0


def solve_checked(
    network: Network,
    box: Box,
    model: MilpModel,
    solver: HighsSolver,
    objective: Affine | None,
    conditions: Sequence[Condition],
    maximize: bool,
    reference: Reference | None,
    deadline: Deadline,
    options: SolverOptions,
) -> tuple[Solution, np.ndarray | None, str]:
    """Solve, then check the point (polishing it by an LP when the raw point fails)."""
    return check_solution(network, box, model, solver.solve(deadline), objective, conditions, maximize, reference)


def check_solution(network: Network, box: Box, model: MilpModel, solution: Solution, objective: Affine | None,
                   conditions: Sequence[Condition], maximize: bool, reference: Reference | None) -> tuple[Solution, np.ndarray | None, str]:
    """A solver's point checked by a forward pass (and ``reference``), polished by an LP when it fails."""
    if not solution.has_point:
        return solution, None, ""
    x = clip_to_box(box, solution.values[model.layout.input])
    ok, why = check_point(network, box, x, conditions, reference)
    if ok:
        return solution, x, ""
    polished = polish_in_pattern(network, box, x, objective, conditions, maximize)
    if polished is not None:
        ok2, why2 = check_point(network, box, polished, conditions, reference)
        if ok2:
            return solution, polished, ""
        why = why2
    return solution, None, why


def _maximum_model(network, box, bounds, form, plain: bool = False) -> tuple[MilpModel, tuple]:
    """The big-M model over ``box`` and the objective ``max form`` as :meth:`HighsSolver.set_objective` takes it.

    Unstable neurons whose binary the objective does not need (:func:`~milp.encode.bigm.binary_free`)
    get none, unless ``plain``: on the 784-100-100-10 rung that is 40 % of the binaries."""
    model = build_milp(network, box, bounds, None if plain else binary_free(network, form))
    cols, coefs, constant = affine_row(model.layout, form)
    return model, (cols, coefs, constant, True)


def milp_maximum(network, box, bounds, form, reference, deadline, options, check_network=None, split: bool = False,
                 plain: bool = False) -> Maximum:
    """One exact MILP over ``box``: the maximum of ``form`` (over ``network``'s sources).

    With ``split``, ``bounds`` carry a branch's neuron splits (bounds ending exactly at 0), which
    may leave no point: status ``empty`` then, instead of an internal error. ``plain`` gives every
    unstable neuron its binary (the textbook big-M model, a baseline)."""
    model, objective = _maximum_model(network, box, bounds, form, plain)
    solver = HighsSolver(model, options)
    solver.set_objective(*objective)
    return _maximum_of(network, box, model, solver.solve(deadline), form, reference, check_network, split)


class MaximumArm:
    """The whole-box big-M MILP of a maximum, solved by HiGHS in a child process.

    A portfolio's second arm: the branch and bound runs beside it, and whichever proves the
    maximum first answers, so a query is never slower than the plain model by more than the
    start-up (the child runs on the second core; see :class:`~milp.solvers.highs.BackgroundSolve`).
    """

    def __init__(self, network, box, bounds, form, options, deadline, reference=None):
        self.network, self.box, self.form, self.reference = network, box, form, reference
        self.model, objective = _maximum_model(network, box, bounds, form)
        self.solve = BackgroundSolve(self.model, options, objective, deadline)

    def finished(self) -> bool:
        return self.solve.finished()

    def abandon(self) -> None:
        """Stop the arm without waiting for it (HiGHS stops at its next node; the child then ends)."""
        self.solve.cancel()

    def result(self) -> Maximum:
        """Stop the arm (if it still runs) and return its outcome: a checked :class:`Maximum`."""
        self.solve.cancel()
        return _maximum_of(self.network, self.box, self.model, self.solve.join(), self.form, self.reference)


def _maximum_of(network, box, model, solution, form, reference, check_network=None, split: bool = False) -> Maximum:
    """The :class:`Maximum` of a solve: ``optimal`` only when the checked point attains the proved bound."""
    solution, x, _ = check_solution(check_network or network, box, model, solution, form, (), True, reference)
    if solution.status == "infeasible" and split:
        return Maximum("empty", None, None, None, 1, 1)
    if solution.status == "infeasible":
        raise InternalError("the MILP is infeasible over the box, which cannot happen for a valid network and box")
    value = None if x is None else float(form.apply([*values_at(network, x)])[0, 0])
    bound = solution.bound
    exact = solution.status == "optimal" and value is not None and bound is not None and bound - value <= attained_tolerance(value)
    return Maximum("optimal" if exact else "unknown", value, x, bound, 1, 1)


def milp_reach(network, box, bounds, conditions, reference, deadline, options) -> tuple[str, np.ndarray | None, str]:
    """One MILP over ``box``: ``("sat", x, "")``, ``("unsat", None, why)`` or ``("unknown", None, why)``."""
    # the conditions' rows, one above the other: the neurons no row needs a binary for
    stacked = Affine.stack([c.expression for c in conditions]) if conditions else None
    model = build_milp(network, box, bounds, None if stacked is None else binary_free(network, stacked))
    solver = HighsSolver(model, options)
    strict = [c for c in conditions if c.strict]
    rows, lower, upper = condition_rows(model.layout, [c for c in conditions if not c.strict])
    solver.add_rows(rows, lower, upper)
    if strict:
        # strict conditions through a margin t that is maximised: e(x) - t >= 0, t <= 1
        t = solver.add_column(-np.inf, 1.0)
        srows, slower, supper = condition_rows(model.layout, strict)
        srows = sp.hstack([sp.csr_matrix((srows.data, srows.indices, srows.indptr), shape=(srows.shape[0], t)), -np.ones((len(strict), 1))], format="csr")
        solver.add_rows(srows, slower, supper)
        solver.set_objective([t], [1.0], 0.0, maximize=True)
    solution, x, why = solve_checked(network, box, model, solver, None, conditions, True, reference, deadline, options)
    if x is not None:
        return "sat", x, ""
    if solution.status == "infeasible":
        return "unsat", None, ""
    if strict and solution.status == Status.OPTIMAL and proves_not_positive(solution.bound):
        return "unsat", None, f"the strict conditions hold nowhere (largest margin {solution.bound:.3g}, within the solver's tolerance of 0)"
    if solution.status in (Status.TIME_LIMIT, Status.FEASIBLE, Status.INTERRUPTED):
        return "unknown", None, limit_reason(deadline)
    return "unknown", None, why or f"solver status {solution.status}"


class ReachArm:
    """:func:`milp_reach` in a child process, beside the caller's search (a portfolio's arm). The
    child checks its point in float64 only: the caller checks it again with its reference model."""

    def __init__(self, network, box, bounds, conditions, options, deadline):
        self.call = BackgroundCall(_reach_in_child, (network, box, bounds, conditions, options), deadline,
                                   name="the HiGHS child process", grace=CANCEL_GRACE)

    def finished(self) -> bool:
        return self.call.finished()

    def abandon(self) -> None:
        """Stop the arm without waiting for it."""
        self.call.cancel()

    def result(self) -> tuple[str, np.ndarray | None, str]:
        """:func:`milp_reach`'s answer (``unknown`` when the arm was abandoned before it began)."""
        answer = self.call.join()
        return ("unknown", None, "stopped on request") if answer is None else answer


def _reach_in_child(network, box, bounds, conditions, options, deadline: Deadline) -> tuple[str, np.ndarray | None, str]:
    """:class:`ReachArm`'s call, in the child."""
    return milp_reach(network, box, bounds, conditions, None, deadline, options)
