"""The search's exact polytopes (a polygon for two inputs, vertices up to five) against its LP:
the same regions, and the same facets, vertices and volumes as the geometry built from rows alone."""

from __future__ import annotations

import numpy as np
import pytest

from milp import Box, parse_conditions
from milp.enumeration.geometry import build_region, finish_region
from milp.enumeration.polygon import PolygonStack
from milp.enumeration.tree import SearchStats, split_search
from milp.enumeration.vertices import VERTEX_DIMENSIONS, VertexStack
from milp.search.tighten import pre_activation_bounds
from nets import random_mlp, random_residual

CASES = [  # (input dim, seed, condition)
    (2, 0, None), (2, 1, "y[0] < 0"), (3, 2, None), (3, 3, "y[0] - y[1] >= 0.1"),
    (4, 4, None), (5, 5, "h0[0] > 0"), (6, 6, None),
]


def search(net, box, where, geometry):
    conditions = parse_conditions(net, where)
    bounds = pre_activation_bounds(net, box, "symbolic")
    stats = SearchStats()
    tol = 1e-7 * max(1.0, float(np.max(box.widths)))
    found = {}
    for raw in split_search(net, box, conditions, bounds, tol, stats, geometry=geometry):
        region = finish_region(net, box, raw)
        assert region.pattern not in found, "a region was listed twice"
        found[region.pattern] = region
    return found, stats


def rows_of(region):
    """Facets as a sorted array of unit rows with their offsets."""
    rows = np.hstack([region.A, region.b[:, None]])
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("dim,seed,condition", CASES)
def test_exact_polytopes_give_the_lp_regions_and_geometry(dim, seed, condition):
    rng = np.random.default_rng(seed)
    net = random_residual(rng, dim, 4, 2, 2) if seed % 3 == 2 else random_mlp(rng, [dim, 6, 5, 2])
    box = Box(-rng.uniform(0.5, 2.0, dim), rng.uniform(0.5, 2.0, dim))
    where = [] if condition is None else [condition]
    exact, exact_stats = search(net, box, where, "auto")
    by_lp, lp_stats = search(net, box, where, "lp")
    assert set(exact) == set(by_lp) and len(exact) > 3
    if dim <= VERTEX_DIMENSIONS:
        assert exact_stats.lps <= lp_stats.lps // 4  # the exact polytope needs (almost) no LP
    for pattern, region in exact.items():
        other = by_lp[pattern]
        assert np.allclose(rows_of(region), rows_of(other), atol=1e-7), pattern
        assert region.radius > 0 and np.all(region.A @ region.interior_point <= region.b - region.radius + 1e-9)
        assert np.allclose(region.affine[0], other.affine[0]) and np.allclose(region.affine[1], other.affine[1])
        if dim <= 3:
            assert region.volume == pytest.approx(other.volume, rel=1e-6)
            assert len(region.vertices) == len(other.vertices)
        # the region of this pattern, built from its rows alone, is the same polytope
        alone = build_region(net, box, pattern, where)
        assert np.allclose(rows_of(region), rows_of(alone), atol=1e-7)


def test_a_polygon_cut_twice_and_restored():
    stack = PolygonStack(np.array([0.0, 0.0]), np.array([2.0, 1.0]))
    stack.push(np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]]), np.array([2.0, 1, 0, 0]))
    assert np.all(stack.labels >= 0)
    other = stack.push(np.array([[1.0, 1.0]]), np.array([1.0]), opposite=True)
    assert stack.shape(1e-12)[2] == pytest.approx(0.5)  # the triangle below x + y = 1
    low, high = stack.ranges(np.array([[1.0, 1.0]]), np.zeros(1))
    assert low[0] == pytest.approx(0.0) and high[0] == pytest.approx(1.0)
    stack.truncate(4)
    stack.push(np.array([[-1.0, -1.0]]), np.array([-1.0]), known=other)
    facets, vertices, area = stack.shape(1e-12)
    assert area == pytest.approx(1.5) and list(facets) == [0, 1, 3, 4]
    center, radius = stack.chebyshev()
    assert np.all(stack.current_rows()[0] @ center <= stack.current_rows()[1] - radius + 1e-12)


def test_vertices_of_a_cube_cut_by_a_plane():
    stack = VertexStack(np.zeros(3), np.ones(3))
    eye = np.eye(3)
    stack.push(np.vstack([eye, -eye]), np.concatenate([np.ones(3), np.zeros(3)]))
    other = stack.push(np.array([[1.0, 1.0, 1.0]]), np.array([1.0]), opposite=True)
    assert stack.vertices.shape[0] == 4  # the corner simplex below x + y + z = 1
    assert other[0].shape[0] == 7  # the rest of the cube: 7 corners, the 3 cut points shared
    facets, vertices, volume = stack.shape(1e-12)
    assert volume == pytest.approx(1 / 6) and list(facets) == [3, 4, 5, 6]
    stack.truncate(6)
    stack.push(np.array([[-1.0, -1.0, -1.0]]), np.array([-1.0]), known=other)
    assert stack.shape(1e-12)[2] == pytest.approx(5 / 6)
