"""The local affine maps of an activation pattern (milp.core.patterns), checked against forward passes and
the brute-force oracle's own maps (``tests/oracle.py``)."""

from __future__ import annotations

import numpy as np

import oracle
from milp import Box, parse_conditions
from milp.core.patterns import local_affine_maps, local_form
from nets import residual_net

BOX2 = Box([-2.0, -2.0], [2.0, 2.0])


# ------------------------------------------------------------------ local maps
def test_local_maps_match_forward_pass_and_oracle(small_net):
    net = small_net
    rng = np.random.default_rng(1)
    x = BOX2.sample(40, rng)
    trace = net.forward(x)
    for k, pattern in enumerate(oracle.patterns(net, x)):
        maps = local_affine_maps(net, pattern)
        truth_layers, truth_output = oracle.affine_maps(net, pattern)
        for layer, (A, c) in enumerate(maps.layers):
            np.testing.assert_allclose(A @ x[k] + c, trace.pre_activations[layer][k], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(A, truth_layers[layer][0], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(c, truth_layers[layer][1], rtol=1e-12, atol=1e-14)
        C, d = maps.output
        np.testing.assert_allclose(C @ x[k] + d, trace.output[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(C, truth_output[0], rtol=1e-12, atol=1e-14)
    # a bool array and the text give the same maps
    bits = trace.pattern()[0]
    text = "".join("1" if v else "0" for v in bits)
    np.testing.assert_array_equal(local_affine_maps(net, bits).output[0], local_affine_maps(net, text).output[0])


def test_local_form_is_the_condition_value_inside_the_region():
    rng = np.random.default_rng(2)
    net = residual_net(rng)
    (condition,) = parse_conditions(net, ["y[1] - 2 * h1[0] + x[1] >= 0.3"])
    x = BOX2.sample(30, rng)
    for point, pattern in zip(x, oracle.patterns(net, x)):
        G, g = local_form(net, pattern, condition.expression)
        np.testing.assert_allclose(G @ point + g, condition.slack(net, point), rtol=1e-12, atol=1e-12)
