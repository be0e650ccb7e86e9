"""The proof engine's optimised bounds, neuron branching and portfolio, against independent truth.

* Optimised relaxations (per-row lower slopes, multipliers of split neurons): every bound lies
  above every sampled value of the sub-problem (points of the box on the split's side), on
  plain and residual nets, and is never looser than CROWN's fixed slopes.
* Optimised intermediate bounds hold every sampled pre-activation of the split sub-problem.
* The engine's margin bounds over input sub-boxes, tuned where the disjuncts stay open, hold every
  sampled margin and are never looser than the untuned ones.
* Their gradient is the finite difference of the bound.
* Neuron branching proves the same maxima as the plain big-M MILP, and the same verdicts as the
  brute-force oracle; a split's ``z <= 0`` is a row of the sub-problem's MILP.
* The background MILP of the portfolio (a child process) gives the answer of a foreground solve,
  and stops when cancelled with a bound above every sampled value.
* A search stopped at any point reports a bound at or above the true maximum.
* Past its memory budget the stack stops growing best-first, and proves the same maximum.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace

import numpy as np
import pytest

import oracle
from milp import Box, parse_conditions
from milp.bounds.propagate import BatchBounder, Bounds, interval_bounds
from milp.core.conditions import value_form
from milp.core.deadline import Deadline
from milp.core.network import Affine, Network
from milp.core.options import SolverOptions
from milp.encode.bigm import affine_row, build_milp
from milp.search.branch import BranchAndBound, Boxes, Objective, OutOfTime, Settings
from milp.search.exact import Maximum, milp_maximum
from milp.search.queries import QUERY_SETTINGS, _better, _branch_maximum, maximize, reach
from milp.solvers.highs import BackgroundSolve, HighsSolver, Status
from nets import random_mlp, random_residual


def _split_boxes(network, rng, n=6, splits=3):
    """n random sub-boxes of [-1, 1]^d, each with up to ``splits`` unstable neurons fixed to a random
    phase through their bounds (``lower = 0`` active, ``upper = 0`` inactive), and their bounds."""
    d = network.input_dim
    lo = rng.uniform(-1.0, 0.0, (n, d))
    hi = lo + rng.uniform(0.3, 1.0, (n, d))
    bounder = BatchBounder(network)
    neurons = network.neuron_count
    free = (np.full((n, neurons), -np.inf), np.full((n, neurons), np.inf))
    lowers, uppers, _ = bounder.neuron_bounds(lo, hi, *free)
    lower, upper = np.concatenate(lowers, axis=1), np.concatenate(uppers, axis=1)
    known_lower, known_upper = free[0].copy(), free[1].copy()
    phases = np.zeros((n, neurons), dtype=int)
    for i in range(n):
        unstable = np.flatnonzero((lower[i] < 0) & (upper[i] > 0))
        for j in rng.choice(unstable, size=min(splits, unstable.size), replace=False):
            phases[i, j] = rng.choice([1, -1])
            if phases[i, j] > 0:
                known_lower[i, j] = 0.0
            else:
                known_upper[i, j] = 0.0
    lowers, uppers, relaxations = bounder.neuron_bounds(lo, hi, known_lower, known_upper)
    return bounder, lo, hi, phases, lowers, uppers, relaxations


def _small_network(kind: str, rng):
    """A plain ("mlp") or residual 3-input net with three hidden layers of 10 and 2 outputs."""
    return random_mlp(rng, [3, 10, 10, 10, 2]) if kind == "mlp" else random_residual(rng, 3, 10, 4, 2)


def _on_split_side(network, x, phases_row):
    z = np.concatenate(network.forward(x).pre_activations, axis=1)
    keep = np.ones(x.shape[0], dtype=bool)
    for j in np.flatnonzero(phases_row):
        keep &= z[:, j] >= 0 if phases_row[j] > 0 else z[:, j] <= 0
    return keep


def _sampled_subproblems(network, rng, lo, hi, phases, count=40000):
    """(box index, forward trace of the points) for each box with sampled points on its splits' side."""
    for i in range(lo.shape[0]):
        x = lo[i] + rng.random((count, lo.shape[1])) * (hi[i] - lo[i])
        keep = _on_split_side(network, x, phases[i])
        if keep.any():
            yield i, network.forward(x[keep])


def test_a_tuning_iterate_gone_infinite_is_dropped_without_a_warning(monkeypatch):
    """An infinite gradient from step 3 on (an overflow in float32) turns the iterates NaN: none of
    them is kept, no RuntimeWarning reaches the user, and the bound is the best finite iterate's."""
    rng = np.random.default_rng(4)
    network = _small_network("mlp", rng)
    bounder, lo, hi, phases, lowers, uppers, relaxations = _split_boxes(network, rng)
    form = network.output
    fixed, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 0)
    clean, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 3)
    real, calls = BatchBounder._gradients, []

    def overflowing(self, *args):
        calls.append(1)
        return [(layer, gz * (np.inf if len(calls) > 3 else 1.0), c) for layer, gz, c in real(self, *args)]

    monkeypatch.setattr(BatchBounder, "_gradients", overflowing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tuned, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 12)
    assert len(calls) == 12 and np.isfinite(tuned).all()
    assert np.all(tuned <= fixed + 1e-6 * (1 + np.abs(fixed)))
    assert np.allclose(tuned, clean, rtol=1e-5, atol=1e-6)  # the first 3 steps' iterates, no later one
    for i, trace in _sampled_subproblems(network, rng, lo, hi, phases):
        assert np.all(trace.output.max(axis=0) <= tuned[i] + 1e-9 * (1 + np.abs(tuned[i])))


@pytest.mark.parametrize("kind", ["mlp", "residual"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_warm_start_resumes_the_tuning_and_any_start_stays_sound(kind, seed):
    rng = np.random.default_rng(seed)
    network = _small_network(kind, rng)
    bounder, lo, hi, phases, lowers, uppers, relaxations = _split_boxes(network, rng)
    form = network.output
    one_step, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 1)
    cold = (np.full((lo.shape[0], form.out_dim, network.neuron_count), np.nan, dtype=np.float32),
            np.zeros((lo.shape[0], form.out_dim, network.neuron_count), dtype=np.float32))
    tuned, _, _, (slopes, multipliers) = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 25, warm=cold)
    assert slopes.shape == multipliers.shape == (lo.shape[0], form.out_dim, network.neuron_count)
    assert np.all((np.isnan(slopes)) | ((slopes >= 0) & (slopes <= 1))) and np.all(multipliers >= 0)
    # one step from the best iterate is as tight as the 25 steps (one step from CROWN's is not)
    resumed, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 1, warm=(slopes, multipliers))
    assert np.all(resumed <= tuned + 1e-5 * (1 + np.abs(tuned)))
    assert np.any(one_step > tuned + 1e-3)
    # any start (slopes in [0, 1] or none, multipliers >= 0) gives a bound above every sample
    wild = np.where(rng.random(slopes.shape) < 0.3, np.nan, rng.random(slopes.shape)).astype(np.float32)
    scale = rng.exponential(2.0, multipliers.shape).astype(np.float32)
    for start in ((wild, scale), (wild, np.zeros_like(scale))):
        bound, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 3, warm=start)
        checked = 0
        for i, trace in _sampled_subproblems(network, rng, lo, hi, phases, count=20000):
            assert np.all(trace.output.max(axis=0) <= bound[i] + 1e-9 * (1 + np.abs(bound[i])))
            checked += 1
        assert checked >= 3


@pytest.mark.parametrize("kind", ["mlp", "residual"])
@pytest.mark.parametrize("seed", [0, 1])
def test_tuning_stops_for_boxes_that_close_or_cannot_and_the_others_go_on_unchanged(kind, seed):
    rng = np.random.default_rng(seed)
    network = _small_network(kind, rng)
    bounder, lo, hi, phases, lowers, uppers, relaxations = _split_boxes(network, rng, n=24)
    form = network.output
    tuned = {steps: bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, steps)[0] for steps in (1, 8, 32)}
    # half of the boxes close at once (any bound is below +inf) and leave the iterations; the other
    # half, whose level is far below any bound they could reach, go on without them until the pace
    # check drops them at step 8, each with the bound it would have had alone
    group = np.arange(lo.shape[0]) % 2
    enough = np.where(group[:, None] == 0, np.inf, tuned[32] - 1e3)
    early, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 32, enough=enough)
    close = lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert close(early[group == 0], tuned[1][group == 0])  # stopped after the first step
    assert close(early[group == 1], tuned[8][group == 1])  # abandoned at step 8, the pace being far too slow
    assert np.any(tuned[1] > tuned[8] + 1e-3) and np.any(tuned[8] > tuned[32] + 1e-3)  # the three really differ
    checked = 0
    for i, trace in _sampled_subproblems(network, rng, lo, hi, phases, count=20000):
        assert np.all(trace.output.max(axis=0) <= early[i] + 1e-9 * (1 + np.abs(early[i])))
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("kind", ["mlp", "residual"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimised_bounds_lie_above_every_sample_of_the_split_subproblem(kind, seed):
    rng = np.random.default_rng(seed)
    network = _small_network(kind, rng)
    bounder, lo, hi, phases, lowers, uppers, relaxations = _split_boxes(network, rng)
    form = network.output
    fixed, *_ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 0)
    tuned, on_x, weights, _ = bounder.optimised_upper(form, lo, hi, lowers, uppers, relaxations, 25)
    assert tuned.dtype == np.float64 and on_x.dtype == np.float64  # float32 iterations, float64 bound
    # the first iterate is CROWN's: never looser, up to the float32 resolution the best iterate is picked at
    assert np.all(tuned <= fixed + 1e-6 * (1 + np.abs(fixed)))
    assert np.any(tuned < fixed - 1e-6)  # and the steps do tighten
    checked = 0
    for i, trace in _sampled_subproblems(network, rng, lo, hi, phases):
        assert np.all(trace.output.max(axis=0) <= tuned[i] + 1e-9 * (1 + np.abs(tuned[i])))
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("kind", ["mlp", "residual"])
@pytest.mark.parametrize("seed", [0, 1])
def test_optimised_intermediate_bounds_hold_every_sampled_pre_activation(kind, seed):
    rng = np.random.default_rng(10 + seed)
    network = _small_network(kind, rng)
    bounder, lo, hi, phases, lowers, uppers, _ = _split_boxes(network, rng)
    known_lower, known_upper = np.concatenate(lowers, axis=1), np.concatenate(uppers, axis=1)
    tuned_lowers, tuned_uppers, _ = bounder.optimised_neuron_bounds(lo, hi, known_lower, known_upper, 20)
    tuned_lower, tuned_upper = np.concatenate(tuned_lowers, axis=1), np.concatenate(tuned_uppers, axis=1)
    assert np.all(tuned_lower >= known_lower) and np.all(tuned_upper <= known_upper)  # never looser than CROWN's
    assert np.any(tuned_upper < known_upper - 1e-6)  # and tighter somewhere
    checked = 0
    for i, trace in _sampled_subproblems(network, rng, lo, hi, phases):
        z = np.concatenate(trace.pre_activations, axis=1)
        assert np.all(z.max(axis=0) <= tuned_upper[i] + 1e-9) and np.all(z.min(axis=0) >= tuned_lower[i] - 1e-9)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("seed", [0, 1])
def test_tuned_margin_bounds_over_input_boxes_hold_every_sampled_margin(seed):
    """Two disjuncts, (y0 - y1, y0 - y2) and (y1 - y2), over random sub-boxes; the threshold closes
    some boxes before tuning, so the tuning runs on the others only."""
    rng = np.random.default_rng(20 + seed)
    network = random_mlp(rng, [3, 10, 10, 10, 3])
    pick = np.array([[1.0, -1.0, 0.0], [1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    form = Affine(tuple((s, pick @ m) for s, m in network.output.terms), pick @ network.output.bias)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    objective = Objective.of_rows(box, form, [0, 2])
    n = 16
    lo = rng.uniform(-1.0, 0.5, (n, 3))
    hi = np.minimum(lo + rng.uniform(0.05, 0.3, (n, 3)), 1.0)
    per = {}
    for steps in (0, 25):
        engine = BranchAndBound(network, objective, lambda *a: None, lambda *a: "closed", Deadline.after(60),
                                Settings(branching="input", input_steps=steps))
        free = np.full((n, network.neuron_count), np.inf)
        lowers, uppers, relaxations = engine.bounder.neuron_bounds(lo, hi, -free, free)
        if steps == 0:
            engine.threshold = float(np.median(engine.margin_upper(lo, hi, lowers, uppers, relaxations)[0].max(axis=1)))
            threshold = engine.threshold
        else:
            engine.threshold = threshold
        per[steps] = engine.margin_upper(lo, hi, lowers, uppers, relaxations)[0]
    closed = np.all(per[0] < threshold, axis=1)
    assert closed.any() and not closed.all()
    assert np.all(per[25] <= per[0])  # never looser
    assert np.array_equal(per[25][closed], per[0][closed])  # closed boxes are not tuned
    assert np.any(per[25] < per[0] - 1e-6)  # and the tuning tightens some open one
    for i in range(n):
        x = lo[i] + rng.random((20000, 3)) * (hi[i] - lo[i])
        trace = network.forward(x)
        margins = objective.per_disjunct(objective.row_values([trace.inputs, *trace.activations]))
        assert np.all(margins.max(axis=0) <= per[25][i] + 1e-9 * (1 + np.abs(per[25][i])))


@pytest.mark.parametrize("where", ["hidden", "output"])
def test_weights_beyond_float32_range_are_tuned_in_float64(where):
    """A weight of 1e39 is infinite in float32: the tuning then runs in float64 (a hidden layer's weight
    is seen once per network, an objective row's at each call), and its bounds stay finite and sound."""
    rng = np.random.default_rng(3)
    network = random_mlp(rng, [3, 10, 10, 2])
    layers, output = list(network.relu_layers), network.output
    if where == "hidden":
        layers[1] = Affine(tuple((s, m * 1e39) for s, m in layers[1].terms), layers[1].bias * 1e39)
    else:
        output = Affine(tuple((s, m * 1e39) for s, m in output.terms), output.bias * 1e39)
    scaled = Network(network.input_dim, tuple(layers), output)
    bounder, lo, hi, phases, lowers, uppers, relaxations = _split_boxes(scaled, rng)
    assert BatchBounder(network).tuning == np.float32
    assert bounder.tuning == (np.float64 if where == "hidden" else np.float32)
    fixed, *_ = bounder.optimised_upper(scaled.output, lo, hi, lowers, uppers, relaxations, 0)
    tuned, *_ = bounder.optimised_upper(scaled.output, lo, hi, lowers, uppers, relaxations, 10)
    assert np.all(np.isfinite(tuned)) and np.all(tuned <= fixed)
    assert np.any(tuned < fixed - 1e-6 * np.abs(fixed))  # tuned, not left at CROWN's slopes by infinities
    for i, trace in _sampled_subproblems(scaled, rng, lo, hi, phases, count=5000):
        assert np.all(trace.output.max(axis=0) <= tuned[i] + 1e-9 * (1 + np.abs(tuned[i])))


def test_the_gradient_of_the_bound_is_its_finite_difference():
    rng = np.random.default_rng(4)
    network = random_mlp(rng, [3, 12, 12, 12, 2])
    bounder, lo, hi, _, lowers, uppers, relaxations = _split_boxes(network, rng, n=3)
    rows = network.output_dim
    slopes = [rng.uniform(0.0, 1.0, (3, rows, r[3].size)) for r in relaxations]
    met: list = []
    value, on_x, _ = bounder._back_substitute(dict(network.output.terms), network.output.bias, lo, hi, relaxations, slopes, None, met)
    gradients = bounder._gradients(met, on_x, lo, hi, relaxations, slopes)
    compared = 0
    for layer, gz, c in gradients:
        analytic = gz * np.minimum(c, 0.0)
        unstable = (lowers[layer][:, relaxations[layer][3]] < 0) & (uppers[layer][:, relaxations[layer][3]] > 0)
        for box, neuron in zip(*np.nonzero(unstable)):
            if abs(analytic[box, 0, neuron]) < 1e-6:
                continue
            moved = [s.copy() for s in slopes]
            moved[layer][box, 0, neuron] += 1e-6
            shifted, _, _ = bounder._back_substitute(dict(network.output.terms), network.output.bias, lo, hi, relaxations, moved)
            assert (shifted[box, 0] - value[box, 0]) / 1e-6 == pytest.approx(analytic[box, 0, neuron], rel=1e-3, abs=1e-6)
            compared += 1
            break
    assert compared >= 2


NEURONS = replace(QUERY_SETTINGS, branching="neuron", leaf_unstable=4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_neuron_branching_proves_the_plain_milp_maximum(seed):
    rng = np.random.default_rng(seed)
    network = random_mlp(rng, [4, 8, 8, 1])
    box = Box(np.full(4, -1.0), np.full(4, 1.0))
    form = value_form(network, "y", 0)
    plain = milp_maximum(network, box, interval_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
    found = maximize(network, box, form, portfolio=False, settings=NEURONS, deadline=Deadline.after(60))
    assert plain.status == found.status == "optimal"
    assert found.value == pytest.approx(plain.value, rel=1e-6, abs=1e-7)
    assert found.subproblems > 1  # the branching ran, not just the root


@pytest.mark.parametrize("trial_dims", [0, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_trial_splits_over_a_shortlist_of_inputs_prove_the_plain_milp_maximum(seed, trial_dims):
    """Five inputs: trial splits along every input, or along the two with the largest |slope| x width."""
    rng = np.random.default_rng(20 + seed)
    network = random_mlp(rng, [5, 10, 10, 1])
    box = Box(np.full(5, -1.0), np.full(5, 1.0))
    form = value_form(network, "y", 0)
    plain = milp_maximum(network, box, interval_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
    settings = replace(QUERY_SETTINGS, split="trial", trial_dims=trial_dims, input_steps=4)
    found = maximize(network, box, form, portfolio=False, settings=settings, deadline=Deadline.after(60))
    assert plain.status == found.status == "optimal"
    assert found.value == pytest.approx(plain.value, rel=1e-6, abs=1e-7)
    assert found.subproblems > 10  # the boxes were split, not closed at the root


@pytest.mark.parametrize("seed", range(8))
def test_neuron_branching_verdicts_match_the_oracle(seed):
    """Conditions just inside and just beyond the exact maximum of y0 - y1 (the oracle's regions);
    odd seeds recompute CROWN's bounds in every sub-problem instead of keeping the root's."""
    rng = np.random.default_rng(seed)
    network = random_mlp(rng, [2, 6, 6, 2])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    gap = Affine(tuple((s, m[:1] - m[1:2]) for s, m in network.output.terms), network.output.bias[:1] - network.output.bias[1:2])
    top, _ = oracle.exact_max(network, box.lower, box.upper, gap)
    for threshold in (top - 1e-3, top + 1e-3):
        conditions = parse_conditions(network, [f"y[0] - y[1] >= {threshold!r}"])
        truth = "sat" if oracle.reachable(network, box.lower, box.upper, conditions) else "unsat"
        settings = NEURONS if seed % 2 == 0 else replace(NEURONS, root_steps=0)
        answer = reach(network, box, conditions, samples=0, split_inputs=True, settings=settings)
        assert answer.status == truth


def test_a_split_inactive_neuron_is_a_row_of_the_milp():
    rng = np.random.default_rng(7)
    network = random_mlp(rng, [2, 8, 1])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    bounds = interval_bounds(network, box)
    neuron = int(np.flatnonzero((bounds.lower[0] < 0) & (bounds.upper[0] > 0))[0])
    upper = [u.copy() for u in bounds.upper]
    upper[0][neuron] = 0.0  # the branch's split: z <= 0 on this sub-problem
    split = Bounds(bounds.lower, tuple(upper), "split")
    form = value_form(network, "y", 0)
    found = milp_maximum(network, box, split, form, None, Deadline.after(30), SolverOptions())
    x = box.sample(200000, rng)
    z = network.forward(x).pre_activations[0][:, neuron]
    truth = float(network.forward(x[z <= 0]).output[:, 0].max())
    assert found.status == "optimal"
    assert network.forward(found.x[None, :]).pre_activations[0][0, neuron] <= 1e-9
    assert truth <= found.value + 1e-9
    assert found.value - truth < 0.05  # dense sampling comes close to the proved maximum


def test_a_background_solve_answers_as_a_foreground_one():
    rng = np.random.default_rng(3)
    network = random_mlp(rng, [2, 10, 10, 1])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    model = build_milp(network, box, interval_bounds(network, box))
    columns, coefficients, constant = affine_row(model.layout, value_form(network, "y", 0))
    solver = HighsSolver(model)
    solver.set_objective(columns, coefficients, constant, maximize=True)
    foreground = solver.solve(Deadline.after(30))
    background = BackgroundSolve(model, SolverOptions(), (columns, coefficients, constant, True), Deadline.after(30))
    answer = background.join()
    assert background.finished()
    assert foreground.status == answer.status == "optimal"
    assert answer.objective == pytest.approx(foreground.objective, rel=1e-9)
    assert np.allclose(answer.values, foreground.values, atol=1e-6)


def test_an_arms_proof_refuted_by_the_other_arms_point_is_not_reported():
    """A solver's proof below a checked point of the other arm (HiGHS 1.16 gave one) is dropped; its
    unrefuted peer's bound stands."""
    x = np.zeros(2)
    wrong = Maximum("optimal", 4.208, x, 4.208, 1, 1)
    searching = Maximum("unknown", 4.4593, x, 4.89, 10, 2)
    for one, other in ((wrong, searching), (searching, wrong)):
        merged = _better(one, other)
        assert merged.status == "unknown" and merged.value == 4.4593 and merged.upper_bound == 4.89
    sound = Maximum("optimal", 4.4593, x, 4.4593, 1, 1)
    assert _better(sound, searching).status == "optimal" and _better(searching, sound).upper_bound == 4.4593
    assert _better(wrong, Maximum("unknown", 4.208, x, None, 1, 1)).status == "optimal"  # nothing refutes it


@pytest.mark.parametrize("best_every", [0, 1])
@pytest.mark.parametrize("branching", ["input", "neuron"])
def test_a_search_stopped_anywhere_reports_a_bound_above_the_maximum(branching, best_every):
    """The stop comes at the k-th clock check (mid-batch, mid-attack, inside a leaf): the boxes being
    split then must count in the reported bound as much as those waiting on the stack."""
    rng = np.random.default_rng(5)
    network = random_mlp(rng, [2, 8, 8, 1])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    form = value_form(network, "y", 0)
    truth, _ = oracle.exact_max(network, box.lower, box.upper, form)
    settings = replace(QUERY_SETTINGS, branching=branching, leaf_unstable=1, best_every=best_every)
    bounded = 0
    for stop_at in range(1, 400, 7):
        checks = iter(range(stop_at))
        found = _branch_maximum(network, box, form, "symbolic", SolverOptions(), Deadline.after(60), None, settings,
                                lambda: next(checks, None) is None)
        if found.upper_bound is not None:
            assert found.upper_bound >= truth - 1e-9, f"stopped at check {stop_at}"
            bounded += 1
        if found.value is not None:
            assert found.value <= truth + 1e-9
    assert bounded >= 10


@pytest.mark.parametrize("branching", ["input", "neuron"])
def test_past_its_memory_budget_the_stack_stops_growing_best_first_and_the_maximum_is_the_same(branching):
    """Best-first turns widen the stack; past ``stack_memory`` the search goes depth-first only. The
    proved maximum is the plain MILP's under any budget (none, one crossed midway, zero), and a
    search stopped early keeps far fewer sub-problems waiting depth-first, with a bound above every
    sampled value."""

    def accept(engine, x, value):
        engine.threshold = max(engine.threshold, value)

    def engine_for(network, form, box, stack_memory, race=None):
        def leaf(engine, sub_box, lower, upper, open_):  # the exact MILP of a sub-problem with one unstable neuron
            found = milp_maximum(network, sub_box, Bounds.from_flat(network, lower, upper, "symbolic"), form, None,
                                 engine.deadline, SolverOptions(), split=engine.neuron_branching)
            if found.status == "optimal":
                accept(engine, found.x, found.value)
            return "closed" if found.status in ("optimal", "empty") else "stuck"

        settings = replace(QUERY_SETTINGS, branching=branching, leaf_unstable=1, best_every=1, batch=4, neuron_batch=4,
                           stack_memory=stack_memory)
        return BranchAndBound(network, Objective.of_rows(box, form, [0]), accept, leaf, Deadline.after(60), settings,
                              threshold=-np.inf, moving=True, race=race)

    rng = np.random.default_rng(11)
    network = random_mlp(rng, [3, 12, 12, 1])
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    form = value_form(network, "y", 0)
    plain = milp_maximum(network, box, interval_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
    for stack_memory in (2**40, 20_000, 0):
        engine = engine_for(network, form, box, stack_memory)
        assert engine.run() == "closed"
        assert engine.threshold == pytest.approx(plain.value, rel=1e-6, abs=1e-7)
        assert engine.counters.subproblems > 20

    network = random_mlp(rng, [4, 32, 32, 32, 1])  # not proved within the clock checks below
    box = Box(np.full(4, -1.0), np.full(4, 1.0))
    form = value_form(network, "y", 0)
    sampled = network(box.sample(20_000, rng))[:, 0].max()
    peaks = []
    for stack_memory in (2**40, 0):
        checks = iter(range(3000))
        engine = engine_for(network, form, box, stack_memory, lambda: next(checks, None) is None)
        with pytest.raises(OutOfTime):
            engine.run()
        assert engine.open_upper >= sampled
        peaks.append(engine.counters.waiting)
    assert peaks[1] * 2 < peaks[0]


def test_the_best_boxes_come_from_the_chunk_holding_the_highest_bound():
    def chunk(scores):
        n = len(scores)
        return Boxes(np.zeros((n, 1)), np.ones((n, 1)), np.ones((n, 1), dtype=bool), np.zeros((n, 2)), np.zeros((n, 2)),
                     np.array(scores, dtype=float), np.zeros((n, 1)), np.full(n, -1), np.zeros((n, 1, 0)), np.zeros((n, 1, 0)))
    stack = [chunk([5.0, 1.0]), chunk([2.0, 9.0, 3.0, 7.0]), chunk([4.0])]
    taken = Boxes.pop_best(stack, 2)
    assert sorted(taken.score) == [7.0, 9.0]
    assert [list(c.score) for c in stack] == [[5.0, 1.0], [2.0, 3.0], [4.0]]  # the rest keep their places
    assert list(Boxes.pop_best(stack, 3).score) == [5.0, 1.0]  # a whole chunk when it is small enough
    assert [list(c.score) for c in stack] == [[2.0, 3.0], [4.0]]


def test_boxes_waiting_on_a_neuron_split_stack_drop_their_input_rows_and_get_the_whole_box_back():
    rng = np.random.default_rng(3)
    d, neurons = 784, 20
    box = Box(rng.uniform(0, 0.5, d), rng.uniform(0.5, 1, d))

    def chunk(n):
        return Boxes(np.tile(box.lower, (n, 1)), np.tile(box.upper, (n, 1)), rng.random((n, 2)) < 0.5,
                     rng.standard_normal((n, neurons)), rng.standard_normal((n, neurons)) + 5, rng.standard_normal(n),
                     rng.standard_normal((n, d)), rng.integers(0, neurons, n), np.zeros((n, 1, 0)), np.zeros((n, 1, 0)))

    full = [chunk(3), chunk(4)]
    stack = [c.shelved() for c in full]
    weight = lambda c: sum(getattr(c, f).nbytes for f in ("lo", "hi", "open", "lower", "upper", "score", "slope", "neuron"))  # noqa: E731
    assert all(weight(s) * 5 < weight(c) for s, c in zip(stack, full))
    taken = Boxes.pop(stack, 5).unshelved(box)  # the whole top chunk, then the top box of the one below
    expected = Boxes.concatenate([full[1], full[0].take(slice(2, 3))])
    for name in ("open", "lower", "upper", "score", "neuron"):
        assert np.array_equal(getattr(taken, name), getattr(expected, name))
    assert np.array_equal(taken.lo, expected.lo) and np.array_equal(taken.hi, expected.hi)
    assert not taken.slope.any()  # a popped box is bounded again before its slope is read
    assert taken.unshelved(box) is taken
    assert [c.count for c in stack] == [2]


def test_a_cancelled_background_solve_stops_and_keeps_a_sound_bound():
    """A MILP far too large to finish: cancelled after a moment, it answers at once (long before its
    60 s), without a proof, and any bound it reports is above every sampled value."""
    rng = np.random.default_rng(0)
    network = random_mlp(rng, [10, 64, 64, 64, 1])
    box = Box(np.full(10, -1.0), np.full(10, 1.0))
    model = build_milp(network, box, interval_bounds(network, box))
    columns, coefficients, constant = affine_row(model.layout, value_form(network, "y", 0))
    started = time.perf_counter()
    background = BackgroundSolve(model, SolverOptions(), (columns, coefficients, constant, True), Deadline.after(60))
    time.sleep(1.0)
    assert not background.finished()
    background.cancel()
    answer = background.join()
    assert time.perf_counter() - started < 30
    assert answer.status in (Status.INTERRUPTED, Status.FEASIBLE)
    sampled = float(network.forward(box.sample(20000, rng)).output[:, 0].max())
    assert answer.bound is None or answer.bound >= sampled - 1e-9


@pytest.mark.parametrize("branching", ["input", "neuron"])
def test_a_search_with_undecided_leaves_still_reports_its_proved_bound(monkeypatch, branching):
    """Every leaf's MILP answers "unknown" (as HiGHS may at extreme scales): the maximum is unknown, and
    the bound reported is proved (never below the oracle's exact maximum) and finite."""
    import milp.search.queries as queries

    def undecided(network, box, bounds, form, reference, deadline, options, split=False):
        return Maximum("unknown", None, None, None)

    monkeypatch.setattr(queries, "milp_maximum", undecided)
    rng = np.random.default_rng(8)
    network = random_mlp(rng, [2, 8, 8, 1])
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    form = value_form(network, "y", 0)
    top, _ = oracle.exact_max(network, box.lower, box.upper, form)
    settings = replace(QUERY_SETTINGS, branching=branching, leaf_unstable=100)  # every sub-box is a leaf
    found = maximize(network, box, form, portfolio=False, settings=settings, deadline=Deadline.after(60))
    assert found.status == "unknown"
    assert found.upper_bound is not None and top <= found.upper_bound + 1e-9
    assert found.value is None or found.value <= top + 1e-9


def test_a_bound_that_proves_never_is_never_without_the_exact_maximum(monkeypatch):
    """With every leaf undecided, a neuron whose proved bound is negative is still ``never`` (the
    exact maximum stays unknown); one that fires is still ``fires``."""
    import milp.search.queries as queries
    from milp.search.queries import fires

    monkeypatch.setattr(queries, "milp_maximum", lambda *a, **k: Maximum("unknown", None, None, None))
    rng = np.random.default_rng(9)
    layers = [(rng.standard_normal((8, 2)), rng.standard_normal(8)), (rng.standard_normal((8, 8)), rng.standard_normal(8)),
              (rng.standard_normal((1, 8)), rng.standard_normal(1))]
    layers[1][1][0] = -100.0  # far below anything the weights reach over the box
    network = Network.mlp(layers)
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    sampled = network.forward(box.sample(50_000, rng)).pre_activations[1]
    never = fires(network, box, 1, 0, split_inputs=True)
    assert never.status == "never" and never.maximum is None and never.upper_bound <= 0
    assert sampled[:, 0].max() < 0
    firing = int(np.argmax(sampled.max(axis=0)))
    assert sampled[:, firing].max() > 0
    assert fires(network, box, 1, firing, split_inputs=True).status == "fires"
