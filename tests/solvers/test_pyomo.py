"""The Pyomo backend (milp.solvers.pyomo) gives the optima of the built-in HiGHS path, and embeds in a user's model."""

from __future__ import annotations

import numpy as np
import pytest

from milp import Box
from milp.core.conditions import value_form
from milp.search.queries import output_range
from nets import random_mlp


def test_pyomo_backend_gives_the_same_optimum():
    pyo = pytest.importorskip("pyomo.environ")
    from milp.solvers.pyomo import add_network, solve_pyomo

    rng = np.random.default_rng(11)
    net = random_mlp(rng, [2, 6, 6, 1])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    ours = output_range(net, box).outputs[0]
    for solver in ("highs", "appsi_highs"):  # Pyomo's two HiGHS interfaces
        through_pyomo = solve_pyomo(net, box, value_form(net, "y", 0), maximize=True, solver=solver)
        assert through_pyomo.status == "optimal"
        assert through_pyomo.objective == pytest.approx(ours.max, abs=1e-6)
        assert net.forward(through_pyomo.x[None, :]).output[0, 0] == pytest.approx(ours.max, abs=1e-6)
    # embedding in a user's own model: minimise y[0] subject to x[0] >= 0.5
    m = pyo.ConcreteModel()
    block = add_network(m, net, box)
    m.side = pyo.Constraint(expr=block.x[0] >= 0.5)
    m.obj = pyo.Objective(expr=block.y[0], sense=pyo.minimize)
    pyo.SolverFactory("appsi_highs").solve(m)
    sub = Box(np.array([0.5, -1.0]), np.array([1.0, 1.0]))
    assert pyo.value(m.obj) == pytest.approx(output_range(net, sub).outputs[0].min, abs=1e-6)


@pytest.mark.parametrize("seed", range(2))
def test_pyomo_model_drops_only_binaries_its_objective_does_not_need(seed):
    # the max and min of y[0] through Pyomo, with and without the binaries the objective does not
    # need, equal the brute-force oracle's; the max and the min each drop the unstable last-layer
    # neurons the other keeps, so together they have fewer binaries than the plain models
    pytest.importorskip("pyomo.environ")
    import oracle
    from milp.solvers.pyomo import solve_pyomo

    rng = np.random.default_rng(seed)
    net = random_mlp(rng, [2, 6, 6, 1])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    form = value_form(net, "y", 0)
    top, _ = oracle.exact_max(net, box.lower, box.upper, form)
    bottom, _ = oracle.exact_max(net, box.lower, box.upper, -form)
    lean_binaries = plain_binaries = 0
    for maximize, expected in ((True, top), (False, -bottom)):
        plain = solve_pyomo(net, box, form, maximize=maximize, bounds="symbolic", plain=True)
        lean = solve_pyomo(net, box, form, maximize=maximize, bounds="symbolic")
        for result in (plain, lean):
            assert result.status == "optimal"
            assert result.objective == pytest.approx(expected, abs=1e-6)
            assert net.forward(result.x[None, :]).output[0, 0] == pytest.approx(expected, abs=1e-6)
        assert lean.binaries <= plain.binaries
        lean_binaries, plain_binaries = lean_binaries + lean.binaries, plain_binaries + plain.binaries
    assert lean_binaries < plain_binaries
