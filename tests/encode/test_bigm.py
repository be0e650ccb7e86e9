"""milp.encode.bigm: a maximum's model without the binaries its objective does not need is still exact.

* :func:`binary_free` marks only neurons that no later layer reads and that the objective weighs
  at or below zero.
* The maximum of such a model is the brute-force oracle's (every region's LP), on plain and residual
  nets, for objectives that read the last ReLU layer with both signs, for minima, and for a neuron's
  own activation; and it is the plain model's, with fewer binaries.
* Conditions ``e >= 0`` (one or several, strict or not) just inside and just beyond what the network
  reaches get the oracle's verdict from the MILP without those binaries, and a checked point when sat.
"""

from __future__ import annotations

import numpy as np
import pytest

import oracle
from milp import Box, parse_conditions
from milp.bounds.propagate import interval_bounds, symbolic_bounds
from milp.core.conditions import value_form
from milp.core.deadline import Deadline
from milp.core.network import Affine, Network
from milp.core.options import SolverOptions
from milp.encode.bigm import binary_free, build_milp
from milp.search.exact import milp_maximum, milp_reach
from nets import random_mlp, random_residual


def test_binary_free_marks_unread_neurons_the_objective_weighs_down():
    # x -> h1 (2 neurons) -> h2 (3 neurons); a residual term lets layer 2 and the output read h1[1]
    layer1 = Affine(((0, np.array([[1.0], [-1.0]])),), np.zeros(2))
    layer2 = Affine(((0, np.ones((3, 1))), (1, np.array([[0.0, 2.0], [0.0, 1.0], [0.0, 0.0]]))), np.zeros(3))
    output = Affine(((1, np.array([[-1.0, 0.0]])), (2, np.array([[1.0, -2.0, 0.0]]))), np.zeros(1))
    network = Network(1, (layer1, layer2), output)
    form = value_form(network, "y", 0)
    # h1[0]: not read by layer 2, weight -1 -> free; h1[1]: read by layer 2 -> not free;
    # h2: weights 1 (needs its binary), -2 and 0 (free)
    assert binary_free(network, form).tolist() == [True, False, False, True, True]
    assert binary_free(network, -form).tolist() == [False, False, True, False, True]
    both = binary_free(network, Affine.stack([form, -form]), per_row=True)
    assert both.tolist() == [[True, False, False, True, True], [False, False, True, False, True]]
    assert binary_free(network, Affine.stack([form, -form])).tolist() == [False, False, False, False, True]


def _case(seed: int):
    """A random plain (even seeds) or residual (odd) 2-input net over [-1, 1]^2 with its symbolic bounds."""
    rng = np.random.default_rng(seed)
    network = random_mlp(rng, [2, 6, 6, 2]) if seed % 2 == 0 else random_residual(rng, 2, 5, 2, 2)
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    return rng, network, box, symbolic_bounds(network, box)


def _objectives(network):
    last = len(network.widths)
    yield value_form(network, "y", 0)
    yield -value_form(network, "y", 0)
    yield value_form(network, f"h{last - 1}", 1)
    yield -value_form(network, f"h{last - 1}", 1)


@pytest.mark.parametrize("seed", range(6))
def test_a_maximum_without_needless_binaries_is_the_oracle_maximum(seed):
    rng, network, box, bounds = _case(400 + seed)
    dropped = 0
    for form in _objectives(network):
        truth, _ = oracle.exact_max(network, box.lower, box.upper, form)
        found = milp_maximum(network, box, bounds, form, None, Deadline.after(60), SolverOptions())
        plain = milp_maximum(network, box, interval_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
        assert found.status == plain.status == "optimal"
        assert found.value == pytest.approx(truth, rel=1e-7, abs=1e-7)
        assert found.upper_bound == pytest.approx(truth, rel=1e-6, abs=1e-6)
        assert plain.value == pytest.approx(truth, rel=1e-7, abs=1e-7)
        samples = rng.uniform(-1.0, 1.0, (2000, 2))
        assert oracle.form_values(network, form, samples).max() <= found.upper_bound + 1e-9
        with_all = build_milp(network, box, bounds).integer.sum()
        dropped += with_all - build_milp(network, box, bounds, binary_free(network, form)).integer.sum()
    assert dropped > 0  # the objectives left some unstable neuron without its binary


@pytest.mark.parametrize("seed", range(6))
def test_conditions_without_needless_binaries_get_the_oracle_verdict(seed):
    rng, network, box, bounds = _case(500 + seed)
    gap = parse_conditions(network, "y[0] - y[1] >= 0")[0].expression
    top, _ = oracle.exact_max(network, box.lower, box.upper, gap)
    # a second condition that binds (y1 at least or at most its median over the box), and the
    # gap's maximum under it: the rows weigh the last layer differently
    middle = float(np.median(network(rng.uniform(-1.0, 1.0, (2000, 2)))[:, 1]))
    pairs = [[f"y[0] - y[1] >= {top + shift!r}"] for shift in (-1e-3, 1e-3)]
    pairs += [[f"y[0] - y[1] > {top + shift!r}"] for shift in (-1e-3, 1e-3)]
    for cap in (f"y[1] <= {middle!r}", f"y[1] >= {middle!r}"):
        top_capped, _ = oracle.exact_max(network, box.lower, box.upper, gap, parse_conditions(network, cap))
        pairs += [[f"y[0] - y[1] >= {top_capped + shift!r}", cap] for shift in (-1e-3, 1e-3)]
    dropped = 0
    for texts in pairs:
        conditions = parse_conditions(network, texts)
        truth = oracle.reachable(network, box.lower, box.upper, conditions)
        status, x, _ = milp_reach(network, box, bounds, conditions, None, Deadline.after(60), SolverOptions())
        assert status == ("sat" if truth else "unsat"), texts
        if x is not None:
            assert all(c.expression.apply([np.asarray(v)[None] for v in _sources(network, x)])[0, 0] >= -1e-9 for c in conditions)
        rows = Affine.stack([c.expression for c in conditions])
        dropped += build_milp(network, box, bounds).integer.sum() - build_milp(network, box, bounds, binary_free(network, rows)).integer.sum()
    assert dropped > 0


def _sources(network, x):
    trace = network.forward(np.asarray(x)[None, :])
    return [trace.inputs[0], *(a[0] for a in trace.activations)]
