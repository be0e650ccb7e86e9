"""The brute-force oracle against its own exhaustive twin, dense sampling and hand-derived facts.

Networks used (weights drawn from fixed seeds):

* ``mlp``: 2 -> 4 -> 3 -> 1, 7 neurons;
* ``deep3``: 3 -> 3 -> 3 -> 2, 6 neurons;
* ``residual``: z0 = W0 x + b0 (4), z1 = V x + W1 h0 + b1 (3), y = P x + Q h1 + c (2), 7 neurons;
* ``output_relu``: 2 -> 4 -> 2 with a ReLU on the output, 6 neurons;
* the "un-ReLU" toy of the design notes, ``relu(U D relu(W x + b_W) + b_U)``, 6 neurons.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from milp.core.conditions import parse_conditions, value_form
from milp.core.network import Affine, Network
from oracle import (
    OracleError,
    affine_maps,
    enumerate_regions,
    enumerate_regions_exhaustive,
    exact_max,
    exact_output_range,
    form_values,
    patterns,
    reachable,
    sample_check,
)

SQRT3 = math.sqrt(3.0)


def _mlp(seed: int, sizes, output_relu: bool = False) -> Network:
    rng = np.random.default_rng(seed)
    layers = [(rng.normal(size=(n_out, n_in)), rng.normal(scale=0.5, size=n_out)) for n_in, n_out in zip(sizes, sizes[1:])]
    return Network.mlp(layers, output_relu=output_relu)


def _residual(seed: int = 3) -> Network:
    rng = np.random.default_rng(seed)
    layer0 = Affine(((0, rng.normal(size=(4, 2))),), rng.normal(scale=0.5, size=4))
    layer1 = Affine(((0, rng.normal(size=(3, 2))), (1, rng.normal(size=(3, 4)))), rng.normal(scale=0.5, size=3))
    output = Affine(((0, rng.normal(size=(2, 2))), (2, rng.normal(size=(2, 3)))), rng.normal(size=2))
    return Network(2, (layer0, layer1), output)


NETS = {
    "mlp": (lambda: _mlp(1, (2, 4, 3, 1)), 2.0),
    "deep3": (lambda: _mlp(2, (3, 3, 3, 2)), 1.0),
    "residual": (_residual, 2.0),
    "output_relu": (lambda: _mlp(4, (2, 4, 2), output_relu=True), 2.0),
}


def _net_and_box(name: str):
    build, half = NETS[name]
    net = build()
    return net, -half * np.ones(net.input_dim), half * np.ones(net.input_dim)


def _uniform(lower, upper, n: int, seed: int = 0) -> np.ndarray:
    return lower + np.random.default_rng(seed).random((n, lower.size)) * (upper - lower)


def _grid(lower, upper, per_side: int) -> np.ndarray:
    axes = [np.linspace(lo, hi, per_side) for lo, hi in zip(lower, upper)]
    return np.stack([a.reshape(-1) for a in np.meshgrid(*axes)], axis=1)


def _some_conditions(net: Network, lower, upper) -> tuple:
    """``y[0]`` above its sampled median, and a slanted half-plane: a proper, non-convex subset of the box."""
    median = float(np.median(net(_uniform(lower, upper, 2000, seed=7))[:, 0]))
    return parse_conditions(net, [f"y[0] > {median!r}", "x[0] - 0.5 * x[1] <= 0.8"])


def _toy() -> Network:
    W = np.array([[1.0, 0.0], [-0.5, SQRT3 / 2], [-0.5, -SQRT3 / 2]])
    U = W
    D = 0.5 * np.array([[0.5, 0.5, -SQRT3 / 2], [SQRT3 / 2, -SQRT3 / 2, 0.0]])
    return Network.mlp([(W, np.full(3, -0.5)), (U @ D, np.full(3, -0.3))], output_relu=True)


def _negated(form: Affine) -> Affine:
    return -form


def _lipschitz(net: Network) -> float:
    """A Lipschitz bound of every output of a plain MLP (ReLU is 1-Lipschitz)."""
    bound = 1.0
    for layer in (*net.relu_layers, net.output):
        (_, weight), = layer.terms
        bound *= np.linalg.norm(weight, 2)
    return bound


# ------------------------------------------------------------------ affine maps
@pytest.mark.parametrize("name", sorted(NETS))
def test_affine_maps_reproduce_the_forward_pass(name):
    net, lower, upper = _net_and_box(name)
    x = _uniform(lower, upper, 50, seed=1)
    trace = net.forward(x)
    for point, pattern, k in zip(x, patterns(net, x), range(len(x))):
        layers, (C, d) = affine_maps(net, pattern)
        for (A, c), z in zip(layers, trace.pre_activations):
            np.testing.assert_allclose(A @ point + c, z[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(C @ point + d, trace.output[k], rtol=1e-12, atol=1e-12)
    # the oracle's own pass agrees with the network's
    assert patterns(net, x) == ["".join("1" if b else "0" for b in row) for row in trace.pattern()]


# ------------------------------------------------------------------ enumeration
@pytest.mark.parametrize("with_conditions", [False, True])
@pytest.mark.parametrize("name", sorted(NETS))
def test_recursive_matches_exhaustive(name, with_conditions):
    net, lower, upper = _net_and_box(name)
    conditions = _some_conditions(net, lower, upper) if with_conditions else ()
    found = enumerate_regions(net, lower, upper, conditions)
    assert found.keys() == enumerate_regions_exhaustive(net, lower, upper, conditions).keys()
    assert len(found) >= 2
    # every interior point has its pattern, and the conditions hold there
    points = np.array(list(found.values()))
    assert patterns(net, points) == list(found)
    for condition in conditions:
        assert np.all(condition.holds(net, points))
    # every sampled point that satisfies the conditions lies in a listed region
    assert sample_check(net, lower, upper, found, conditions, n=5000) == 1.0


def test_conditions_as_pairs_equal_condition_objects():
    net, lower, upper = _net_and_box("residual")
    conditions = _some_conditions(net, lower, upper)
    pairs = [(c.expression, c.strict) for c in conditions]
    assert enumerate_regions(net, lower, upper, pairs).keys() == enumerate_regions(net, lower, upper, conditions).keys()


@pytest.mark.slow
def test_twenty_neurons_are_complete_against_sampling():
    net = _mlp(5, (2, 8, 8, 4, 1))
    lower, upper = -2 * np.ones(2), 2 * np.ones(2)
    found = enumerate_regions(net, lower, upper)
    assert sample_check(net, lower, upper, found, n=20000) == 1.0
    assert patterns(net, np.array(list(found.values()))) == list(found)


def test_fixed_input_equals_the_folded_network():
    """Fixing x[1] = 0.3 must give the regions of the one-input network with x[1] folded into the bias."""
    rng = np.random.default_rng(6)
    (W0, b0), (W1, b1), (W2, b2) = [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in ((2, 4), (4, 3), (3, 1))]
    net = Network.mlp([(W0, b0), (W1, b1), (W2, b2)])
    folded = Network.mlp([(W0[:, :1], b0 + 0.3 * W0[:, 1]), (W1, b1), (W2, b2)])
    found = enumerate_regions(net, np.array([-2.0, 0.3]), np.array([2.0, 0.3]))
    assert found.keys() == enumerate_regions(folded, np.array([-2.0]), np.array([2.0])).keys()
    assert found.keys() == enumerate_regions_exhaustive(net, np.array([-2.0, 0.3]), np.array([2.0, 0.3])).keys()
    assert all(x[1] == 0.3 for x in found.values())


def test_constant_neuron_counts_as_inactive():
    """z1 = h0[0] - h0[1] - x[0] is 0 everywhere (h0 = relu(x0), relu(-x0)): '1' (z > 0) never happens."""
    layer0 = Affine(((0, np.array([[1.0, 0.0], [-1.0, 0.0]])),), np.zeros(2))
    layer1 = Affine(((0, np.array([[-1.0, 0.0]])), (1, np.array([[1.0, -1.0]]))), np.zeros(1))
    net = Network(2, (layer0, layer1), Affine(((2, np.ones((1, 1))),), np.zeros(1)))
    lower, upper = -np.ones(2), np.ones(2)
    found = enumerate_regions(net, lower, upper)
    assert set(found) == {"100", "010"}
    assert found.keys() == enumerate_regions_exhaustive(net, lower, upper).keys()
    assert sample_check(net, lower, upper, found, n=2000) == 1.0


def test_sample_check_notices_missing_and_repeated_regions():
    net, lower, upper = _net_and_box("mlp")
    found = list(enumerate_regions(net, lower, upper))
    largest = max(found, key=patterns(net, _uniform(lower, upper, 2000)).count)
    assert sample_check(net, lower, upper, [p for p in found if p != largest], n=2000) < 1.0
    assert sample_check(net, lower, upper, found + [largest], n=2000) < 1.0
    assert math.isnan(sample_check(net, lower, upper, found, parse_conditions(net, ["x[0] > 5"]), n=100))


# ------------------------------------------------------------------ maxima
def test_exact_max_against_dense_samples():
    net = _mlp(8, (2, 5, 4, 1))
    lower, upper = -np.ones(2), np.ones(2)
    form = value_form(net, "y", 0)
    value, argmax = exact_max(net, lower, upper, form)
    # attained: the argmax is in the box and the network reaches the value there
    assert np.all(argmax >= lower) and np.all(argmax <= upper)
    assert form_values(net, form, argmax)[0] == pytest.approx(value, abs=1e-9)
    # sound: no sample beats it (20k uniform points and a 141 x 141 grid)
    grid = _grid(lower, upper, 141)
    samples = np.vstack([_uniform(lower, upper, 20000, seed=2), grid])
    assert form_values(net, form, samples).max() <= value + 1e-9
    # tight: every point is within h / sqrt(2) of the grid, so the grid misses at most L h / sqrt(2)
    spacing = (upper[0] - lower[0]) / 140
    assert value - form_values(net, form, grid).max() <= _lipschitz(net) * spacing / math.sqrt(2)
    # and zooming in on the best sample (no use of the oracle's answer) reaches it within 1e-6
    assert abs(value - _zoom_max(net, form, samples, lower, upper)) <= 1e-6


def _zoom_max(net, form, samples, lower, upper) -> float:
    values = form_values(net, form, samples)
    best, top = samples[np.argmax(values)], float(values.max())
    width, rng = float(np.max(upper - lower)) / 100, np.random.default_rng(3)
    for _ in range(80):
        trial = np.clip(best + (rng.random((400, best.size)) * 2 - 1) * width, lower, upper)
        values = form_values(net, form, trial)
        if values.max() > top:
            best, top = trial[np.argmax(values)], float(values.max())
        width *= 0.75
    return top


def test_exact_max_of_a_hidden_value_under_conditions():
    net, lower, upper = _net_and_box("residual")
    conditions = _some_conditions(net, lower, upper)
    form = value_form(net, "z1", 2)
    value, argmax = exact_max(net, lower, upper, form, conditions)
    x = np.vstack([_uniform(lower, upper, 20000, seed=4), _grid(lower, upper, 101)])
    inside = np.all([c.holds(net, x) for c in conditions], axis=0)
    sampled = form_values(net, form, x[inside])
    assert sampled.max() <= value + 1e-9
    assert value - sampled.max() < 0.1  # the condition set is 2-D, so dense samples come close
    assert form_values(net, form, argmax)[0] == pytest.approx(value, abs=1e-9)
    # the argmax lies in the closure: non-strict versions of the conditions hold there
    assert all(c.slack(net, argmax)[0] >= -1e-9 for c in conditions)


def test_output_range_against_samples_and_exact_max():
    net, lower, upper = _net_and_box("output_relu")
    mins, maxs = exact_output_range(net, lower, upper)
    y = net(np.vstack([_uniform(lower, upper, 20000, seed=5), _grid(lower, upper, 101)]))
    assert np.all(y.min(axis=0) >= mins - 1e-9) and np.all(y.max(axis=0) <= maxs + 1e-9)
    assert np.all(maxs - y.max(axis=0) < 0.05) and np.all(y.min(axis=0) - mins < 0.05)
    for j in range(net.output_dim):
        form = value_form(net, "y", j)
        assert exact_max(net, lower, upper, form)[0] == pytest.approx(maxs[j], abs=1e-9)
        assert -exact_max(net, lower, upper, _negated(form))[0] == pytest.approx(mins[j], abs=1e-9)


# ------------------------------------------------------------------ reachability
def test_reachable_agrees_with_the_exact_maximum():
    net, lower, upper = _net_and_box("mlp")
    top, _ = exact_max(net, lower, upper, value_form(net, "y", 0))
    assert reachable(net, lower, upper, parse_conditions(net, [f"y[0] >= {top - 1e-3!r}"]))
    assert reachable(net, lower, upper, parse_conditions(net, [f"y[0] >= {top - 1e-12!r}"]))
    assert not reachable(net, lower, upper, parse_conditions(net, [f"y[0] >= {top + 1e-3!r}"]))
    # the maximum is attained, so "> max" is empty while ">= max" is not
    assert not reachable(net, lower, upper, parse_conditions(net, [f"y[0] > {top!r}"]))
    # a sampled point satisfying the conditions proves them reachable
    conditions = _some_conditions(net, lower, upper)
    assert np.any(np.all([c.holds(net, _uniform(lower, upper, 1000)) for c in conditions], axis=0))
    assert reachable(net, lower, upper, conditions)


def test_reachable_counts_lower_dimensional_sets():
    net, lower, upper = _net_and_box("residual")
    line = parse_conditions(net, ["x[0] >= 0.3", "x[0] <= 0.3"])
    assert reachable(net, lower, upper, line)
    assert enumerate_regions(net, lower, upper, line) == {}
    assert exact_max(net, lower, upper, value_form(net, "y", 0), line) == (-math.inf, None)
    assert not reachable(net, lower, upper, parse_conditions(net, ["x[0] > 0.3", "x[0] < 0.3"]))
    assert not reachable(net, lower, upper, parse_conditions(net, ["x[0] > 0.3", "x[0] <= 0.3"]))


# ------------------------------------------------------------------ the design notes' toy
def test_un_relu_toy_regions():
    """``f(x) = relu(U D relu(W x + b_W) + b_U)`` on [-5, 5]^2, feature y[0] = h1[0] > 0."""
    net, lower, upper = _toy(), -5 * np.ones(2), 5 * np.ones(2)
    where = parse_conditions(net, ["y[0] > 0"])
    every = enumerate_regions(net, lower, upper)
    firing = enumerate_regions(net, lower, upper, where)
    assert every.keys() == enumerate_regions_exhaustive(net, lower, upper).keys()
    assert firing.keys() == enumerate_regions_exhaustive(net, lower, upper, where).keys()
    assert set(firing) <= set(every)
    assert all(p[3] == "1" for p in firing)  # y[0] > 0 is neuron 0 of the last layer being active
    assert set(firing) == {p for p in every if p[3] == "1"}
    assert sample_check(net, lower, upper, every, n=20000) == 1.0
    assert sample_check(net, lower, upper, firing, where, n=20000) == 1.0
    # dense samples visit every region: the list holds no region that does not exist
    assert set(patterns(net, _uniform(lower, upper, 20000))) == set(every)
    assert np.all(net(np.array(list(firing.values())))[:, 0] > 0)
    # The design notes count 5 zones by first-layer regime. By hand: the rows of W sum to 0, so
    # z0 sums to -1.5 and "111" is impossible; "000" gives z1[0] = -0.3; and "001" gives
    # z1[0] = (U D)[0, 2] h0[2] - 0.3 with (U D)[0, 2] = -sqrt(3)/4 < 0. The other 5 remain.
    assert {p[:3] for p in firing} == {"010", "011", "100", "101", "110"}


# ------------------------------------------------------------------ validation
def test_invalid_inputs_raise_oracle_errors():
    net, lower, upper = _net_and_box("mlp")
    with pytest.raises(OracleError, match="7 ReLU neurons"):
        affine_maps(net, "0101")
    with pytest.raises(OracleError, match="only '0' and '1'"):
        affine_maps(net, "01x0101")
    with pytest.raises(OracleError, match="inverted"):
        enumerate_regions(net, upper, lower)
    with pytest.raises(OracleError, match="for 2 inputs"):
        enumerate_regions(net, np.zeros(3), np.ones(3))
    with pytest.raises(OracleError, match="at most 12 neurons"):
        enumerate_regions_exhaustive(_mlp(0, (2, 13, 1)), lower, upper)
    with pytest.raises(OracleError, match="one row"):
        exact_max(net, lower, upper, net.relu_layers[0])
    with pytest.raises(OracleError, match="condition must have"):
        enumerate_regions(net, lower, upper, ["y[0] > 0"])
