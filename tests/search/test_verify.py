"""milp.search.verify: verdicts against independent truth, witnesses, timeouts (``milp vnnlib`` is in tests/cli)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import oracle
from nets import island_network, property_text, random_mlp

from importers import OnnxReference, load_onnx
from milp.core.network import Affine, Network
from milp.search.verify import Verdict, VerifyError, verify
from milp.io.vnnlib import check_counterexample, read_vnnlib

from conftest import ACASXU, ACASXU_SKIP  # $MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu
needs_acasxu = pytest.mark.skipif(not (ACASXU / "instances.csv").exists(), reason=ACASXU_SKIP)


# ------------------------------------------------------------------ helpers
def oracle_reachable(network: Network, prop) -> bool:
    """Brute force over activation regions: is some disjunct reachable?"""
    output = network.output
    for d in prop.disjuncts:
        conditions = []
        for c, rhs in zip(d.output_rows, d.output_rhs):  # c . y <= rhs  as  rhs - c . y >= 0
            form = Affine(tuple((s, -(c @ m)[None, :]) for s, m in output.terms), np.array([rhs - c @ output.bias]))
            conditions.append((form, False))
        if oracle.reachable(network, d.box.lower, d.box.upper, conditions):
            return True
    return False


def assert_witness(network: Network, prop, verdict: Verdict) -> None:
    """The counterexample lies in a disjunct's box and its float64 output meets the rows there."""
    assert verdict.result == "sat" and verdict.x is not None
    y = network.forward(verdict.x[None, :]).output[0]
    assert any(d.box.contains(verdict.x) and np.all(d.output_rows @ y <= d.output_rhs + 1e-9) for d in prop.disjuncts)
    assert check_counterexample(prop, verdict.x, verdict.y, tol=1e-4)


def sampled_max(network: Network, box, c: np.ndarray, rng) -> float:
    x = rng.uniform([b[0] for b in box], [b[1] for b in box], size=(20000, len(box)))
    return float((network.forward(x).output @ c).max())


# ------------------------------------------------------------------ verdicts against the oracle
@pytest.mark.parametrize("seed", range(24))
def test_random_networks_agree_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    network = random_mlp(rng, [2, 5, 4, 3])
    box = [(-1.0, 1.0), (-0.5, 1.5)]
    disjuncts = []
    for _ in range(1 + seed % 3):  # one to three disjuncts, one or two rows each
        rows = []
        for _ in range(1 + rng.integers(2)):
            c = rng.integers(-2, 3, size=3).astype(float)
            c[rng.integers(3)] = 1.0
            # a threshold near the sampled extreme, so that both answers occur
            top = sampled_max(network, box, -c, rng)
            rows.append((c, -top + float(rng.choice([-0.3, -0.05, 0.05, 0.3]))))
        disjuncts.append(rows)
    prop = read_vnnlib(property_text(2, 3, box, disjuncts), 2, 3)
    truth = oracle_reachable(network, prop)
    verdict = verify(network, prop, timeout=30, seed=seed)
    assert verdict.result == ("sat" if truth else "unsat"), (seed, verdict)
    if truth:
        assert_witness(network, prop, verdict)


@pytest.mark.parametrize("seed", range(6))
def test_deeper_networks_agree_with_the_exact_milp(seed):
    from milp.search.queries import reach

    rng = np.random.default_rng(100 + seed)
    network = random_mlp(rng, [3, 8, 8, 8, 2])
    box = [(-1.0, 1.0)] * 3
    c = np.array([1.0, -1.0])
    threshold = sampled_max(network, box, c, rng) + float(rng.choice([-0.2, 0.02, 0.2]))
    prop = read_vnnlib(property_text(3, 2, box, [[(-c, -threshold)]]), 3, 2)  # y0 - y1 >= threshold
    verdict = verify(network, prop, timeout=60, seed=seed)
    exact = reach(network, prop.disjuncts[0].box, [f"y[0] - y[1] >= {threshold!r}"], time_limit=60)
    assert exact.status in ("sat", "unsat")
    assert verdict.result == exact.status
    if verdict.result == "sat":
        assert_witness(network, prop, verdict)


def test_a_counterexample_on_a_tiny_island_is_found_by_the_search_not_by_sampling():
    centre = np.array([0.31234, -0.71717])
    network = island_network(centre, 1000.0)
    box = [(-1.0, 1.0), (-1.0, 1.0)]
    sat = read_vnnlib(property_text(2, 1, box, [[(np.array([-1.0]), -0.99)]]), 2, 1)  # y >= 0.99
    # the island {y >= 0.99} is a diamond of radius 1e-5: samples and gradients (zero outside) miss it
    rng = np.random.default_rng(0)
    assert network.forward(rng.uniform(-1, 1, (200000, 2))).output.max() < 0.99
    verdict = verify(network, sat, timeout=30)
    assert_witness(network, sat, verdict)
    assert np.abs(verdict.x - centre).sum() <= 1e-5 + 1e-9
    unsat = read_vnnlib(property_text(2, 1, box, [[(np.array([-1.0]), -1.001)]]), 2, 1)  # y >= 1.001
    assert verify(network, unsat, timeout=30).result == "unsat"


def test_a_disjunct_with_no_output_rows_is_sat_anywhere_in_its_box():
    network = random_mlp(np.random.default_rng(1), [2, 3, 1])
    text = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n" \
           "(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)))\n(assert (or (<= Y_0 1e9) (<= Y_0 -1e9)))\n"
    prop = read_vnnlib(text, 2, 1)
    assert verify(network, prop, timeout=10).result == "sat"


def test_a_tiny_timeout_answers_timeout_never_a_guess():
    rng = np.random.default_rng(7)
    network = random_mlp(rng, [5, 40, 40, 40, 1])
    box = [(-1.0, 1.0)] * 5
    # y >= (the best value seen) + 0.01, raised while the search still finds a point: the last
    # threshold is out of the search's reach and too close to the maximum to prove in 0.3 s
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * 5)).reshape(5, -1).T
    points = np.vstack([corners, rng.uniform(-1, 1, (20000, 5))])
    best = float(network.forward(points).output.max())
    for _ in range(20):
        prop = read_vnnlib(property_text(5, 1, box, [[(np.array([-1.0]), -(best + 0.01))]]), 5, 1)
        started = time.perf_counter()
        verdict = verify(network, prop, timeout=0.3)
        if verdict.result != "sat":
            break
        assert_witness(network, prop, verdict)
        best = float(network.forward(verdict.x[None, :]).output[0, 0])
    assert verdict.result == "timeout", verdict
    assert verdict.x is None and verdict.counterexample_text() == "timeout"
    assert time.perf_counter() - started < 2.0


def test_bad_arguments_raise_verify_error():
    network = random_mlp(np.random.default_rng(0), [2, 3, 2])
    prop = read_vnnlib(property_text(3, 2, [(0, 1)] * 3, [[(np.array([1.0, -1.0]), 0.0)]]), 3, 2)
    with pytest.raises(VerifyError, match="3 inputs"):
        verify(network, prop, timeout=1)
    good = read_vnnlib(property_text(2, 2, [(0, 1)] * 2, [[(np.array([1.0, -1.0]), 0.0)]]), 2, 2)
    with pytest.raises(VerifyError, match="timeout"):
        verify(network, good, timeout=0)


def test_a_counterexample_the_reference_refuses_is_not_reported():
    network = island_network(np.array([0.5, 0.5]), 10.0)
    prop = read_vnnlib(property_text(2, 1, [(0, 1), (0, 1)], [[(np.array([-1.0]), -0.5)]]), 2, 1)
    liar = lambda x: network.forward(x).output - 1.0  # noqa: E731  a reference that disagrees everywhere
    verdict = verify(network, prop, timeout=3, reference=liar)
    assert verdict.result in ("unknown", "timeout")
    assert verdict.x is None


# ------------------------------------------------------------------ ACAS Xu
def acas(net: str, prop: int):
    model = ACASXU / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx"
    network = load_onnx(model)
    return network, OnnxReference(model), read_vnnlib(ACASXU / "vnnlib" / f"prop_{prop}.vnnlib", 5, 5), model


@needs_acasxu
@pytest.mark.parametrize("net, prop", [("2_1", 2), ("1_7", 3)])
def test_acasxu_sat_counterexample_holds_on_onnxruntime(net, prop):
    network, reference, vnnlib, model = acas(net, prop)
    verdict = verify(network, vnnlib, timeout=60, reference=reference)
    assert verdict.result == "sat"
    # re-checked here through a fresh onnxruntime session, in float32 as the file is
    y = OnnxReference(model)(verdict.x[None, :].astype(np.float32).astype(np.float64)).reshape(-1)
    assert check_counterexample(vnnlib, verdict.x, y, tol=1e-4)
    np.testing.assert_allclose(y, verdict.y, atol=1e-5)


@needs_acasxu
@pytest.mark.parametrize("net, prop", [("1_1", 1), ("2_3", 3), ("5_5", 4)])
def test_acasxu_known_unsat(net, prop):
    network, reference, vnnlib, _ = acas(net, prop)
    assert verify(network, vnnlib, timeout=60, reference=reference).result == "unsat"


@needs_acasxu
def test_acasxu_hard_instance_with_a_short_timeout_says_timeout():
    network, reference, vnnlib, _ = acas("3_3", 2)
    started = time.perf_counter()
    verdict = verify(network, vnnlib, timeout=1.0, reference=reference)
    assert verdict.result == "timeout"
    assert time.perf_counter() - started < 3.0
