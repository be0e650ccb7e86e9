"""Activation patterns as explicit polytopes (milp.enumeration.geometry), checked against independent truth:
forward passes, dense sampling, scipy LPs (``linprog``) and the brute-force enumeration of ``tests/oracle.py``.
The local affine maps of a pattern (milp.core.patterns) are in tests/core/test_patterns.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linprog

import oracle
from milp import Box, parse_conditions
from milp import regions as milp_regions
from milp.core.conditions import evaluate
from milp.core.network import Network
from milp.core.patterns import PatternError
from milp.core.patterns import pattern_constraints
from milp.core.region import PolytopeError, Region
from milp.enumeration.geometry import build_region, chebyshev_center, finish_region, region_of_point, remove_redundant
from milp.enumeration.tree import RawRegion
from nets import SMALL_NETS, random_mlp

BOX2 = Box([-2.0, -2.0], [2.0, 2.0])


def facet_excess(A: np.ndarray, b: np.ndarray, i: int) -> float:
    """max a_i x - b_i over the other rows (and a_i x <= b_i + 1), by scipy's LP."""
    others = np.delete(np.arange(len(b)), i)
    rows = np.vstack([A[others], A[i]])
    rhs = np.concatenate([b[others], [b[i] + 1.0]])
    result = linprog(-A[i], A_ub=rows, b_ub=rhs, bounds=[(None, None)] * A.shape[1], method="highs")
    assert result.status == 0, result.message
    return float(-result.fun - b[i])


def slack(region: Region, x: np.ndarray) -> np.ndarray:
    """Distance of each point (n, d) to the region's boundary (negative outside): rows have unit norm."""
    return np.min(region.b - np.atleast_2d(x) @ region.A.T, axis=1)


# ------------------------------------------------------------------ regions of sampled points
def test_region_of_each_sampled_point(small_net):
    net = small_net
    rng = np.random.default_rng(3)
    cloud = BOX2.sample(6000, rng)
    cloud_patterns = np.array(oracle.patterns(net, cloud))
    outputs = net.forward(cloud).output
    for x in BOX2.sample(12, rng):
        region = region_of_point(net, BOX2, x)
        assert region is not None
        assert region.pattern == oracle.patterns(net, x)[0]
        assert region.contains(x)
        # the interior point has the pattern, with its ball inside the region
        assert oracle.patterns(net, region.interior_point)[0] == region.pattern
        assert slack(region, region.interior_point)[0] >= region.radius - 1e-9 > 0
        # the polytope is exactly the set of points with the pattern (away from its boundary)
        distance = slack(region, cloud)
        same = cloud_patterns == region.pattern
        assert np.all(region.contains(cloud[same]))
        assert np.all(same[distance > 1e-7])
        # and the network is the region's affine map there
        np.testing.assert_allclose(region.output_at(cloud[same]), outputs[same], rtol=1e-9, atol=1e-9)


def test_regions_with_conditions_match_oracle():
    rng = np.random.default_rng(4)
    net = random_mlp(rng, [2, 6, 5, 2])
    trace = net.forward(BOX2.sample(2000, rng))
    # thresholds at sample quantiles, so that the conditions cut the box somewhere
    margin = np.quantile(trace.output[:, 0] - trace.output[:, 1], 0.4)
    level = np.quantile(trace.pre_activations[1][:, 0] + trace.inputs[:, 1], 0.2)
    conditions = parse_conditions(net, [f"y[0] - y[1] > {margin}", f"z1[0] + x[1] >= {level}"])
    listed = oracle.enumerate_regions(net, BOX2.lower, BOX2.upper, conditions)
    every = oracle.enumerate_regions(net, BOX2.lower, BOX2.upper)
    assert 3 <= len(listed) < len(every)
    cloud = BOX2.sample(6000, rng)
    holds = evaluate(net, conditions, cloud)
    cloud_patterns = np.array(oracle.patterns(net, cloud))
    regions = []
    for pattern in every:
        region = build_region(net, BOX2, pattern, conditions)
        assert (region is not None) == (pattern in listed)
        if region is None:
            continue
        regions.append(region)
        assert oracle.patterns(net, region.interior_point)[0] == pattern
        assert evaluate(net, conditions, region.interior_point[None, :])[0]
        inside = slack(region, cloud) > 1e-7
        assert np.all(holds[inside]) and np.all(cloud_patterns[inside] == pattern)
        assert np.all(region.contains(cloud[holds & (cloud_patterns == pattern)]))
    # the regions' areas add up to the part of the box where the conditions hold
    area = sum(r.volume for r in regions)
    fraction = holds.mean()
    assert abs(area / 16.0 - fraction) <= 5 * np.sqrt(fraction * (1 - fraction) / cloud.shape[0])


# ------------------------------------------------------------------ 2-D: polygons, areas
@pytest.mark.parametrize("name", ["mlp", "residual", "output_relu"])
def test_polygon_areas_match_sampling_and_tile_the_box(name):
    rng = np.random.default_rng(5)
    net = SMALL_NETS[name](rng)
    # every pattern of a dense grid, plus any thin one the oracle's complete enumeration finds
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 301), np.linspace(-2, 2, 301)), axis=-1).reshape(-1, 2)
    grid_patterns = set(oracle.patterns(net, grid))
    every = oracle.enumerate_regions(net, BOX2.lower, BOX2.upper)
    assert grid_patterns <= set(every)
    samples = BOX2.sample(20000, rng)
    sample_patterns = np.array(oracle.patterns(net, samples))
    total = 0.0
    for pattern in every:
        region = build_region(net, BOX2, pattern)
        assert region is not None
        total += region.volume
        fraction = np.mean(sample_patterns == pattern)
        assert abs(region.volume / 16.0 - fraction) <= 5 * np.sqrt(max(fraction, 1e-4) * (1 - fraction) / samples.shape[0])
        # counter-clockwise vertices, each inside the region and on two of its facets
        v = region.vertices
        assert v.shape[0] == region.A.shape[0] >= 3
        edge, following = np.roll(v, -1, axis=0) - v, np.roll(v, -2, axis=0) - np.roll(v, -1, axis=0)
        assert np.all(edge[:, 0] * following[:, 1] - edge[:, 1] * following[:, 0] > 0)  # left turns
        on = np.abs(v @ region.A.T - region.b) <= 1e-9
        assert np.all(region.contains(v)) and np.all(on.sum(axis=1) >= 2)
    assert total == pytest.approx(16.0, rel=1e-9)


def test_three_input_volumes_tile_the_box():
    rng = np.random.default_rng(6)
    net = random_mlp(rng, [3, 5, 4, 1])
    box = Box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    every = oracle.enumerate_regions(net, box.lower, box.upper)
    total = 0.0
    for pattern in every:
        region = build_region(net, box, pattern)
        assert region is not None
        total += region.volume
        assert np.all(region.contains(region.vertices))
        assert oracle.patterns(net, region.interior_point)[0] == pattern
    assert total == pytest.approx(8.0, rel=1e-9)


def test_fixed_input_region_lives_in_the_free_inputs():
    rng = np.random.default_rng(7)
    net = random_mlp(rng, [3, 6, 4, 1])
    box = Box([-1.0, 0.25, -2.0], [1.0, 0.25, 2.0])
    every = oracle.enumerate_regions(net, box.lower, box.upper)
    total = 0.0
    for pattern in every:
        region = build_region(net, box, pattern)
        assert region is not None
        total += region.volume
        assert np.all(region.vertices[:, 1] == 0.25)
        assert region.interior_point[1] == 0.25
        assert oracle.patterns(net, region.interior_point)[0] == pattern
        assert region.contains(region.interior_point)
        assert not region.contains(region.interior_point + np.array([0.0, 1e-6, 0.0]))
    assert total == pytest.approx(8.0, rel=1e-9)  # the free inputs span a 2 x 4 rectangle
    # every input fixed: the region of the point itself, a single vertex
    point = Box(np.array([0.5, 0.25, -1.0]), np.array([0.5, 0.25, -1.0]))
    region = region_of_point(net, point, point.lower)
    assert region.pattern == oracle.patterns(net, point.lower)[0]
    np.testing.assert_array_equal(region.vertices, point.lower[None, :])
    assert region.contains(point.lower) and region.volume is None


# ------------------------------------------------------------------ irredundant rows
@pytest.mark.parametrize("dims", [[2, 6, 5, 1], [3, 5, 4, 1], [5, 6, 4, 1]], ids=["2d", "3d", "5d"])
def test_kept_rows_are_facets_of_the_same_polytope(dims):
    rng = np.random.default_rng(8)
    net = random_mlp(rng, dims)
    d = dims[0]
    box = Box(-np.ones(d), np.ones(d))
    points = box.sample(10, rng)
    wide = rng.uniform(-1.3, 1.3, (4000, d))
    for pattern in sorted(set(oracle.patterns(net, points))):
        region = build_region(net, box, pattern)
        assert region is not None
        for i in range(region.b.size):
            assert facet_excess(region.A, region.b, i) > 1e-9
        A, b = pattern_constraints(net, box, pattern)
        full = np.all(wide @ A.T <= b, axis=1)
        near = np.min(np.abs(wide @ A.T - b) / np.linalg.norm(A, axis=1), axis=1) < 1e-7
        np.testing.assert_array_equal(region.contains(wide, tol=0.0)[~near], full[~near])


def test_degenerate_arrangement():
    """Four lines through the origin, one touching a box corner only, one along a box face::

        z = (x0 + x1 - 4, x0 - x1, x0, x1, x0 - 2, x0 + x1)
    """
    W = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    net = Network.mlp([(W, np.array([-4.0, 0, 0, 0, -2, 0])), (np.ones((1, 6)), np.zeros(1))])
    every = oracle.enumerate_regions(net, BOX2.lower, BOX2.upper)
    assert len(every) == 8  # the eight sectors around the origin
    total = 0.0
    for pattern in every:
        region = build_region(net, BOX2, pattern)
        total += region.volume
        assert region.vertices.shape[0] == region.b.size == 3  # triangles: the corner-touching row is no facet
        for i in range(region.b.size):
            assert facet_excess(region.A, region.b, i) > 1e-9
    assert total == pytest.approx(16.0, rel=1e-12)
    for d in (3, 4):  # the same lines in more dimensions go through qhull and the LPs
        box = Box(-2 * np.ones(d), 2 * np.ones(d))
        lifted = Network.mlp([(np.hstack([W, np.zeros((6, d - 2))]), np.array([-4.0, 0, 0, 0, -2, 0])), (np.ones((1, 6)), np.zeros(1))])
        for pattern in every:
            region = build_region(lifted, box, pattern)
            assert region.b.size == 3 + 2 * (d - 2)
            for i in range(region.b.size):
                assert facet_excess(region.A, region.b, i) > 1e-9


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_remove_redundant_on_random_polytopes(d):
    rng = np.random.default_rng(9 + d)
    for _ in range(4):
        normals = rng.standard_normal((25, d))
        A = np.vstack([normals, np.eye(d), -np.eye(d)])
        b = np.concatenate([rng.uniform(0.3, 2.0, 25), np.full(2 * d, 1.5)])
        # a scaled duplicate, a parallel looser row, and a far row
        A = np.vstack([A, 3.0 * A[0], A[1], A[2]])
        b = np.concatenate([b, [3.0 * b[0], b[1] + 0.5, b[2] + 10.0]])
        center, radius = chebyshev_center(A, b)
        assert radius > 0.05
        A_kept, b_kept, kept = remove_redundant(A, b, center)
        np.testing.assert_array_equal(A_kept, A[kept])
        assert np.all(np.diff(kept) > 0)
        # irredundant: each kept row is a facet of the kept rows
        for i in range(kept.size):
            assert facet_excess(A_kept, b_kept, i) > 1e-9
        # and complete: every dropped row is implied by the kept ones
        for j in np.setdiff1d(np.arange(b.size), kept):
            result = linprog(-A[j], A_ub=A_kept, b_ub=b_kept, bounds=[(None, None)] * d, method="highs")
            assert result.status == 0 and -result.fun <= b[j] + 1e-9


# ------------------------------------------------------------------ Chebyshev ball
def test_chebyshev_center_on_known_shapes():
    rectangle = (np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]]), np.array([2.0, 0, 1, 0]))
    center, radius = chebyshev_center(*rectangle)
    assert radius == pytest.approx(0.5, abs=1e-9) and center[1] == pytest.approx(0.5, abs=1e-9)
    # right triangle with legs 3 and 4: inradius = area / half perimeter = 6 / 6
    triangle = (np.array([[-1.0, 0], [0, -1], [4, 3]]), np.array([0.0, 0, 12]))
    center, radius = chebyshev_center(*triangle)
    assert radius == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(center, [1.0, 1.0], atol=1e-9)
    assert chebyshev_center(np.array([[1.0], [-1.0]]), np.array([0.0, -1.0]))[0] is None
    # x1 fixed at 0.5 by two rows: the ball lives in (x0, x2) in [0, 2] x [0, 4]
    box = Box([0.0, 0.5, 0.0], [2.0, 0.5, 4.0])
    rows = np.vstack([np.eye(3), -np.eye(3), [[0.0, 4.0, 1.0]]])
    rhs = np.concatenate([box.upper, -box.lower, [10.0]])
    center, radius = chebyshev_center(rows, rhs, box.upper > box.lower)
    assert radius == pytest.approx(1.0, abs=1e-9) and center[1] == pytest.approx(0.5, abs=1e-9)


# ------------------------------------------------------------------ lower-dimensional patterns
def test_lower_dimensional_patterns_give_none():
    # z0 = x0, z1 = -x0, z2 = 0 (zero weights and bias)
    net = Network.mlp([(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]), np.zeros(3)), (np.ones((1, 3)), np.zeros(1))])
    assert build_region(net, BOX2, "100") is not None
    assert build_region(net, BOX2, "101") is None  # z2 > 0 never holds
    A, b = pattern_constraints(net, BOX2, "101")
    assert chebyshev_center(A, b)[0] is None
    assert build_region(net, BOX2, "110") is None  # only the line x0 = 0
    assert build_region(net, BOX2, "000") is None
    # x0 = 0 has pattern 000: on the line, no full-dimensional region has it
    assert region_of_point(net, BOX2, np.array([0.0, 0.3])) is None
    region = region_of_point(net, BOX2, np.array([-0.5, 0.3]))
    assert region.pattern == "010" and region.volume == pytest.approx(8.0, rel=1e-12)


def test_region_of_point_where_conditions_fail_is_none():
    net = random_mlp(np.random.default_rng(10), [2, 4, 1])
    x = np.array([0.3, -0.7])
    y = float(net(x)[0])
    assert region_of_point(net, BOX2, x, [f"y[0] >= {y + 0.5}"]) is None
    region = region_of_point(net, BOX2, x, [f"y[0] >= {y - 0.5}"])
    assert region is not None and region.contains(x)


# ------------------------------------------------------------------ values and errors
def test_dict_round_trip_through_json(small_net):
    net = small_net
    region = region_of_point(net, BOX2, np.array([0.1, -0.2]))
    back = Region.from_dict(json.loads(json.dumps(region.to_dict())))
    for name in ("A", "b", "interior_point", "vertices"):
        np.testing.assert_array_equal(getattr(back, name), getattr(region, name))
    np.testing.assert_array_equal(back.affine[0], region.affine[0])
    np.testing.assert_array_equal(back.affine[1], region.affine[1])
    assert (back.pattern, back.radius, back.volume) == (region.pattern, region.radius, region.volume)
    with pytest.raises(PolytopeError, match="not a region"):
        Region.from_dict({"pattern": "01"})


def test_finish_region_agrees_with_build_region():
    rng = np.random.default_rng(11)
    net = random_mlp(rng, [2, 6, 5, 1])
    for pattern in oracle.patterns(net, BOX2.sample(5, rng)):
        bits = np.array([c == "1" for c in pattern])
        A, b = pattern_constraints(net, BOX2, pattern)
        center, radius = chebyshev_center(A, b)
        finished = finish_region(net, BOX2, RawRegion(bits, A[:-4], b[:-4], center, radius))  # box faces left out
        built = build_region(net, BOX2, pattern)
        assert finished.pattern == built.pattern and finished.volume == pytest.approx(built.volume, rel=1e-12)
        assert finished.A.shape == built.A.shape and np.all(built.contains(finished.vertices))
    # a centre outside its rows is an enumeration's error, not a region
    outside = RawRegion(bits, A, b, BOX2.upper + 1.0, radius)
    with pytest.raises(PolytopeError, match="not inside"):
        finish_region(net, BOX2, outside)


def test_a_stop_request_abandons_a_regions_facets_and_a_time_limit_stops_the_list():
    """On 12 inputs a region's facets take one LP per row: ``should_stop`` true before the n-th LP
    abandons it (Stopped), false throughout gives the region as without it, and a search whose time
    limit passes within the first region's facets ends incomplete, listing nothing."""
    from milp.enumeration.geometry import Stopped

    rng = np.random.default_rng(12)
    net = random_mlp(rng, [12, 16, 16, 1])
    box = Box(np.full(12, -1.0), np.full(12, 1.0))
    pattern = oracle.patterns(net, box.sample(1, rng))[0]
    bits = np.array([c == "1" for c in pattern])
    A, b = pattern_constraints(net, box, pattern)
    center, radius = chebyshev_center(A, b)
    raw = RawRegion(bits, A, b, center, radius)
    plain = finish_region(net, box, raw)
    same = finish_region(net, box, raw, should_stop=lambda: False)
    assert same.pattern == plain.pattern and np.array_equal(same.A, plain.A) and np.array_equal(same.b, plain.b)
    for n in (1, 5, 20):
        asked = iter(range(10**6))
        with pytest.raises(Stopped):
            finish_region(net, box, raw, should_stop=lambda: next(asked) >= n)
    search = milp_regions(net, box, time_limit=0.0)
    assert list(search) == [] and search.complete is False


def test_invalid_inputs_raise():
    net = random_mlp(np.random.default_rng(12), [2, 3, 1])
    with pytest.raises(PatternError, match="3 ReLU neurons"):
        build_region(net, BOX2, "01")
    with pytest.raises(PatternError, match="only '0' and '1'"):
        build_region(net, BOX2, "01x")
    with pytest.raises(PolytopeError, match="outside the box"):
        region_of_point(net, BOX2, np.array([3.0, 0.0]))
    with pytest.raises(PolytopeError, match="tol"):
        build_region(net, BOX2, "010", tol=0.0)
