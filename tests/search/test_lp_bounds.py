"""LP-tightened pre-activation bounds (``--bounds lp``) against independent truth.

A bound that is too tight cuts real points out of every MILP built on it, so a wrong LP
bound silently turns into a wrong ``never`` or ``unsat``. The bounds are held to:

* dense sampling: every pre-activation the float64 forward pass produces lies inside them;
* the brute-force oracle (:mod:`oracle`, no engine code): they contain the exact minimum
  and maximum of every pre-activation over the box;
* symbolic bounds: LP tightening never loosens them (and does tighten some);
* end to end: ``fires`` and ``reach`` run with ``bounds="lp"`` give the oracle's answers.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from milp import Box, parse_conditions
from milp.bounds.propagate import Bounds, interval_bounds, symbolic_bounds
from milp.core.conditions import value_form
from milp.core.network import Affine, Network
from milp.search.queries import fires, reach
from milp.search.tighten import lp_tightened_bounds, pre_activation_bounds
from nets import random_mlp, random_residual

# Only float64 rounding is forgiven: 1e-9 relative to the bound (absolute below magnitude 1).
SLACK = 1e-9


def slack(bound) -> np.ndarray:
    return SLACK * np.maximum(1.0, np.abs(bound))


# ------------------------------------------------------------------ helpers
def make_net(kind: str, rng: np.random.Generator, input_dim: int, width: int, depth: int, outputs: int = 2) -> Network:
    """``mlp`` / ``mlp_relu`` (depth hidden layers), ``residual`` / ``residual_relu`` (depth blocks)."""
    if kind.startswith("mlp"):
        return random_mlp(rng, [input_dim] + [width] * depth + [outputs], output_relu=kind.endswith("relu"))
    return random_residual(rng, input_dim, width, depth, outputs, output_relu=kind.endswith("relu"))


def make_box(rng: np.random.Generator, input_dim: int, fixed: int | None = None) -> Box:
    """A random asymmetric box; input ``fixed`` (if any) gets ``lower == upper``."""
    lower = -rng.uniform(0.2, 2.0, input_dim)
    upper = rng.uniform(0.2, 2.0, input_dim)
    if fixed is not None:
        lower[fixed] = upper[fixed] = rng.uniform(-1.0, 1.0)
    return Box(lower, upper)


def sample_points(box: Box, rng: np.random.Generator, n: int = 6000) -> np.ndarray:
    """Uniform points, points on the faces/edges (each coordinate snapped to an end with
    probability 1/2), every corner and the centre."""
    uniform = box.sample(n, rng)
    faces = box.sample(n, rng)
    snap = rng.random(faces.shape) < 0.5
    ends = np.where(rng.random(faces.shape) < 0.5, box.lower, box.upper)
    faces[snap] = ends[snap]
    corners = np.array(list(itertools.product(*zip(box.lower, box.upper))))
    return np.vstack([uniform, faces, corners, box.center[None, :]])


def lp_bounds(network: Network, box: Box) -> Bounds:
    bounds = pre_activation_bounds(network, box, "lp").validate()
    assert bounds.widths == network.widths
    assert "lp" in bounds.method
    return bounds


def assert_samples_inside(bounds: Bounds, network: Network, points: np.ndarray, what: str) -> None:
    """Every sampled ``z`` of every neuron lies in ``[lower, upper]`` (up to ``SLACK``)."""
    trace = network.forward(points)
    for layer, z in enumerate(trace.pre_activations):
        lo, hi = bounds.lower[layer], bounds.upper[layer]
        for side, bad in (("lower", z < lo - slack(lo)), ("upper", z > hi + slack(hi))):
            if np.any(bad):
                row, k = (int(i) for i in np.argwhere(bad)[0])
                bound = lo[k] if side == "lower" else hi[k]
                pytest.fail(
                    f"{what}: {bounds.method} {side} bound of z{layer}[{k}] is {bound:.17g}, but "
                    f"x = {points[row].tolist()} gives z = {z[row, k]:.17g}"
                )


def assert_tighter_than(lp: Bounds, other: Bounds, what: str) -> None:
    """LP tightening starts from ``other`` and may only move bounds inward."""
    for layer in range(lp.layer_count):
        assert np.all(lp.lower[layer] >= other.lower[layer] - SLACK), f"{what}: LP lower of z{layer} below {other.method}"
        assert np.all(lp.upper[layer] <= other.upper[layer] + SLACK), f"{what}: LP upper of z{layer} above {other.method}"


def truncated(network: Network, layer: int) -> Network:
    """The ReLU layers below ``layer``; z_layer only depends on these (fewer oracle regions)."""
    return Network(network.input_dim, network.relu_layers[:layer], network.relu_layers[layer])


def negated(form: Affine) -> Affine:
    return -form


def tightened_count(lp: Bounds, symbolic: Bounds) -> int:
    return sum(
        int(np.sum(lp.lower[l] > symbolic.lower[l] + 1e-6) + np.sum(lp.upper[l] < symbolic.upper[l] - 1e-6))
        for l in range(lp.layer_count)
    )


# ------------------------------------------------------------ 1. dense sampling
KINDS = {"mlp": (8, 3), "mlp_relu": (6, 3), "residual": (6, 3), "residual_relu": (5, 2)}  # width, depth
DENSE = [(kind, seed, fixed) for kind in KINDS for seed in range(3) for fixed in (False, True)]


def dense_case(kind: str, seed: int, fixed: bool) -> tuple[Network, Box]:
    rng = np.random.default_rng(1000 + seed)
    width, depth = KINDS[kind]
    network = make_net(kind, rng, 3, width, depth)
    return network, make_box(rng, 3, fixed=1 if fixed else None)


@pytest.mark.parametrize("kind,seed,fixed", DENSE, ids=[f"{k}-{s}-{'fixed' if f else 'free'}" for k, s, f in DENSE])
def test_sampled_pre_activations_lie_within_lp_bounds(kind, seed, fixed):
    """Truth: the float64 forward pass at ~12000 uniform, face and corner points of the box.
    No sampled pre-activation of any neuron leaves its LP bounds; the LP bounds are also
    never looser than the symbolic bounds they start from."""
    network, box = dense_case(kind, seed, fixed)
    lp = lp_bounds(network, box)
    assert_samples_inside(lp, network, sample_points(box, np.random.default_rng(seed)), f"{kind} seed {seed}")
    assert_tighter_than(lp, symbolic_bounds(network, box), f"{kind} seed {seed}")


def test_lp_tightening_is_not_a_no_op():
    """Truth: the symbolic bounds. On the dense-sampling nets the LP moves some bounds inward
    by more than 1e-6, so the sampling test above exercises LP bounds, not symbolic ones."""
    tightened = 0
    for kind, seed, fixed in DENSE:
        network, box = dense_case(kind, seed, fixed)
        tightened += tightened_count(lp_bounds(network, box), symbolic_bounds(network, box))
    assert tightened >= 10


def test_lp_tightening_of_interval_bounds_is_sound():
    """Truth: dense sampling. ``lp_tightened_bounds`` from an interval base (not the default
    symbolic one) still contains every sampled pre-activation and never loosens the base."""
    for seed in range(3):
        rng = np.random.default_rng(2000 + seed)
        network = make_net("residual", rng, 3, 6, 3)
        box = make_box(rng, 3)
        base = interval_bounds(network, box)
        lp = lp_tightened_bounds(network, box, base).validate()
        assert_samples_inside(lp, network, sample_points(box, rng), f"interval base, seed {seed}")
        assert_tighter_than(lp, base, f"interval base, seed {seed}")
        assert tightened_count(lp, base) > 0


@st.composite
def random_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(sorted(KINDS)))
    input_dim = draw(st.integers(1, 4))
    width = draw(st.integers(2, 6))
    depth = draw(st.integers(2, 4))
    fixed = draw(st.none() | st.integers(0, input_dim - 1))
    rng = np.random.default_rng(seed)
    network = make_net(kind, rng, input_dim, width, depth)
    return network, make_box(rng, input_dim, fixed), rng


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_cases())
def test_randomised_sampling_within_lp_bounds(case):
    """Truth: the float64 forward pass at dense samples (corners included) of random plain,
    residual and output-ReLU nets, some with a fixed input; plus LP never looser than symbolic."""
    network, box, rng = case
    lp = lp_bounds(network, box)
    assert_samples_inside(lp, network, sample_points(box, rng, n=2000), "random case")
    assert_tighter_than(lp, symbolic_bounds(network, box), "random case")


# ------------------------------------------------------------ 2. brute-force oracle
def tiny_net(kind: str, rng: np.random.Generator, input_dim: int) -> Network:
    """At most 11 ReLU neurons in three layers (LP tightening acts on layers 1 and 2)."""
    if kind.startswith("mlp"):
        return random_mlp(rng, [input_dim, 4, 4, 3, 1], output_relu=kind.endswith("relu"))
    return random_residual(rng, input_dim, 3, 2, 1, output_relu=True)


def assert_contains_exact(network: Network, box: Box, lp: Bounds, symbolic: Bounds, what: str) -> None:
    """Per ReLU layer, the oracle's exact min and max of every pre-activation (its output
    range on the truncated net) lie inside the LP bounds."""
    for layer in range(len(network.widths)):
        mins, maxs = oracle.exact_output_range(truncated(network, layer), box.lower, box.upper)
        lo, hi = lp.lower[layer], lp.upper[layer]
        for k in range(network.widths[layer]):
            assert lo[k] <= mins[k] + slack(lo[k]), f"{what}: LP lower of z{layer}[{k}] is {lo[k]:.17g} > exact min {mins[k]:.17g}"
            assert hi[k] >= maxs[k] - slack(hi[k]), f"{what}: LP upper of z{layer}[{k}] is {hi[k]:.17g} < exact max {maxs[k]:.17g}"
    assert_tighter_than(lp, symbolic, what)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["mlp", "mlp_relu", "residual"]), fixed=st.booleans())
def test_lp_bounds_contain_the_exact_extremes_random(seed, kind, fixed):
    """Truth: the brute-force oracle's exact minimum and maximum of each pre-activation (LPs
    over every activation region). LP lower <= exact min, LP upper >= exact max, and LP
    bounds are inside the symbolic ones."""
    rng = np.random.default_rng(seed)
    input_dim = 3 if fixed else 2
    network = tiny_net(kind, rng, input_dim)
    box = make_box(rng, input_dim, fixed=1 if fixed else None)
    assert_contains_exact(network, box, lp_bounds(network, box), symbolic_bounds(network, box), f"{kind} seed {seed}")


ORACLE_NETS = [("mlp", 1, False), ("mlp", 2, True), ("residual", 3, False), ("residual", 4, True)]


@pytest.mark.parametrize("kind,seed,fixed", ORACLE_NETS, ids=[f"{k}-{s}-{'fixed' if f else 'free'}" for k, s, f in ORACLE_NETS])
def test_lp_bounds_contain_each_exact_extreme_and_its_argmax(kind, seed, fixed):
    """Truth: ``oracle.exact_max`` of ``value_form(z<L>, k)`` and of its negation (exact
    minimum = -max of -z), and the forward pass at the oracle's argmax/argmin, which is a
    real input attaining the extreme: it must lie inside the LP bounds."""
    rng = np.random.default_rng(seed)
    input_dim = 3 if fixed else 2
    network = tiny_net(kind, rng, input_dim)
    box = make_box(rng, input_dim, fixed=1 if fixed else None)
    lp = lp_bounds(network, box)
    checked = 0
    for layer in range(1, len(network.widths)):
        sub = truncated(network, layer)
        for k in range(network.widths[layer]):
            form = value_form(network, f"z{layer}", k)
            top, argmax = oracle.exact_max(sub, box.lower, box.upper, form)
            low, argmin = oracle.exact_max(sub, box.lower, box.upper, negated(form))
            low = -low
            lo, hi = lp.lower[layer][k], lp.upper[layer][k]
            assert hi >= top - slack(hi), f"LP upper of z{layer}[{k}] is {hi:.17g} < exact max {top:.17g} at {argmax}"
            assert lo <= low + slack(lo), f"LP lower of z{layer}[{k}] is {lo:.17g} > exact min {low:.17g} at {argmin}"
            # the oracle's extremes are attained by real inputs in the box
            z = network.forward(np.vstack([argmax, argmin])).pre_activations[layer][:, k]
            assert z[0] == pytest.approx(top, abs=1e-6) and z[1] == pytest.approx(low, abs=1e-6)
            assert box.contains(argmax, 1e-9) and box.contains(argmin, 1e-9)
            assert lo - slack(lo) <= z.min() and z.max() <= hi + slack(hi)
            checked += 1
    assert checked == sum(network.widths[1:])


# ------------------------------------------------------------ 3. end to end
def e2e_nets():
    rng = np.random.default_rng(42)
    yield "mlp", random_mlp(rng, [2, 4, 4, 3, 1]), Box(np.array([-1.0, -1.5]), np.array([1.5, 1.0]))
    yield "mlp-out-relu", random_mlp(rng, [2, 3, 3, 3, 2], output_relu=True), Box(np.full(2, -1.0), np.full(2, 1.0))
    yield "residual", random_residual(rng, 2, 3, 2, 1, output_relu=True), Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    yield "fixed-input", random_mlp(rng, [3, 3, 3, 3, 1]), Box(np.array([-1.0, 0.3, -1.0]), np.array([1.0, 0.3, 1.0]))


E2E = list(e2e_nets())
E2E_IDS = [name for name, _, _ in E2E]


@functools.lru_cache(maxsize=None)
def exact_neuron_maxima(name: str) -> tuple[tuple[float, ...], ...]:
    """``oracle.exact_max`` of every pre-activation of E2E net ``name`` (shared by both split modes)."""
    net, box = next((n, b) for key, n, b in E2E if key == name)
    return tuple(
        tuple(oracle.exact_max(truncated(net, layer), box.lower, box.upper, value_form(net, f"z{layer}", k))[0] for k in range(width))
        for layer, width in enumerate(net.widths)
    )


@functools.lru_cache(maxsize=None)
def reach_cases(name: str) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """Condition sets for E2E net ``name`` with ``oracle.reachable``'s answer for each."""
    net, box = next((n, b) for key, n, b in E2E if key == name)
    mins, maxs = oracle.exact_output_range(net, box.lower, box.upper)
    last = len(net.widths) - 1
    zmax = exact_neuron_maxima(name)[last][0]
    cases = [
        (f"y[0] >= {maxs[0] - 1e-3}",),
        (f"y[0] >= {maxs[0] + 1e-3}",),
        (f"y[0] > {maxs[0]}",),
        (f"y[0] <= {mins[0] + 1e-3}",),
        (f"z{last}[0] >= {zmax - 1e-3}",),
        (f"z{last}[0] >= {zmax + 1e-3}",),
        (f"h{last}[0] > 0",),
    ]
    # these answers follow from the exact extremes alone: a guard on the oracle call itself
    expected = [True, False, False, True, True, False, zmax > 1e-9]
    answers = []
    for texts, known in zip(cases, expected):
        truth = oracle.reachable(net, box.lower, box.upper, parse_conditions(net, list(texts)))
        assert truth == known, texts
        answers.append((texts, truth))
    return tuple(answers)


@pytest.mark.parametrize("split", [True, False], ids=["split", "milp"])
@pytest.mark.parametrize("name,net,box", E2E, ids=E2E_IDS)
def test_fires_with_lp_bounds_equals_oracle(name, net, box, split):
    """Truth: ``oracle.exact_max`` of every neuron's pre-activation. ``fires(bounds="lp")``
    says ``fires`` exactly when that maximum is positive, and reports it to 1e-6."""
    maxima = exact_neuron_maxima(name)
    for layer, width in enumerate(net.widths):
        for neuron in range(width):
            truth = maxima[layer][neuron]
            result = fires(net, box, layer, neuron, bounds="lp", split_inputs=split)
            where = f"z{layer}[{neuron}] (exact max {truth:.12g}, upper bound {result.upper_bound})"
            assert result.status == ("fires" if truth > 1e-9 else "never"), where
            assert result.maximum == pytest.approx(truth, abs=1e-6), where
            assert net.forward(result.witness).pre_activations[layer][neuron] == pytest.approx(result.maximum, abs=1e-12)


@pytest.mark.parametrize("split", [True, False], ids=["split", "milp"])
@pytest.mark.parametrize("name,net,box", E2E, ids=E2E_IDS)
def test_reach_with_lp_bounds_equals_oracle(name, net, box, split):
    """Truth: ``oracle.reachable``. Conditions just inside / just beyond the exact output
    maximum and a last-layer neuron's exact maximum, and whether that neuron fires: the
    near-maximum ``sat`` cases are the ones a too-tight LP bound would turn into ``unsat``."""
    for texts, truth in reach_cases(name):
        conditions = parse_conditions(net, list(texts))
        result = reach(net, box, conditions, bounds="lp", samples=0, split_inputs=split)
        assert result.status == ("sat" if truth else "unsat"), (texts, result.reason, result.decided_by)
        if truth:
            for c in conditions:
                s = c.slack(net, result.witness)[0]
                assert (s > 0) if c.strict else (s >= -1e-9), (texts, c.text, s)
