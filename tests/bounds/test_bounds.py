"""Pre-activation bounds: soundness against sampling, exactness where the truth is analytic,
and symbolic bounds never looser (and usually tighter) than interval bounds; a batch of boxes
grouped by unstable count gets the bounds of one padded batch."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milp.bounds import propagate
from milp.bounds.propagate import (BatchBounder, Bounds, BoundsError, bound_affine, interval_bounds, output_bounds,
                                   padding_groups, symbolic_bounds)
from milp.core.box import Box, BoxError
from milp.core.network import Affine, Network

METHODS = {"interval": interval_bounds, "symbolic": symbolic_bounds}


# ------------------------------------------------------------------ helpers
def random_mlp(rng: np.random.Generator, dims, output_relu: bool = False, bias: float = 0.1) -> Network:
    """Weights ~ N(0, 1/fan_in), biases ~ N(0, bias^2); ``dims`` = input, hidden..., output."""
    layers = [(rng.normal(0.0, 1.0 / np.sqrt(a), (b, a)), rng.normal(0.0, bias, b)) for a, b in zip(dims, dims[1:])]
    return Network.mlp(layers, output_relu=output_relu)


def random_residual(rng: np.random.Generator, input_dim: int, width: int, layers: int, output_dim: int) -> Network:
    """ReLU layer l reads h_{l-1} and, as a skip connection, h_{l-2} (or x); the output reads the last h and x."""
    def weight(rows, cols):
        return rng.normal(0.0, 1.0 / np.sqrt(cols), (rows, cols))

    dims = [input_dim] + [width] * layers
    relu_layers = []
    for l in range(layers):
        terms = [(l, weight(width, dims[l]))]
        if l >= 1:
            terms.append((l - 1, weight(width, dims[l - 1])))
        relu_layers.append(Affine(tuple(terms), rng.normal(0.0, 0.1, width)))
    output = Affine(((layers, weight(output_dim, width)), (0, weight(output_dim, input_dim))), rng.normal(0.0, 0.1, output_dim))
    return Network(input_dim, tuple(relu_layers), output)


def sample_points(box: Box, rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """Uniform points plus every corner of the box (when there are few) and its centre."""
    points = [box.sample(n, rng), box.center[None, :]]
    if box.dim <= 8:
        corners = np.array(list(itertools.product(*zip(box.lower, box.upper))))
        points.append(corners)
    return np.vstack(points)


def assert_contains(bounds: Bounds, network: Network, box: Box, points: np.ndarray) -> None:
    trace = network.forward(points)
    assert bounds.layer_count == len(network.widths)
    for layer, z in enumerate(trace.pre_activations):
        assert np.all(z >= bounds.lower[layer]), f"{bounds.method}: z{layer} below its lower bound"
        assert np.all(z <= bounds.upper[layer]), f"{bounds.method}: z{layer} above its upper bound"
    lo, hi = output_bounds(network, box, bounds)
    assert np.all(trace.output >= lo) and np.all(trace.output <= hi), f"{bounds.method}: output outside its bounds"


def network_cases():
    rng = np.random.default_rng(7)
    return {
        "mlp": random_mlp(rng, [3, 12, 12, 12, 2]),
        "residual": random_residual(rng, 3, 10, 4, 2),
        "output_relu": random_mlp(rng, [3, 10, 10, 4], output_relu=True),
    }


BOXES = {
    "unit": Box(-np.ones(3), np.ones(3)),
    "small_offset": Box(np.array([0.3, -0.2, 0.5]), np.array([0.4, -0.1, 0.6])),
    "wide_asymmetric": Box(np.array([-5.0, 0.0, 1.0]), np.array([2.0, 10.0, 3.0])),
    "degenerate_input": Box(np.array([-1.0, 0.25, -1.0]), np.array([1.0, 0.25, 1.0])),
}


# ---------------------------------------------------------------- soundness
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("box_name", sorted(BOXES))
@pytest.mark.parametrize("net_name", ["mlp", "residual", "output_relu"])
def test_sampled_values_lie_within_bounds(net_name, box_name, method):
    network = network_cases()[net_name]
    box = BOXES[box_name]
    bounds = METHODS[method](network, box).validate()
    assert_contains(bounds, network, box, sample_points(box, np.random.default_rng(1)))


def test_bound_affine_over_several_sources_is_sound():
    rng = np.random.default_rng(3)
    network = random_residual(rng, 4, 8, 3, 2)
    box = Box(-np.ones(4), np.ones(4))
    form = Affine(((0, rng.normal(size=(5, 4))), (1, rng.normal(size=(5, 8))), (3, rng.normal(size=(5, 8)))), rng.normal(size=5))
    points = sample_points(box, rng)
    trace = network.forward(points)
    values = form.apply([trace.inputs, *trace.activations])
    for method, compute in METHODS.items():
        lo, hi = bound_affine(network, compute(network, box), box, form)
        assert lo.shape == hi.shape == (5,)
        assert np.all(values >= lo) and np.all(values <= hi), method


def test_bound_affine_with_bounds_of_the_first_layers_only():
    rng = np.random.default_rng(4)
    network = random_mlp(rng, [3, 6, 6, 6, 1])
    box = Box(-np.ones(3), np.ones(3))
    full = symbolic_bounds(network, box)
    first_two = Bounds(full.lower[:2], full.upper[:2], full.method)
    # z2 reads h1: two layers of bounds suffice, and give the symbolic bounds of z2 (the same
    # back-substitution on a batch of another shape: the last bit may round differently)
    lo, hi = bound_affine(network, first_two, box, network.relu_layers[2])
    np.testing.assert_allclose(np.maximum(lo, interval_bounds(network, box).lower[2]), full.lower[2], rtol=1e-14, atol=0)
    with pytest.raises(BoundsError, match="cover only 2 ReLU layers"):
        bound_affine(network, first_two, box, network.output)


# --------------------------------------------------------------- exactness
@pytest.mark.parametrize("method", sorted(METHODS))
def test_first_layer_bounds_are_the_exact_extremes(method):
    """z0 = W x + b is linear: its extremes over a box sit at the corner picked by the signs of W."""
    rng = np.random.default_rng(5)
    network = random_mlp(rng, [4, 9, 2])
    box = Box(np.array([-1.0, 0.0, 2.0, -0.5]), np.array([0.5, 3.0, 2.5, -0.5]))
    bounds = METHODS[method](network, box)
    w = network.relu_layers[0].weight(0)
    argmax = np.where(w > 0, box.upper, box.lower)  # one corner per neuron, shape (9, 4)
    argmin = np.where(w > 0, box.lower, box.upper)
    attained_max = np.array([network.forward(argmax[k]).pre_activations[0][k] for k in range(9)])
    attained_min = np.array([network.forward(argmin[k]).pre_activations[0][k] for k in range(9)])
    assert np.all(bounds.upper[0] >= attained_max) and np.all(bounds.lower[0] <= attained_min)
    np.testing.assert_allclose(bounds.upper[0], attained_max, rtol=0, atol=1e-7)
    np.testing.assert_allclose(bounds.lower[0], attained_min, rtol=0, atol=1e-7)


def test_output_bounds_of_a_network_without_relu_are_exact():
    rng = np.random.default_rng(6)
    w, b = rng.normal(size=(3, 2)), rng.normal(size=3)
    network = Network(2, (), Affine(((0, w),), b))
    box = Box(np.array([-1.0, 2.0]), np.array([3.0, 2.5]))
    lo, hi = output_bounds(network, box, interval_bounds(network, box))
    corners = np.array(list(itertools.product(*zip(box.lower, box.upper))))
    values = network(corners)
    np.testing.assert_allclose(lo, values.min(axis=0), atol=1e-7)
    np.testing.assert_allclose(hi, values.max(axis=0), atol=1e-7)


def test_symbolic_bounds_follow_a_cancellation_that_intervals_miss():
    """x in [-1, 2]; z0 = (x, x); z1 = h0[0] - h0[1], which is 0 everywhere.

    Interval: h0 in [0, 2] each, so z1 in [-2, 2]. Symbolic: u = 2 > -l = 1, so the lower
    line is h >= z; the upper line is h <= 2/3 (z + 1). Then z1 <= 2/3 (x + 1) - x, largest
    at x = -1: 1; and by symmetry z1 >= -1.
    """
    network = Network(1, (Affine(((0, np.ones((2, 1))),), np.zeros(2)), Affine(((1, np.array([[1.0, -1.0]])),), np.zeros(1))), Affine(((2, np.ones((1, 1))),), np.zeros(1)))
    box = Box(np.array([-1.0]), np.array([2.0]))
    interval, symbolic = interval_bounds(network, box), symbolic_bounds(network, box)
    np.testing.assert_allclose([interval.lower[1][0], interval.upper[1][0]], [-2.0, 2.0], atol=1e-7)
    np.testing.assert_allclose([symbolic.lower[1][0], symbolic.upper[1][0]], [-1.0, 1.0], atol=1e-7)


# ----------------------------------------------------- symbolic vs interval
@pytest.mark.parametrize("net_name", ["mlp", "residual", "output_relu"])
@pytest.mark.parametrize("box_name", sorted(BOXES))
def test_symbolic_never_looser_than_interval(net_name, box_name):
    network, box = network_cases()[net_name], BOXES[box_name]
    interval, symbolic = interval_bounds(network, box), symbolic_bounds(network, box)
    for layer in range(len(network.widths)):
        assert np.all(symbolic.lower[layer] >= interval.lower[layer])
        assert np.all(symbolic.upper[layer] <= interval.upper[layer])
    assert symbolic.unstable_count <= interval.unstable_count


def total_width(bounds: Bounds, first_layer: int = 0) -> float:
    return sum(float(np.sum(u - l)) for l, u in zip(bounds.lower[first_layer:], bounds.upper[first_layer:]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("half_width", [1.0, 0.05])
def test_symbolic_strictly_tighter_on_acas_like_random_nets(seed, half_width):
    """5-50x6-5, weights ~ N(0, 1/fan_in). Past layer 0 (exact for both) symbolic bounds are
    narrower; on the small box they also leave fewer neurons unstable. On [-1, 1]^5 both
    leave every neuron unstable (sampling shows ~90% of them truly are), so only widths
    are compared there."""
    rng = np.random.default_rng(seed)
    network = random_mlp(rng, [5] + [50] * 6 + [5])
    box = Box(np.full(5, -half_width), np.full(5, half_width))
    interval, symbolic = interval_bounds(network, box), symbolic_bounds(network, box)
    assert total_width(symbolic, first_layer=1) < 0.5 * total_width(interval, first_layer=1)
    if half_width < 1.0:
        assert symbolic.unstable_count < interval.unstable_count


def test_symbolic_bounds_of_a_mnist_sized_net_take_well_under_a_second():
    rng = np.random.default_rng(8)
    network = random_mlp(rng, [784, 100, 100, 10])
    box = Box(np.full(784, 0.3), np.full(784, 0.4))
    started = time.perf_counter()
    bounds = symbolic_bounds(network, box)
    assert time.perf_counter() - started < 1.0
    assert_contains(bounds, network, box, box.sample(500, rng))


# ------------------------------------------------------------- randomised
@st.composite
def small_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    input_dim = draw(st.integers(1, 4))
    depth = draw(st.integers(1, 3))
    width = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["mlp", "residual", "output_relu"]))
    if kind == "residual":
        network = random_residual(rng, input_dim, width, depth, 2)
    else:
        network = random_mlp(rng, [input_dim] + [width] * depth + [2], output_relu=kind == "output_relu", bias=0.5)
    ends = np.sort(np.array([[draw(st.floats(-3, 3)), draw(st.floats(-3, 3))] for _ in range(input_dim)]), axis=1)
    return network, Box(ends[:, 0], ends[:, 1]), rng


@settings(max_examples=50, deadline=None)
@given(small_cases())
def test_randomised_soundness(case):
    network, box, rng = case
    interval, symbolic = interval_bounds(network, box).validate(), symbolic_bounds(network, box).validate()
    points = sample_points(box, rng, n=500)
    assert_contains(interval, network, box, points)
    assert_contains(symbolic, network, box, points)
    for layer in range(len(network.widths)):
        assert np.all(symbolic.lower[layer] >= interval.lower[layer]) and np.all(symbolic.upper[layer] <= interval.upper[layer])


# ------------------------------------------------------- the Bounds value
def test_masks_counts_and_activation_bounds():
    bounds = Bounds((np.array([-1.0, 0.0, -2.0, 1.0]), np.array([-3.0])), (np.array([1.0, 2.0, 0.0, 4.0]), np.array([-1.0])), "hand")
    np.testing.assert_array_equal(bounds.stable_active(0), [False, True, False, True])
    np.testing.assert_array_equal(bounds.stable_inactive(0), [False, False, True, False])
    np.testing.assert_array_equal(bounds.unstable(0), [True, False, False, False])
    assert bounds.unstable_counts == (1, 0) and bounds.unstable_count == 1
    lo, hi = bounds.activation_bounds(0)
    np.testing.assert_array_equal(lo, [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(hi, [1.0, 2.0, 0.0, 4.0])


def test_intersect_takes_the_tighter_side_of_each():
    a = Bounds((np.array([-1.0, -5.0]),), (np.array([3.0, 1.0]),), "a")
    b = Bounds((np.array([-2.0, -4.0]),), (np.array([2.0, 6.0]),), "b")
    both = a.intersect(b)
    np.testing.assert_array_equal(both.lower[0], [-1.0, -4.0])
    np.testing.assert_array_equal(both.upper[0], [2.0, 1.0])
    assert both.method == "a+b"
    with pytest.raises(BoundsError, match="widths"):
        a.intersect(Bounds((np.zeros(3),), (np.ones(3),), "c"))


def test_bounds_copy_their_arrays_and_validate():
    lower = np.array([0.0, -1.0])
    bounds = Bounds((lower,), (np.array([1.0, 1.0]),), "hand")
    lower[0] = 5.0
    assert bounds.lower[0][0] == 0.0 and not bounds.lower[0].flags.writeable
    with pytest.raises(BoundsError, match=r"z0\[1\] are inverted"):
        Bounds((np.array([0.0, 2.0]),), (np.array([1.0, 1.0]),), "hand").validate()
    with pytest.raises(BoundsError, match="not finite"):
        Bounds((np.array([-np.inf]),), (np.array([1.0]),), "hand").validate()
    with pytest.raises(BoundsError, match="2 lower and 1 upper"):
        Bounds((np.zeros(2),), (np.zeros(1),), "hand")


def test_inputs_that_do_not_fit_are_rejected():
    rng = np.random.default_rng(9)
    network = random_mlp(rng, [3, 4, 2])
    with pytest.raises(BoxError, match="3 inputs"):
        symbolic_bounds(network, Box(np.zeros(2), np.ones(2)))
    box = Box(np.zeros(3), np.ones(3))
    with pytest.raises(BoundsError, match="base bounds"):
        symbolic_bounds(network, box, base=Bounds((np.zeros(5),), (np.ones(5),), "wrong"))
    with pytest.raises(BoundsError, match="columns on h0"):
        bound_affine(network, symbolic_bounds(network, box), box, Affine(((1, np.ones((1, 3))),), np.zeros(1)))


# ------------------------------------------------------------------ a batch in groups
def test_padding_groups_hold_each_box_that_needs_rows_once_in_ascending_groups():
    rng = np.random.default_rng(0)
    for n in (0, 5, 40, 500):
        counts = rng.integers(0, 12, n) * rng.integers(0, 2, n)
        groups = padding_groups(counts, least=16)
        held = np.concatenate(groups) if groups else np.zeros(0, dtype=int)
        assert sorted(held.tolist()) == np.flatnonzero(counts > 0).tolist()
        for group, after in zip(groups, groups[1:]):
            assert counts[group].max() <= counts[after].min()  # ascending
            assert group.size >= 16 or counts[group].min() == counts[group].max()
        # a group of several counts only when the smallest count alone had too few boxes
        for group in groups:
            smallest = counts[group].min()
            if counts[group].max() > smallest:
                assert np.count_nonzero(counts[group] == smallest) < 16


@pytest.mark.parametrize("kind", ["mlp", "residual"])
def test_a_batch_in_slices_gets_the_bounds_of_one_slice_and_checks_the_clock_between_slices(kind):
    """A large batch is back-substituted in slices of about ``slice_rows`` rows: each box's bounds are
    those of the batch in one slice, and ``check`` (the deadline) is called before every slice, so a
    long batch stops at the deadline instead of after its largest product."""
    rng = np.random.default_rng(5)
    network = random_mlp(rng, [3, 24, 24, 24, 2]) if kind == "mlp" else random_residual(rng, 3, 24, 3, 2)
    n = 400
    centre = rng.uniform(-1, 1, (n, 3))
    radius = 10.0 ** rng.uniform(-2, 0, (n, 1)) * rng.uniform(0.5, 1.0, (n, 3))
    lo, hi = centre - radius, centre + radius
    unknown = np.full((n, network.neuron_count), np.inf)
    calls = {}
    results = {}
    for rows in (1 << 40, 100, 7):
        calls[rows] = 0

        def check(rows=rows):
            calls[rows] += 1

        results[rows] = BatchBounder(network, check, slice_rows=rows).neuron_bounds(lo, hi, -unknown, unknown)
    whole = results[1 << 40]
    for rows in (100, 7):
        for mine, theirs in zip([*results[rows][0], *results[rows][1]], [*whole[0], *whole[1]]):
            assert np.allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    # 2 x 24 rows a box at most: slices of 100 rows hold 2 boxes or more, slices of 7 rows one box
    assert calls[1 << 40] < calls[100] < calls[7]
    assert calls[7] >= n  # at least one slice per box on a layer where every box needs rows


@pytest.mark.parametrize("kind", ["mlp", "residual"])
def test_boxes_in_groups_get_the_bounds_of_one_padded_batch_and_hold_every_sample(kind, monkeypatch):
    """Sub-boxes of many sizes (so their counts of unstable neurons differ): the grouped back-substitution
    gives every box the bounds the single padded batch gives it, and they hold sampled pre-activations."""
    rng = np.random.default_rng(3)
    network = random_mlp(rng, [3, 24, 24, 24, 24, 2]) if kind == "mlp" else random_residual(rng, 3, 24, 4, 2)
    n = 300
    centre = rng.uniform(-1, 1, (n, 3))
    radius = 10.0 ** rng.uniform(-3, 0, (n, 1)) * rng.uniform(0.5, 1.0, (n, 3))
    lo, hi = centre - radius, centre + radius
    unknown = np.full((n, network.neuron_count), np.inf)
    bounder = BatchBounder(network)
    grouped = bounder.neuron_bounds(lo, hi, -unknown, unknown)
    groups_seen = []
    original = propagate.padding_groups

    def one_group(counts, least=16):
        groups_seen.append(len(original(counts, least)))
        positive = np.flatnonzero(counts > 0)
        return [positive] if positive.size else []

    monkeypatch.setattr(propagate, "padding_groups", one_group)
    padded = bounder.neuron_bounds(lo, hi, -unknown, unknown)
    assert max(groups_seen) >= 3  # the batch did split into groups
    # the unstable neurons' bounds, hence the relaxations, are the same; the single batch's padding
    # rows tighten some stable neurons' bounds as well, which changes nothing downstream
    for (gl, gu, pl, pu) in zip(grouped[0], grouped[1], padded[0], padded[1]):
        unstable = (gl < 0) & (gu > 0)
        assert np.array_equal(unstable, (pl < 0) & (pu > 0))
        assert np.allclose(gl[unstable], pl[unstable], rtol=1e-12, atol=1e-12)
        assert np.allclose(gu[unstable], pu[unstable], rtol=1e-12, atol=1e-12)
    for g, p in zip(grouped[2], padded[2]):
        assert np.array_equal(g[3], p[3]) and all(np.allclose(a, b, rtol=1e-12, atol=1e-12) for a, b in zip(g[:3], p[:3]))
    lower, upper = np.concatenate(grouped[0], axis=1), np.concatenate(grouped[1], axis=1)
    for i in rng.choice(n, 20, replace=False):
        x = lo[i] + rng.random((4000, 3)) * (hi[i] - lo[i])
        z = np.concatenate(network.forward(x).pre_activations, axis=1)
        assert np.all(z >= lower[i] - 1e-12) and np.all(z <= upper[i] + 1e-12)


def test_a_nan_back_substitution_never_tightens_a_bound(monkeypatch):
    """When a back-substitution comes out NaN (an overflow on the way), the bounds stay the interval
    ones: a NaN bound would make the neuron look strictly inactive to the relaxation, and every
    sampled value must still lie within them."""
    rng = np.random.default_rng(3)
    net = Network.mlp([(rng.standard_normal((6, 2)), rng.standard_normal(6)), (rng.standard_normal((6, 6)), rng.standard_normal(6)),
                       (rng.standard_normal((1, 6)), rng.standard_normal(1))])
    lo, hi = np.full((1, 2), -1.0), np.full((1, 2), 1.0)
    unknown = np.full((1, net.neuron_count), np.inf)
    bounder = BatchBounder(net)
    interval = [np.concatenate(b, axis=1) for b in bounder.neuron_bounds(lo, hi, -unknown, unknown, back_substitute=False)[:2]]
    real = BatchBounder._back_substitute

    def nan_values(self, *args, **kwargs):
        value, on_x, magnitude = real(self, *args, **kwargs)
        return np.full_like(value, np.nan), on_x, magnitude

    monkeypatch.setattr(BatchBounder, "_back_substitute", nan_values)
    for bounds in (bounder.neuron_bounds(lo, hi, -unknown, unknown), bounder.optimised_neuron_bounds(lo, hi, -unknown, unknown, 2)):
        lower, upper = (np.concatenate(b, axis=1) for b in bounds[:2])
        assert not np.isnan(lower).any() and not np.isnan(upper).any()
        assert np.array_equal(lower, interval[0]) and np.array_equal(upper, interval[1])
        low, high = bounder.form_bounds(net.output, lo, hi, bounds[0], bounds[1])
        assert np.isfinite(low).all() and np.isfinite(high).all()
    trace = net.forward(rng.uniform(-1, 1, (5000, 2)))
    z = np.concatenate(trace.pre_activations, axis=1)
    assert np.all(z >= interval[0]) and np.all(z <= interval[1])
