"""The whole-layer feature report against independent truth: the brute-force LP oracle's exact
maximum and minimum of every neuron's pre-activation, and dense sampling."""

from __future__ import annotations

import numpy as np
import pytest

import oracle
from milp import Box, Network
from milp.core.conditions import value_form
from milp.core.errors import InputError
from milp.search.features import feature_report
from nets import random_mlp, random_residual, un_relu_toy


def _dead_and_linear(rng) -> Network:
    """2 -> 6 -> 5 -> 1 with neurons pushed off (bias -4) and on (bias +4) over [-1, 1]^2."""
    w1, b1 = rng.normal(size=(6, 2)), np.array([-4.0, 4.0, 0.1, -0.2, 3.0, -3.0])
    w2, b2 = rng.normal(size=(5, 6)) / 2, np.array([-6.0, 6.0, 0.0, 0.3, -0.1])
    return Network.mlp([(w1, b1), (w2, b2), (rng.normal(size=(1, 5)), np.zeros(1))])


def _nets():
    rng = np.random.default_rng(11)
    yield "mlp", random_mlp(rng, [2, 5, 4, 2]), Box(np.full(2, -1.0), np.full(2, 1.0))
    yield "residual", random_residual(rng, 2, 3, 2, 2), Box(np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    yield "small-box", random_mlp(rng, [3, 5, 4, 1]), Box(np.full(3, 0.1), np.full(3, 0.3))
    yield "dead-and-linear", _dead_and_linear(rng), Box(np.full(2, -1.0), np.full(2, 1.0))
    yield "toy", un_relu_toy(), Box(np.full(2, -5.0), np.full(2, 5.0))


NETS = list(_nets())


def _truth(net, box, layer, neuron):
    form = value_form(net, f"z{layer}", neuron)
    top, _ = oracle.exact_max(net, box.lower, box.upper, form)
    negated = -form
    bottom, _ = oracle.exact_max(net, box.lower, box.upper, negated)
    return -bottom, top


@pytest.mark.parametrize("cheap", [True, False], ids=["samples-first", "proofs-only"])
@pytest.mark.parametrize("name,net,box", NETS, ids=[n for n, _, _ in NETS])
def test_report_equals_oracle(name, net, box, cheap):
    kwargs = {} if cheap else {"samples": 0, "starts": 0, "bounds": "interval"}
    report = feature_report(net, box, None, **kwargs)
    assert len(report.neurons) == sum(net.widths)
    samples = net.forward(box.sample(20000, np.random.default_rng(3))).pre_activations
    seen = set()
    for n in report.neurons:
        seen.add((n.layer, n.neuron))
        low, high = _truth(net, box, n.layer, n.neuron)
        # proved bounds hold: never tighter than the exact extremes or any sample
        assert n.lower_bound <= low + 1e-9 and n.upper_bound >= high - 1e-9
        assert samples[n.layer][:, n.neuron].max() <= n.upper_bound + 1e-9
        assert samples[n.layer][:, n.neuron].min() >= n.lower_bound - 1e-9
        expected = "never" if high <= 1e-9 else ("always" if low >= -1e-9 else "fires")
        assert n.status == expected, (n, low, high)
        if n.status in ("fires", "always"):
            assert box.contains(n.witness)
            z = net.forward(n.witness).pre_activations[n.layer][n.neuron]
            assert z > 0 and z == pytest.approx(n.value, abs=1e-12)
        else:
            assert n.witness is None
    assert seen == {(layer, k) for layer, w in enumerate(net.widths) for k in range(w)}


def test_report_has_every_status_and_counts_them():
    name, net, box = NETS[3]
    report = feature_report(net, box)
    counts = report.counts()
    assert counts["never"] >= 1 and counts["always"] >= 1 and counts["fires"] >= 1 and counts["unknown"] == 0
    assert sum(counts.values()) == sum(net.widths)
    never, always = report.status_masks(net)
    assert int(sum(m.sum() for m in never)) == counts["never"] and int(sum(m.sum() for m in always)) == counts["always"]
    data = report.to_json()
    assert data["counts"] == counts and len(data["neurons"]) == sum(net.widths)


def test_one_layer_and_progress():
    name, net, box = NETS[0]
    calls = []
    report = feature_report(net, box, 1, progress=lambda done, total: calls.append((done, total)))
    assert report.layers == (1,) and {n.layer for n in report.neurons} == {1}
    assert calls and calls[-1] == (net.widths[1], net.widths[1])


def test_time_limit_gives_unknown_never_a_guess():
    rng = np.random.default_rng(5)
    net = random_mlp(rng, [12, 40, 40, 40, 1])
    box = Box(np.full(12, -1.0), np.full(12, 1.0))
    report = feature_report(net, box, 2, samples=0, starts=0, bounds="interval", time_limit=0.5)
    assert report.seconds < 30
    for n in report.neurons:
        if n.status == "unknown":
            assert n.witness is None
        if n.status in ("fires", "always"):
            assert net.forward(n.witness).pre_activations[2][n.neuron] > 0


@pytest.mark.parametrize("layer", [5, -1, [0, 7]])
def test_unknown_layer_is_an_input_error(layer):
    name, net, box = NETS[0]
    with pytest.raises(InputError, match="no ReLU layer"):
        feature_report(net, box, layer)
