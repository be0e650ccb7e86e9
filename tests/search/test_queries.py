"""fires / reach / range against independent truth: the brute-force LP oracle and dense sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import oracle
from conftest import ACASXU, ACASXU_SKIP  # $MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu
from importers import load_onnx
from milp import Box, parse_box, parse_conditions
from milp.bounds.propagate import symbolic_bounds
from milp.core.conditions import value_form
from milp.core.deadline import Deadline
from milp.core.options import SolverOptions
from milp.io.vnnlib import read_vnnlib
from milp.search.exact import milp_maximum
from milp.search.queries import QueryError, fires, output_range, reach
from nets import random_mlp, random_residual, un_relu_toy


def _nets():
    rng = np.random.default_rng(7)
    yield "mlp", random_mlp(rng, [2, 5, 4, 2]), Box(np.full(2, -1.0), np.full(2, 1.0))
    yield "residual", random_residual(rng, 2, 3, 2, 2), Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    yield "output-relu", random_mlp(rng, [3, 4, 3, 2], output_relu=True), Box(np.full(3, -1.0), np.full(3, 1.0))
    yield "fixed-input", random_mlp(rng, [3, 6, 2]), Box(np.array([-1.0, 0.25, -1.0]), np.array([1.0, 0.25, 1.0]))
    yield "toy", un_relu_toy(), Box(np.full(2, -5.0), np.full(2, 5.0))


NETS = list(_nets())


@pytest.mark.parametrize("split", [True, False], ids=["split", "milp"])
@pytest.mark.parametrize("name,net,box", NETS, ids=[n for n, _, _ in NETS])
def test_range_equals_oracle(name, net, box, split):
    result = output_range(net, box, split_inputs=split)
    mins, maxs = oracle.exact_output_range(net, box.lower, box.upper)
    for o in result.outputs:
        assert o.status == "exact"
        assert o.max == pytest.approx(maxs[o.index], abs=1e-6)
        assert o.min == pytest.approx(mins[o.index], abs=1e-6)
        # the reported values are attained at the reported inputs
        assert net(o.argmax)[o.index] == pytest.approx(o.max, abs=1e-12)
        assert net(o.argmin)[o.index] == pytest.approx(o.min, abs=1e-12)
        assert box.contains(o.argmax) and box.contains(o.argmin)
    samples = net(box.sample(20000, np.random.default_rng(1)))
    for o in result.outputs:  # a sampled value never beats a proved optimum
        assert samples[:, o.index].max() <= o.max + 1e-9
        assert samples[:, o.index].min() >= o.min - 1e-9


@pytest.mark.parametrize("split", [True, False], ids=["split", "milp"])
@pytest.mark.parametrize("name,net,box", NETS, ids=[n for n, _, _ in NETS])
def test_fires_equals_oracle(name, net, box, split):
    for layer, width in enumerate(net.widths):
        for neuron in range(width):
            result = fires(net, box, layer, neuron, split_inputs=split)
            truth, _ = oracle.exact_max(net, box.lower, box.upper, value_form(net, f"z{layer}", neuron))
            assert result.maximum == pytest.approx(truth, abs=1e-6)
            assert result.status == ("fires" if truth > 1e-9 else "never")
            z = net.forward(result.witness).pre_activations[layer][neuron]
            assert z == pytest.approx(result.maximum, abs=1e-12)


def test_toy_features():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    result = fires(net, box, 1, 0)
    assert result.status == "fires" and result.witness is not None
    assert net.forward(result.witness).pre_activations[1][0] > 0


@pytest.mark.parametrize("split", [True, False], ids=["split", "milp"])
@pytest.mark.parametrize("name,net,box", NETS, ids=[n for n, _, _ in NETS])
def test_reach_equals_oracle(name, net, box, split):
    mins, maxs = oracle.exact_output_range(net, box.lower, box.upper)
    mid = 0.5 * (mins[0] + maxs[0])
    cases = [
        [f"y[0] >= {maxs[0] - 1e-3}"],
        [f"y[0] >= {maxs[0] + 1e-3}"],
        [f"y[0] > {maxs[0]}"],
        [f"y[0] >= {mid}", f"y[{net.output_dim - 1}] <= {mid}"],
        ["h0[0] > 0.1", f"y[0] <= {mid}"],
        [f"x[0] + y[0] >= {maxs[0]}"],
    ]
    for texts in cases:
        conditions = parse_conditions(net, texts)
        truth = oracle.reachable(net, box.lower, box.upper, conditions)
        result = reach(net, box, conditions, samples=0, split_inputs=split)
        assert result.status == ("sat" if truth else "unsat"), texts
        if truth:
            for c in conditions:  # the witness satisfies every condition, re-checked here
                s = c.slack(net, result.witness)[0]
                assert (s > 0) if c.strict else (s >= -1e-9), (texts, c.text, s)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), residual=st.booleans(), output_relu=st.booleans())
@example(seed=7179, residual=True, output_relu=True)  # HiGHS 1.16's branch and cut proved a max 2e-4 too low
def test_random_nets_max_equals_oracle(seed, residual, output_relu):
    rng = np.random.default_rng(seed)
    if residual:
        net = random_residual(rng, 2, 3, 2, 1, output_relu=output_relu)
    else:
        net = random_mlp(rng, [2, 4, 3, 1], output_relu=output_relu)
    box = Box(-rng.uniform(0.5, 2, 2), rng.uniform(0.5, 2, 2))
    mins, maxs = oracle.exact_output_range(net, box.lower, box.upper)
    result = output_range(net, box).outputs[0]
    assert result.max == pytest.approx(maxs[0], abs=1e-6)
    assert result.min == pytest.approx(mins[0], abs=1e-6)


def test_time_limit_gives_unknown_not_a_guess():
    rng = np.random.default_rng(3)
    net = random_mlp(rng, [10, 60, 60, 60, 1])
    box = Box(np.full(10, -1.0), np.full(10, 1.0))
    result = output_range(net, box, time_limit=0.05).outputs[0]
    assert result.status == "unknown"
    assert result.max is None and result.min is None
    r = fires(net, box, 2, 0, time_limit=0.02)
    assert r.status in ("fires", "unknown")
    if r.status == "unknown":
        assert r.maximum is None


def test_at_a_limit_the_found_points_and_proved_bounds_bracket_the_truth():
    """At a time limit `range` and `fires` still say what they found and proved: each found value is
    the network's at the point given, it does not pass the proved bound, dense samples never pass
    the proved bounds either, and the shared limit leaves every side of every output some time."""
    rng = np.random.default_rng(3)
    net = random_mlp(rng, [10, 60, 60, 60, 1])
    box = Box(np.full(10, -1.0), np.full(10, 1.0))
    samples = box.sample(20000, np.random.default_rng(0))
    trace = net.forward(samples)
    for o in output_range(net, box, time_limit=2.0).outputs:
        assert o.max_found is not None and o.min_found is not None  # the first side did not take it all
        assert o.max_bound is not None and o.min_bound is not None
        assert net(o.argmax)[o.index] == pytest.approx(o.max_found, abs=1e-9)
        assert net(o.argmin)[o.index] == pytest.approx(o.min_found, abs=1e-9)
        assert box.contains(o.argmax) and box.contains(o.argmin)
        assert o.min_bound - 1e-9 <= o.min_found <= o.max_found <= o.max_bound + 1e-9
        assert trace.output[:, o.index].max() <= o.max_bound + 1e-9
        assert trace.output[:, o.index].min() >= o.min_bound - 1e-9
        if o.max is not None:
            assert o.max == o.max_found
    r = fires(net, box, 2, 0, time_limit=1.0)
    assert r.found is not None and r.found <= r.upper_bound + 1e-9
    assert trace.pre_activations[2][:, 0].max() <= r.upper_bound + 1e-9
    if r.witness is not None:
        assert net.forward(r.witness[None]).pre_activations[2][0, 0] == pytest.approx(r.found, abs=1e-9)


def test_affine_networks_with_many_inputs_against_the_corner_maximum():
    """No ReLU below the question and more inputs than the search splits (its neurons are split, and
    there are none): a first layer's neuron, or a network that is one affine map. The exact maximum
    of ``w . x + b`` over a box is at the corner picked by the signs of ``w``."""
    from milp.core.network import Network
    from milp.io.vnnlib import Disjunct, VnnlibProperty
    from milp.search.verify import verify

    rng = np.random.default_rng(0)
    dim = 12
    weight, bias = rng.standard_normal((3, dim)), rng.standard_normal(3)
    box = Box(np.full(dim, -1.0), np.full(dim, 2.0))
    top = bias + np.maximum(-weight, 2.0 * weight).sum(axis=1)
    bottom = bias + np.minimum(-weight, 2.0 * weight).sum(axis=1)
    affine = Network.mlp([(weight, bias)])
    for o in output_range(affine, box).outputs:
        assert o.status == "exact"
        assert o.max == pytest.approx(top[o.index], abs=1e-9) and o.min == pytest.approx(bottom[o.index], abs=1e-9)
    net = Network.mlp([(weight, bias), (rng.standard_normal((2, 3)), rng.standard_normal(2))])
    for k in range(3):
        assert fires(net, box, 0, k).maximum == pytest.approx(top[k], abs=1e-9)
    assert reach(affine, box, [f"y[0] >= {top[0] + 0.01}"]).status == "unsat"
    assert reach(affine, box, [f"y[0] >= {top[0] - 0.01}"]).status == "sat"
    for margin, verdict in ((0.01, "unsat"), (-0.01, "sat")):  # unsafe: y0 >= top0 + margin
        prop = VnnlibProperty(dim, 3, (Disjunct(box, np.array([[-1.0, 0.0, 0.0]]), np.array([-(top[0] + margin)])),))
        assert verify(affine, prop, timeout=60).result == verdict


def test_bad_queries_raise_clear_errors():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    with pytest.raises(QueryError, match="no ReLU layer 5"):
        fires(net, box, 5, 0)
    with pytest.raises(QueryError, match="neuron 9"):
        fires(net, box, 0, 9)
    with pytest.raises(QueryError, match="no output 4"):
        output_range(net, box, [4])
    with pytest.raises(ValueError, match="3 intervals"):
        output_range(net, parse_box("-1:1,-1:1,-1:1"))


# ------------------------------------------------------------------ a trained network
@pytest.mark.skipif(not (ACASXU / "onnx").is_dir(), reason=ACASXU_SKIP)
def test_acasxu_output_range_over_a_property_box_is_the_whole_box_milps():
    """Trained weights, where the query search splits inputs by trial and tunes each sub-box's
    slopes: the exact range of ACAS Xu 1_1's outputs over property 3's box, shrunk 4x around its
    centre, is the whole-box big-M MILP's (HiGHS, symbolic bounds); every reported point gives its
    value, and 200,000 samples of the box never pass the range."""
    network = load_onnx(ACASXU / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx")
    whole = read_vnnlib(ACASXU / "vnnlib" / "prop_3.vnnlib", 5, 5).disjuncts[0].box
    centre, radius = (whole.lower + whole.upper) / 2, (whole.upper - whole.lower) / 8
    box = Box(centre - radius, centre + radius)
    result = output_range(network, box, time_limit=60)
    samples = network(box.sample(200_000, np.random.default_rng(3)))
    for o in result.outputs:
        assert o.status == "exact"
        for sign, value, point in ((1.0, o.max, o.argmax), (-1.0, o.min, o.argmin)):
            form = value_form(network, "y", o.index)
            form = form if sign > 0 else -form
            plain = milp_maximum(network, box, symbolic_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
            assert plain.status == "optimal" and sign * value == pytest.approx(plain.value, rel=1e-6, abs=1e-7)
            assert network(point)[o.index] == pytest.approx(value, abs=1e-9)
        assert samples[:, o.index].max() <= o.max + 1e-9 and samples[:, o.index].min() >= o.min - 1e-9
