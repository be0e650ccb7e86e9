"""milp.solvers.highs: every HiGHS model status is mapped to one of ours or named in an error; a small MILP
solved as one LP per assignment of its binaries gives the brute-force optimum."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

import oracle
from milp import Box
from milp.bounds.propagate import interval_bounds
from milp.core.conditions import value_form
from milp.core.deadline import Deadline
from milp.core.errors import NumericRangeError, SolverStatusError
from milp.core.options import SolverOptions
from milp.encode.bigm import affine_row, build_milp
from milp.solvers.highs import _MODEL_STATUS, HighsSolver, PolytopeLp, Status, model_status, run
from nets import random_mlp


def test_every_highs_status_is_mapped_or_named():
    """Each HiGHS model status either maps to one of ours or raises an error naming it; none becomes a silent unknown."""

    class Fake:
        def __init__(self, raw):
            self.raw = raw

        def getModelStatus(self):
            return self.raw

        def modelStatusToString(self, raw):
            return f"text of {raw.name}"

    for raw in highspy.HighsModelStatus.__members__.values():
        if raw in _MODEL_STATUS:
            assert isinstance(model_status(Fake(raw)), Status)
        else:
            with pytest.raises(SolverStatusError, match=raw.name):
                model_status(Fake(raw))
    assert model_status(Fake(highspy.HighsModelStatus.kTimeLimit), has_point=True) is Status.FEASIBLE
    assert model_status(Fake(highspy.HighsModelStatus.kTimeLimit)) is Status.TIME_LIMIT


@pytest.mark.parametrize("reach,error", [(1e10, NumericRangeError), (5.0, SolverStatusError)])
def test_highs_giving_up_on_huge_bounds_is_the_inputs_range_not_a_bug(reach, error):
    """HiGHS's "Unknown" (it gives up, as on a box of +-1e10) is a one-line input error naming the bounds
    when a column's bound is huge, and an internal error naming the status otherwise."""
    network = random_mlp(np.random.default_rng(0), [2, 3, 1])
    box = Box(np.full(2, -reach), np.full(2, reach))
    solver = HighsSolver(build_milp(network, box, interval_bounds(network, box)))

    class GaveUp:
        def getModelStatus(self):
            return highspy.HighsModelStatus.kUnknown

        def modelStatusToString(self, raw):
            return "Unknown"

    solver.highs = GaveUp()
    with pytest.raises(error, match="reach" if error is NumericRangeError else "kUnknown"):
        solver._status()


class _FailsOnce(highspy.Highs):
    """Refuses its first solve as HiGHS 1.16 does a hot start from a basis with huge duals (after an
    infeasible LP): error, status kNotset."""

    def __init__(self):
        super().__init__()
        self.runs = self.clears = 0

    def run(self):
        self.runs += 1
        return highspy.HighsStatus.kError if self.runs == 1 else super().run()

    def clearSolver(self):
        self.clears += 1
        return super().clearSolver()


def test_a_failed_hot_start_is_solved_again_from_scratch():
    """A solve that HiGHS refuses with an error and no status is run again without the basis, and
    the answer is the LP's optimum; a solve that succeeds is run once."""

    def lp(highs):
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("threads", 1)  # as the project's own: HiGHS's thread scheduler is per process
        highs.addVars(2, np.zeros(2), np.full(2, 3.0))
        highs.addRows(1, np.array([-highspy.kHighsInf]), np.array([4.0]), 2, np.array([0]), np.array([0, 1]), np.array([1.0, 2.0]))
        highs.changeColsCost(2, np.array([0, 1]), np.array([1.0, 1.0]))
        highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
        return highs

    failing = lp(_FailsOnce())
    run(failing)
    assert (failing.runs, failing.clears) == (2, 1)
    assert model_status(failing) is Status.OPTIMAL
    assert failing.getInfo().objective_function_value == pytest.approx(3.5)  # x = (3, 0.5)
    healthy = lp(_FailsOnce())
    healthy.runs = 1  # past its failure: one run, no clearing
    run(healthy)
    assert (healthy.runs, healthy.clears) == (2, 0) and model_status(healthy) is Status.OPTIMAL


def test_polytope_lp_survives_a_failed_hot_start(monkeypatch):
    """The polytope LPs of region enumeration go through the same retry: a first solve refused by
    HiGHS still gives the optimum."""
    monkeypatch.setattr(highspy, "Highs", _FailsOnce)
    polytope = PolytopeLp(np.array([[1.0, 1.0]]), np.array([1.0]), np.zeros(2), np.full(2, 2.0))
    value, x = polytope.maximize(np.array([2.0, 1.0]))
    assert value == pytest.approx(2.0) and np.allclose(x, [1.0, 0.0])
    assert (polytope.highs.runs, polytope.highs.clears) == (2, 1)


def _model_and_objective(seed: int):
    """A small random net's big-M model over a box, with the objective y0 over its columns."""
    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [2, 3, 3, 1])
    box = Box(-rng.uniform(0.5, 2, 2), rng.uniform(0.5, 2, 2))
    model = build_milp(net, box, interval_bounds(net, box))
    return net, box, model, affine_row(model.layout, value_form(net, "y", 0))


@pytest.mark.parametrize("seed", range(12))
def test_solving_by_assignments_gives_the_oracle_optimum(seed):
    """One LP per assignment of the binaries and HiGHS's branch and cut both give the brute-force range of y0."""
    net, box, model, (cols, coefs, constant) = _model_and_objective(seed)
    k = int(np.sum(model.integer))
    mins, maxs = oracle.exact_output_range(net, box.lower, box.upper)
    for limit in (k, -1):  # by assignments; by HiGHS's MILP (-1: never by assignments)
        for maximize, truth in ((True, maxs[0]), (False, mins[0])):
            solver = HighsSolver(model, SolverOptions(enumerate_binaries=limit))
            solver.set_objective(cols, coefs, constant, maximize)
            solution = solver.solve()
            assert solution.status is Status.OPTIMAL
            assert solution.bound == pytest.approx(truth, abs=1e-6), (limit, maximize)
            x = solution.values[model.layout.input]
            assert float(net(x[None])[0, 0]) == pytest.approx(truth, abs=1e-6)
            if limit == k:
                assert solution.nodes <= 2**k  # the LPs solved
                assert solution.bound == solution.objective


def test_solving_by_assignments_keeps_the_model_a_milp_and_reports_infeasible():
    """Rows no assignment satisfies give INFEASIBLE; the model's binaries stay integer with their bounds."""
    net, box, model, (cols, coefs, constant) = _model_and_objective(3)
    k = int(np.sum(model.integer))
    _, maxs = oracle.exact_output_range(net, box.lower, box.upper)
    solver = HighsSolver(model, SolverOptions(enumerate_binaries=k))
    row = sp.csr_matrix((coefs, (np.zeros(cols.size, dtype=int), cols)), shape=(1, model.shape[1]))
    solver.add_rows(row, np.array([maxs[0] + 0.01 - constant]), np.array([np.inf]))
    assert solver.solve().status is Status.INFEASIBLE
    # without an objective, the first feasible assignment answers; just below the maximum there is one
    solver = HighsSolver(model, SolverOptions(enumerate_binaries=k))
    solver.add_rows(row, np.array([maxs[0] - 0.01 - constant]), np.array([np.inf]))
    solution = solver.solve()
    assert solution.status is Status.OPTIMAL
    assert float(net(solution.values[model.layout.input][None])[0, 0]) >= maxs[0] - 0.01 - 1e-7
    integer = np.flatnonzero(model.integer)
    lp = solver.highs.getLp()
    assert all(lp.integrality_[i] == highspy.HighsVarType.kInteger for i in integer)
    assert np.array_equal(np.asarray(lp.col_lower_)[integer], model.col_lower[integer])
    assert np.array_equal(np.asarray(lp.col_upper_)[integer], model.col_upper[integer])


def test_solving_by_assignments_stops_at_the_deadline():
    _, _, model, objective = _model_and_objective(0)
    solver = HighsSolver(model, SolverOptions(enumerate_binaries=8))
    solver.set_objective(*objective)
    solution = solver.solve(Deadline.after(0.0))
    assert solution.status in (Status.TIME_LIMIT, Status.INTERRUPTED) and solution.bound is None
