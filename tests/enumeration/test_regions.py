"""Region enumeration against independent truth: the brute-force oracle, dense sampling and onnxruntime
(``milp regions`` itself, files and resume: tests/cli/test_cli_regions.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import oracle
from importers import OnnxReference, save_onnx
from milp import Box, parse_box, parse_conditions
from milp.core.network import Affine, Network
from milp.core.patterns import pattern_text
from milp.enumeration.engines import region_containing, regions
from milp.enumeration.tree import SearchStats, split_search
from milp.search.tighten import pre_activation_bounds
from nets import chained_net, random_mlp, random_residual, un_relu_toy


def patterns_of(search) -> set[str]:
    found = [r.pattern for r in search]
    assert len(found) == len(set(found)), "a region was listed twice"
    return set(found)


def all_pre_activations(net: Network) -> Network:
    """The same network with every pre-activation as its output (so onnxruntime reports patterns)."""
    terms, offset = [], 0
    for layer in net.relu_layers:
        for source, weight in layer.terms:
            block = np.zeros((net.neuron_count, weight.shape[1]))
            block[offset : offset + layer.out_dim] = weight
            terms.append((source, block))
        offset += layer.out_dim
    bias = np.concatenate([layer.bias for layer in net.relu_layers])
    return Network(net.input_dim, net.relu_layers, Affine(tuple(terms), bias))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 100_000),
    kind=st.sampled_from(["mlp", "residual", "output-relu", "fixed-input", "3-d", "4-d"]),
    condition=st.sampled_from([None, "y[0] > 0", "y[0] - y[1] >= 0.1", "h0[0] > 0"]),
)
@example(seed=56029, kind="output-relu", condition=None)  # four thin regions, radius 3e-8 to 6e-8
def test_both_engines_equal_the_oracle(seed, kind, condition):
    """Above the tolerance both engines list the oracle's regions; the tree engine's thin ones (below
    it) are the regions a finer oracle adds, each with its pattern at its interior point."""
    rng = np.random.default_rng(seed)
    if kind == "residual":
        net = random_residual(rng, 2, 3, 2, 2)
    elif kind == "output-relu":
        net = random_mlp(rng, [2, 4, 3, 2], output_relu=True)
    elif kind in ("fixed-input", "3-d"):  # 3-d: the search keeps the polytope's vertices
        net = random_mlp(rng, [3, 5, 4, 2])
    elif kind == "4-d":
        net = random_mlp(rng, [4, 4, 3, 2])
    else:
        net = random_mlp(rng, [2, 5, 5, 2])
    box = Box(-rng.uniform(0.5, 2.0, net.input_dim), rng.uniform(0.5, 2.0, net.input_dim))
    if kind == "fixed-input":
        box = Box(np.array([box.lower[0], 0.3, box.lower[2]]), np.array([box.upper[0], 0.3, box.upper[2]]))
    where = [] if condition is None else [condition]
    truth = set(oracle.enumerate_regions(net, box.lower, box.upper, parse_conditions(net, where)))
    tree = regions(net, box, where, method="tree")
    listed = list(tree)
    patterns_of(listed)  # none twice
    assert {r.pattern for r in listed if not r.thin} == truth
    assert tree.complete
    thin = {r.pattern: r for r in listed if r.thin}
    if thin:
        finer = set(oracle.enumerate_regions(net, box.lower, box.upper, parse_conditions(net, where), tol=1e-11))
        assert set(thin) <= finer - truth
        for pattern, region in thin.items():
            assert region.radius <= 1e-7 * max(1.0, float(np.max(box.widths)))
            assert oracle.patterns(net, region.interior_point[None, :]) == [pattern]
    # every region a coarser-than-certification oracle finds below the tolerance is listed as thin
    coarse_thin = set(oracle.enumerate_regions(net, box.lower, box.upper, parse_conditions(net, where), tol=1e-10))
    assert coarse_thin - truth <= set(thin)
    nogood = regions(net, box, where, method="nogood")
    assert patterns_of(nogood) == truth
    assert nogood.complete


@pytest.mark.parametrize("method", ["tree", "nogood"])
def test_un_relu_toy(method):
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    found = list(regions(net, box, ["y[0] > 0"], method=method))
    truth = oracle.enumerate_regions(net, box.lower, box.upper, parse_conditions(net, ["y[0] > 0"]))
    assert {r.pattern for r in found} == set(truth)
    # the regions tile exactly the part of the box where y[0] > 0
    assert oracle.sample_check(net, box.lower, box.upper, found, parse_conditions(net, ["y[0] > 0"]), n=20000) == 1.0
    area = sum(r.volume for r in found)
    samples = box.sample(200_000, np.random.default_rng(0))
    fraction = np.mean(net(samples)[:, 0] > 0)
    assert area / 100.0 == pytest.approx(fraction, abs=0.01)


def firing_chained_net() -> Network:
    """The first chained net (by seed) where y[0] > 0 on between 2% and 50% of [-6, 6]^2."""
    points = parse_box("-6:6", 2).sample(5000, np.random.default_rng(0))
    for seed in range(100):
        net = chained_net(seed)
        if 0.02 < np.mean(net(points)[:, 0] > 0) < 0.5:
            return net
    raise AssertionError("no seed below 100 gives a firing chained net")


def test_chained_blocks_dense_sampling_and_onnxruntime(tmp_path):
    net, box = firing_chained_net(), parse_box("-6:6", 2)
    conditions = parse_conditions(net, ["y[0] > 0"])
    tree = list(regions(net, box, conditions))
    nogood = list(regions(net, box, conditions, method="nogood"))
    assert {r.pattern for r in tree} == {r.pattern for r in nogood}
    assert oracle.sample_check(net, box.lower, box.upper, tree, conditions, n=50_000) == 1.0
    # every interior point, through onnxruntime: the region's pattern, and y[0] > 0
    save_onnx(all_pre_activations(net), tmp_path / "pre.onnx", dtype=np.float64)
    save_onnx(net, tmp_path / "net.onnx", dtype=np.float64)
    points = np.array([r.interior_point for r in tree])
    z = OnnxReference(tmp_path / "pre.onnx")(points)
    y = OnnxReference(tmp_path / "net.onnx")(points)
    for region, zi, yi in zip(tree, z, y):
        assert "".join("1" if v > 0 else "0" for v in zi) == region.pattern
        assert yi[0] > 0
        assert np.allclose(region.output_at(region.interior_point), yi, atol=1e-9)
    total_area = sum(r.volume for r in tree)
    fraction = np.mean(net(box.sample(200_000, np.random.default_rng(1)))[:, 0] > 0)
    assert total_area / 144.0 == pytest.approx(fraction, abs=0.01)


def test_region_geometry_and_point_lookup():
    net, box = chained_net(1), parse_box("-6:6", 2)
    found = list(regions(net, box))
    assert sum(r.volume for r in found) == pytest.approx(144.0, rel=1e-9)
    rng = np.random.default_rng(2)
    for x in box.sample(200, rng):
        region = region_containing(net, box, x)
        assert region is not None and region.contains(x)
        assert region.pattern in {r.pattern for r in found}
        assert np.allclose(region.output_at(x), net(x), atol=1e-9)
    for r in found:
        assert r.contains(r.interior_point) and r.radius > 0
        assert np.all(r.A @ r.interior_point <= r.b - r.radius * 0.999)


def test_time_limit_marks_the_list_incomplete():
    rng = np.random.default_rng(5)
    net = random_mlp(rng, [2, 30, 30, 30, 1])
    search = regions(net, parse_box("-3:3", 2), time_limit=0.05)
    found = list(search)
    assert not search.complete
    assert len(found) == search.stats.regions


@pytest.mark.parametrize("kind", ["mlp", "residual", "3-d", "fixed-input"])
def test_pruning_by_bounds_lists_the_oracle_regions(kind):
    """The tree drops a node once bounds prove that a condition on the layers still open fails on all
    of it: the regions are the oracle's and those of the same search without the drop, and on these
    nets (a condition that holds on about a tenth of the box) the bounds do drop nodes."""
    dropped = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        if kind == "residual":
            net = random_residual(rng, 2, 5, 3, 1)
        elif kind in ("3-d", "fixed-input"):  # 3-d keeps the polytope's vertices; a fixed input, an LP
            net = random_mlp(rng, [3, 5, 5, 5, 1])
        else:
            net = random_mlp(rng, [2, 6, 6, 6, 1])
        box = Box(-np.ones(net.input_dim), np.ones(net.input_dim))
        if kind == "fixed-input":
            box = Box(np.array([-1.0, 0.2, -1.0]), np.array([1.0, 0.2, 1.0]))
        y = net(rng.uniform(box.lower, box.upper, (20_000, net.input_dim)))[:, 0]
        where = [f"y[0] >= {float(np.quantile(y, 0.9))!r}"]
        conditions = parse_conditions(net, where)
        search = regions(net, box, where)
        found = patterns_of(search)
        assert search.complete
        assert found == set(oracle.enumerate_regions(net, box.lower, box.upper, conditions))
        bounds = pre_activation_bounds(net, box, "symbolic")
        plain = SearchStats()
        walked = split_search(net, box, conditions, bounds, search.radius_tolerance, plain, prune_by_bounds=False)
        assert {pattern_text(raw.pattern) for raw in walked} == found
        assert plain.pruned_by_bounds == 0 and search.stats.nodes <= plain.nodes
        dropped += search.stats.pruned_by_bounds
    assert dropped > 0
