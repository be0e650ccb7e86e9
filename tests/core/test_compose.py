"""Networks built from networks: side by side, their difference, and stable neurons folded away.
Checked by forward passes of the originals (the definition) on dense samples."""

from __future__ import annotations

import numpy as np
import pytest

from milp import Box, Network
from milp.core.compose import difference, fold_stable, side_by_side
from milp.core.network import NetworkError
from nets import random_mlp, random_residual


def test_side_by_side_with_shared_and_separate_inputs():
    rng = np.random.default_rng(0)
    a, b = random_mlp(rng, [3, 5, 2]), random_residual(rng, 3, 4, 2, 1)
    x = rng.normal(size=(500, 3))
    both = side_by_side([a, b])
    assert both.widths == a.widths + b.widths
    np.testing.assert_allclose(both(x), np.hstack([a(x), b(x)]), atol=1e-12)
    # separate inputs: a reads positions 0..2, b reads 3..5; a tie shares position 1
    joint = side_by_side([a, b], [[0, 1, 2], [3, 1, 5]], input_dim=6)
    z = rng.normal(size=(500, 6))
    np.testing.assert_allclose(joint(z), np.hstack([a(z[:, :3]), b(z[:, [3, 1, 5]])]), atol=1e-12)
    np.testing.assert_allclose(difference(a, a)(x), 0.0, atol=1e-12)
    with pytest.raises(NetworkError):
        side_by_side([a, random_mlp(rng, [2, 3, 1])])
    with pytest.raises(NetworkError):
        difference(a, b)


def _masks_from_samples(net: Network, box: Box, n: int = 20000):
    """Never / always masks that hold on the samples AND by the sign of the true pre-activation everywhere
    (the nets below are built so that sampling sees the whole story: wide margins)."""
    z = net.forward(box.sample(n, np.random.default_rng(1))).pre_activations
    return [(zl <= 0).all(axis=0) for zl in z], [(zl >= 0).all(axis=0) for zl in z]


@pytest.mark.parametrize("kind", ["mlp", "residual", "linear-layer", "dead-layer"])
def test_fold_stable_is_the_same_function_where_the_statuses_hold(kind):
    rng = np.random.default_rng(3)
    if kind == "mlp":
        net = random_mlp(rng, [3, 8, 8, 2])
    elif kind == "residual":
        net = random_residual(rng, 3, 5, 3, 2)
    elif kind == "linear-layer":  # every neuron of layer 1 is on: the layer disappears into its neighbours
        w1, w2, w3 = rng.normal(size=(6, 3)), rng.normal(size=(5, 6)), rng.normal(size=(2, 5))
        net = Network.mlp([(w1, np.zeros(6)), (w2 * 0.1, np.full(5, 20.0)), (w3, np.zeros(2))])
    else:  # every neuron of layer 0 is off: the output is constant
        w1, w2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
        net = Network.mlp([(w1 * 0.1, np.full(4, -20.0)), (w2, np.ones(2))])
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    never, always = _masks_from_samples(net, box)
    small = fold_stable(net, never, always)
    kept = sum(int((~n & ~a).sum()) for n, a in zip(never, always))
    assert sum(small.widths) == kept
    assert all(w > 0 for w in small.widths)  # no empty layers
    x = box.sample(5000, np.random.default_rng(2))
    np.testing.assert_allclose(small(x), net(x), atol=1e-9)
    if kind == "linear-layer":
        assert len(small.widths) == len(net.widths) - 1
    if kind == "dead-layer":
        assert small.widths == () and np.ptp(small(x), axis=0).max() == 0.0


def test_fold_stable_rejects_masks_of_the_wrong_shape():
    net = random_mlp(np.random.default_rng(0), [2, 3, 1])
    with pytest.raises(NetworkError):
        fold_stable(net, [np.zeros(2, dtype=bool)], [np.zeros(3, dtype=bool)])
    with pytest.raises(NetworkError):
        fold_stable(net, [], [])
