"""Slices (milp.core.slicing): the network on a plane through input space agrees with the original there,
its regions are the original's on the plane, and slice texts parse or fail with a clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest

import oracle
from milp import Box, parse_box, parse_conditions
from milp.core.slicing import Slice, SliceError, parse_slice, slice_network
from milp.enumeration.engines import regions
from nets import random_mlp, random_residual


def test_sliced_network_agrees_with_the_original_on_the_plane():
    rng = np.random.default_rng(11)
    net = random_residual(rng, 4, 5, 2, 3)
    plane = Slice(rng.normal(size=4), rng.normal(size=4), rng.normal(size=4))
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    assert flat.input_dim == 2 and flat.widths == net.widths and flat.input_names == ("s", "t")
    st = rng.uniform(-2, 2, (3000, 2))
    x = plane.origin + st[:, :1] * plane.u + st[:, 1:] * plane.v  # lifted by hand
    original, sliced = net.forward(x), flat.forward(st)
    assert np.allclose(original.output, sliced.output, atol=1e-9)
    for z0, z1 in zip(original.pre_activations, sliced.pre_activations):
        assert np.allclose(z0, z1, atol=1e-9)
    assert oracle.patterns(net, x) == oracle.patterns(flat, st)


def test_regions_of_a_slice_are_the_original_regions_on_the_plane():
    rng = np.random.default_rng(4)
    net = random_mlp(rng, [4, 6, 5, 2])
    plane = parse_slice("x0=0.1,-0.2,0.3,0 u=1,0.5,0,0 v=0,0,1,-1", 4)
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    box = parse_box("-1.5:1.5", 2)
    found = list(regions(flat, box, ["y[0] > y[1]"]))
    assert {r.pattern for r in found} == set(oracle.enumerate_regions(flat, box.lower, box.upper, parse_conditions(flat, ["y[0] > y[1]"])))
    by_pattern = {r.pattern: r for r in found}
    st = box.sample(4000, np.random.default_rng(2))
    x = plane.inputs(st)
    holds = oracle.form_values(net, parse_conditions(net, ["y[0] > y[1]"])[0].expression, x) > 0
    original_patterns = oracle.patterns(net, x)
    for point, pattern, ok in zip(st, original_patterns, holds):
        if ok:  # the original's pattern at the lifted point is a listed region of the slice, containing the point
            assert by_pattern[pattern].contains(point, tol=1e-9)
    for region in found:  # and each region's interior point has the region's pattern in the original
        assert oracle.patterns(net, plane.inputs(region.interior_point))[0] == region.pattern


def test_axis_aligned_slice_equals_fixing_the_other_inputs():
    net = random_mlp(np.random.default_rng(8), [3, 5, 4, 1])
    plane = parse_slice("x0=0,0.3,0 u=e0 v=e2", 3)
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    fixed = Box([-1.0, 0.3, -2.0], [1.0, 0.3, 2.0])
    sliced = {r.pattern for r in regions(flat, Box([-1.0, -2.0], [1.0, 2.0]))}
    assert sliced == {r.pattern for r in regions(net, fixed)}
    assert sliced == set(oracle.enumerate_regions(net, fixed.lower, fixed.upper))


def test_parse_slice_forms_and_errors():
    plane = parse_slice("x0=1,2,3; u=1,0,0; v=0,1,0")
    assert plane.origin.tolist() == [1, 2, 3] and plane.u.tolist() == [1, 0, 0]
    assert parse_slice("u=e1 v=e2", 3).origin.tolist() == [0, 0, 0]
    assert parse_slice("origin=0,0 u=1,1 v=1,-1").v.tolist() == [1, -1]
    again = parse_slice(plane.to_text(), 3)
    assert np.array_equal(again.origin, plane.origin) and np.array_equal(again.v, plane.v)
    assert np.array_equal(parse_slice(json.loads(json.dumps(plane.to_dict()))).u, plane.u)
    for text, message in [
        ("u=1,0,0 v=2,0,0", "parallel"),
        ("u=1,0 v=0,1", "the network has 3 inputs"),
        ("u=e5 v=e0", "no input 5"),
        ("u=1,0,0", "needs v"),
        ("w=1,0,0 u=1,0,0 v=0,1,0", "slice part"),
        ("u=1,a,0 v=0,1,0", "comma-separated numbers"),
        ("", "empty slice"),
        ("u=1,0,0 u=0,1,0 v=0,0,1", "twice"),
    ]:
        with pytest.raises(SliceError, match=message):
            parse_slice(text, 3)
    with pytest.raises(SliceError, match="inputs"):
        slice_network(random_mlp(np.random.default_rng(0), [2, 3, 1]), [0, 0, 0], [1, 0, 0], [0, 1, 0])
