"""milp.search.refine: intermediate bounds tightened by a search per neuron, against the exact maxima
of the oracle, and the searches that restart from them against the plain MILP and brute force."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np
import pytest

import oracle
from nets import property_text, random_mlp, random_residual

from milp import Box
from milp.bounds.propagate import BatchBounder, interval_bounds, output_bounds
from milp.core.conditions import value_form
from milp.core.deadline import Deadline
from milp.core.network import Affine, Network
from milp.core.options import SolverOptions
from milp.io.vnnlib import read_vnnlib
from milp.search.branch import BranchAndBound, Objective, Settings, open_at_root, root_closes
from milp.search.exact import milp_maximum
from milp.search.queries import QUERY_SETTINGS, maximize, refine_for_search
from milp.search.refine import _weight_in_layers_above, refined_bounds
from milp.search.verify import verify

# neuron splits on small nets, and a search that stops for the refinement at its first clock check
REFINE_AT_ONCE = replace(QUERY_SETTINGS, branching="neuron", leaf_unstable=4, refine_after=0.0, refine_subproblems=100_000, refine_layers=2)


def _net(kind: str, seed: int):
    rng = np.random.default_rng(40 + seed)
    return random_mlp(rng, [3, 6, 6, 6, 1]) if kind == "mlp" else random_residual(rng, 3, 6, 3, 1)


def _alpha(network, box):
    n = network.neuron_count
    lowers, uppers, _ = BatchBounder(network).optimised_neuron_bounds(box.lower[None], box.upper[None], np.full((1, n), -np.inf),
                                                                      np.full((1, n), np.inf), 20)
    return np.concatenate(lowers, axis=1)[0], np.concatenate(uppers, axis=1)[0]


@pytest.mark.parametrize("kind", ["mlp", "residual"])
def test_refined_bounds_hold_each_neurons_exact_range_and_most_meet_it(kind):
    """Every refined bound lies outside the neuron's exact range over the box (the oracle's, by
    enumerating the activation regions below it); with 100,000 sub-problems per side on 6-neuron
    layers most searches finish (three quarters of the sides at least), and their bounds are the exact
    range, within the optimality tolerance."""
    network = _net(kind, 0)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    alpha_lower, alpha_upper = _alpha(network, box)
    lower, upper, stabilised = refine_for_search(network, box, None, Deadline.after(120), replace(Settings(), refine_subproblems=100_000))
    assert np.all(lower >= alpha_lower) and np.all(upper <= alpha_upper)  # never looser than alpha-CROWN's
    offsets = network.neuron_offsets()
    sides = exact = narrowed = 0
    for layer in range(1, len(network.widths)):
        below = network.below(layer)
        for row in range(network.widths[layer]):
            j = offsets[layer] + row
            if not (alpha_lower[j] < 0 < alpha_upper[j]):
                continue  # a neuron stable by alpha-CROWN is not searched
            z = Affine(tuple((s, m[row : row + 1]) for s, m in below.output.terms), below.output.bias[row : row + 1])
            top, _ = oracle.exact_max(below, box.lower, box.upper, z)
            bottom = -oracle.exact_max(below, box.lower, box.upper, -z)[0]
            assert top <= upper[j] + 1e-9 and bottom >= lower[j] - 1e-9  # sound
            sides += 2
            # int(): numpy's booleans add as a logical or, which counted neurons, not sides
            exact += int(upper[j] == pytest.approx(top, rel=1e-6, abs=1e-6)) + int(lower[j] == pytest.approx(bottom, rel=1e-6, abs=1e-6))
            narrowed += upper[j] - lower[j] < alpha_upper[j] - alpha_lower[j] - 1e-6
    assert sides > 0 and narrowed > 0 and 4 * exact >= 3 * sides and stabilised >= 0
    x = np.random.default_rng(1).uniform(-1.0, 1.0, (50000, 3))
    z = np.concatenate(network.forward(x).pre_activations, axis=1)
    assert np.all(z.max(axis=0) <= upper + 1e-9) and np.all(z.min(axis=0) >= lower - 1e-9)


def test_a_refinement_stopped_by_its_deadline_keeps_sound_bounds():
    network = _net("mlp", 0)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    alpha_lower, alpha_upper = _alpha(network, box)
    lower, upper, _ = refine_for_search(network, box, None, Deadline.after(0.05), replace(Settings(), refine_subproblems=1))
    assert np.all(lower >= alpha_lower) and np.all(upper <= alpha_upper)
    x = np.random.default_rng(5).uniform(-1.0, 1.0, (50000, 3))
    z = np.concatenate(network.forward(x).pre_activations, axis=1)
    assert np.all(z.max(axis=0) <= upper + 1e-9) and np.all(z.min(axis=0) >= lower - 1e-9)


@pytest.mark.parametrize("portfolio", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_maximum_that_restarts_from_refined_bounds_is_the_plain_milp_maximum(seed, portfolio):
    rng = np.random.default_rng(60 + seed)
    network = random_mlp(rng, [4, 8, 8, 1])
    box = Box(np.full(4, -1.0), np.full(4, 1.0))
    form = value_form(network, "y", 0)
    plain = milp_maximum(network, box, interval_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
    found = maximize(network, box, form, portfolio=portfolio, settings=REFINE_AT_ONCE, deadline=Deadline.after(60))
    assert plain.status == found.status == "optimal"
    assert found.value == pytest.approx(plain.value, rel=1e-6, abs=1e-7)
    assert found.upper_bound >= plain.value - 1e-7


@pytest.mark.parametrize("depth", [2, 3])
def test_queries_refine_networks_of_three_relu_layers_or_more(depth, monkeypatch):
    """With the queries' own settings (stopping for the refinement at once), a maximum over a net of three
    ReLU layers restarts from refined bounds and one over two layers does not; both equal the plain
    MILP's maximum."""
    import milp.search.queries as queries

    calls = []
    original = queries.refine_for_search

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(queries, "refine_for_search", counted)
    rng = np.random.default_rng(70 + depth)
    network = random_mlp(rng, [4] + [7] * depth + [1])
    box = Box(np.full(4, -1.0), np.full(4, 1.0))
    form = value_form(network, "y", 0)
    settings = replace(QUERY_SETTINGS, branching="neuron", leaf_unstable=2, refine_after=0.0, refine_subproblems=100_000)
    found = maximize(network, box, form, portfolio=False, settings=settings, deadline=Deadline.after(60))
    plain = milp_maximum(network, box, interval_bounds(network, box), form, None, Deadline.after(60), SolverOptions(), plain=True)
    assert plain.status == found.status == "optimal"
    assert found.value == pytest.approx(plain.value, rel=1e-6, abs=1e-7)
    assert len(calls) == (1 if depth >= QUERY_SETTINGS.refine_layers else 0)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_verdicts_that_restart_from_refined_bounds_match_brute_force(seed, workers):
    """y0 - y1 >= t just inside and just beyond the oracle's exact maximum, by a search that splits
    neurons and stops for the refinement at once (in one process, or shared with a second)."""
    rng = np.random.default_rng(80 + seed)
    network = random_mlp(rng, [2, 6, 6, 2])
    box = [(-1.0, 1.0)] * 2
    gap = Affine(tuple((s, m[:1] - m[1:2]) for s, m in network.output.terms), network.output.bias[:1] - network.output.bias[1:2])
    top, _ = oracle.exact_max(network, np.full(2, -1.0), np.full(2, 1.0), gap)
    settings = replace(Settings(), branching="neuron", leaf_unstable=4, refine_after=0.0, samples=0, attack_starts=1, attack_steps=1,
                       refine_workers=workers)
    for threshold, truth in ((top - 1e-3, "sat"), (top + 1e-3, "unsat")):
        prop = read_vnnlib(property_text(2, 2, box, [[(np.array([-1.0, 1.0]), -threshold)]]), 2, 2)
        assert verify(network, prop, timeout=60, settings=settings).result == truth


def test_a_layer_is_refined_in_order_of_its_neurons_weight_in_the_layers_above():
    """The score is each neuron's largest triangle gap, -l u / (u - l), times the magnitude of its
    column in every map reading it: here layer 1 and, through the residual term, the output."""
    network = Network(
        2,
        (Affine(((0, np.eye(2)),), np.zeros(2)), Affine(((1, np.array([[1.0, -3.0], [2.0, 0.0]])),), np.zeros(2))),
        Affine(((1, np.array([[0.0, 4.0]])), (2, np.ones((1, 2)))), np.zeros(1)),
    )
    lower, upper = np.array([-1.0, -2.0]), np.array([1.0, 2.0])  # gaps 0.5 and 1
    score = _weight_in_layers_above(network, 0, lower, upper, np.array([0, 1]))
    assert score == pytest.approx([(1 + 2 + 0) * 0.5, (3 + 0 + 4) * 1.0])
    assert _weight_in_layers_above(network, 0, lower[1:], upper[1:], np.array([1])) == pytest.approx([7.0])


@pytest.mark.parametrize("kind", ["mlp", "residual"])
def test_a_refinement_on_a_budget_of_subproblems_gives_the_same_bounds_on_a_busy_machine(kind):
    """Each side stops after its sub-problems, not on the clock: the bounds are the same when every
    clock check is slowed down (a stand-in for a loaded machine), and they hold every sample."""
    network = _net(kind, 1)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    settings = replace(Settings(), refine_subproblems=8)
    quiet = refine_for_search(network, box, None, Deadline.after(120), settings)

    class SlowDeadline(Deadline):
        def expired(self) -> bool:
            time.sleep(2e-4)
            return super().expired()

        def sooner(self, seconds):
            return SlowDeadline(super().sooner(seconds).at, self.stop)

    busy = refine_for_search(network, box, None, SlowDeadline.after(120), settings)
    assert np.array_equal(quiet[0], busy[0]) and np.array_equal(quiet[1], busy[1]) and quiet[2] == busy[2]
    longer = refine_for_search(network, box, None, Deadline.after(120), replace(Settings(), refine_subproblems=100_000))
    assert np.sum(longer[1] - longer[0]) < np.sum(quiet[1] - quiet[0]) - 1e-6  # the budget binds: a larger one tightens
    x = np.random.default_rng(7).uniform(-1.0, 1.0, (50000, 3))
    z = np.concatenate(network.forward(x).pre_activations, axis=1)
    assert np.all(z.max(axis=0) <= quiet[1] + 1e-9) and np.all(z.min(axis=0) >= quiet[0] - 1e-9)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("kind", ["mlp", "residual"])
def test_a_refinement_shared_among_processes_gives_the_bounds_of_one_process(kind, workers):
    """Each layer's neurons dealt out to ``workers`` processes: the same bounds, bit for bit, as
    one process searching them all (each side's search is the same, wherever it runs)."""
    network = _net(kind, 1)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    settings = replace(Settings(), refine_subproblems=8)
    alone = refine_for_search(network, box, None, Deadline.after(120), settings)
    shared = refine_for_search(network, box, None, Deadline.after(120), replace(settings, refine_workers=workers))
    assert np.array_equal(alone[0], shared[0]) and np.array_equal(alone[1], shared[1]) and alone[2] == shared[2]
    alpha_lower, alpha_upper = _alpha(network, box)
    assert np.sum(shared[1] - shared[0]) < np.sum(alpha_upper - alpha_lower) - 1e-6  # the searches did tighten


def test_a_refinement_process_that_fails_is_reported_not_ignored(monkeypatch):
    """An error in a refinement process (here, only there) reaches the caller."""
    here = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join((here, os.path.dirname(here))))  # the child imports this file
    network = _net("mlp", 0)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    with pytest.raises(ZeroDivisionError):
        refined_bounds(network, box, None, FailsInAChild(os.getpid()), deadline=Deadline.after(60), workers=2)


@dataclass(frozen=True)
class FailsInAChild:
    parent: int

    def __call__(self, below, row, known, until):
        return 1.0 / 0.0 if os.getpid() != self.parent else None


def test_a_search_stopped_by_its_budget_of_subproblems_reports_a_bound_above_the_maximum():
    network = _net("mlp", 2)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    form = value_form(network, "y", 0)
    top, _ = oracle.exact_max(network, box.lower, box.upper, form)
    budget = replace(QUERY_SETTINGS, branching="neuron", leaf_unstable=0, max_subproblems=3)
    found = maximize(network, box, form, portfolio=False, settings=budget, deadline=Deadline.after(60))
    whole = maximize(network, box, form, portfolio=False, settings=replace(budget, max_subproblems=0), deadline=Deadline.after(60))
    assert found.status == "unknown" and found.upper_bound >= top - 1e-9 and found.subproblems < whole.subproblems
    assert whole.status == "optimal" and whole.value == pytest.approx(top, abs=1e-6)


@pytest.mark.parametrize("stop", [True, False])
def test_a_refinement_stops_after_the_layer_once_its_caller_is_settled(stop):
    """``settled`` is asked after each refined layer but the last, with the bounds so far; once it says
    yes, no neuron of a later layer is searched. Without it every layer above the first is (the
    control), and it is not asked after the last one, where stopping saves nothing."""
    network = _net("mlp", 0)
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    searched, asked = [], []

    def maximum(below, form, known, deadline):
        searched.append(len(below.widths))  # the layer whose neuron this is
        return None  # nothing proved: the bounds stay alpha-CROWN's

    def settled(lower, upper):
        asked.append((lower.copy(), upper.copy()))
        return stop

    alpha_lower, alpha_upper = _alpha(network, box)
    lower, upper, _ = refined_bounds(network, box, None, maximum, deadline=Deadline.after(60), settled=settled)
    assert len(network.widths) == 3  # ReLU layers 1 and 2 are refined
    assert set(searched) == ({1} if stop else {1, 2})
    assert len(asked) == 1  # after layer 1 only
    if stop:
        np.testing.assert_array_equal(asked[-1][0], lower)
        np.testing.assert_array_equal(asked[-1][1], upper)
    assert np.all(lower >= alpha_lower) and np.all(upper <= alpha_upper)


@pytest.mark.parametrize("seed", range(3))
def test_a_root_closes_only_above_the_exact_maximum(seed):
    """:func:`root_closes` on a maximum: never for a threshold below the oracle's exact maximum (a point
    reaches it), always for one above the interval bound of the output."""
    rng = np.random.default_rng(90 + seed)
    network = random_mlp(rng, [3, 6, 6, 1])
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    form = value_form(network, "y", 0)
    top, _ = oracle.exact_max(network, box.lower, box.upper, form)
    loose = output_bounds(network, box, interval_bounds(network, box))[1][0]
    known = _alpha(network, box)
    settings = replace(QUERY_SETTINGS, branching="neuron")
    for threshold, closes in ((top - 1e-3, False), (loose + 1.0, True)):
        engine = BranchAndBound(network, Objective.of_rows(box, form, [0]), lambda *a: None, lambda *a: "split",
                                Deadline.after(60), settings, threshold=threshold)
        assert root_closes(engine, known, Deadline.after(60)) is closes


@pytest.mark.parametrize("seed", range(3))
def test_a_disjunct_closed_at_the_root_is_unreachable_and_one_far_below_is_closed(seed):
    """:func:`open_at_root` on three disjuncts ``y_k >= t_k``: one whose threshold is 1e-3 below the
    oracle's exact maximum (reachable: never closed), one above the interval bound (always closed),
    and one at random; whatever it closes is unreachable by the oracle."""
    rng = np.random.default_rng(120 + seed)
    network = random_mlp(rng, [3, 6, 6, 3])
    box = Box(np.full(3, -1.0), np.full(3, 1.0))
    tops = [oracle.exact_max(network, box.lower, box.upper, value_form(network, "y", k))[0] for k in range(3)]
    loose = output_bounds(network, box, interval_bounds(network, box))[1]
    thresholds = np.array([tops[0] - 1e-3, loose[1] + 1.0, tops[2] + rng.uniform(-0.5, 0.5)])
    form = Affine(tuple((s, m) for s, m in network.output.terms), network.output.bias - thresholds)  # y_k - t_k >= 0
    settings = replace(Settings(), branching="neuron")
    engine = BranchAndBound(network, Objective.of_rows(box, form, [0, 1, 2]), lambda *a: None, lambda *a: "split",
                            Deadline.after(60), settings)
    left = open_at_root(engine, _alpha(network, box), Deadline.after(60))
    assert left[0] and not left[1]
    assert left[2] or tops[2] < thresholds[2]
    assert root_closes(engine, _alpha(network, box), Deadline.after(60)) is False


def _gap_properties(seed: int):
    """A random 2-6-6-3 net over [-1, 1]^2 and a function of ``reachable`` (None or a disjunct): the
    property of three disjuncts ``y_k - y_j >= t`` (pairs (0, 1), (1, 2), (2, 0)), each threshold
    1e-3 beyond the oracle's exact maximum of ``y_k - y_j``, or 1e-3 inside it for ``reachable``."""
    network = random_mlp(np.random.default_rng(seed), [2, 6, 6, 3])
    pairs = ((0, 1), (1, 2), (2, 0))
    tops = []
    for k, j in pairs:
        gap = Affine(tuple((s, m[k : k + 1] - m[j : j + 1]) for s, m in network.output.terms), network.output.bias[k : k + 1] - network.output.bias[j : j + 1])
        tops.append(oracle.exact_max(network, np.full(2, -1.0), np.full(2, 1.0), gap)[0])

    def prop(reachable):
        disjuncts = []
        for d, ((k, j), top) in enumerate(zip(pairs, tops)):
            c = np.zeros(3)
            c[k], c[j] = -1.0, 1.0  # -(y_k - y_j) <= -(top + offset)
            disjuncts.append([(c, -(top + (-1e-3 if d == reachable else 1e-3)))])
        return read_vnnlib(property_text(2, 3, [(-1.0, 1.0)] * 2, disjuncts), 2, 3)

    return network, prop


@pytest.mark.parametrize("seed", range(4))
def test_verdicts_of_the_search_restarted_from_refined_bounds_match_brute_force(seed):
    """Three disjuncts ``y_k - y_j >= t``, each threshold just inside or just beyond the oracle's exact
    maximum, decided on one process by a search that refines at once and starts again from the refined
    bounds (no MILP arm); the verdicts are the oracle's."""
    network, property_of = _gap_properties(140 + seed)
    settings = replace(Settings(), branching="neuron", leaf_unstable=0, refine_after=0.0, samples=0, attack_starts=1, attack_steps=1)
    for reachable in (None, *range(3)):  # none of the three reachable, or only disjunct `reachable`
        verdict = verify(network, property_of(reachable), timeout=60, settings=settings)
        assert verdict.result == ("unsat" if reachable is None else "sat"), (reachable, verdict)


@pytest.mark.parametrize("seed", range(2))
def test_verdicts_with_the_whole_box_milps_beside_the_search_match_brute_force(seed, monkeypatch):
    """With a second process, one whole-box MILP per open disjunct runs beside the search restarted
    from refined bounds (a child process), and the search drops what it proves. Three disjuncts
    ``y_k - y_j >= t`` as in the test above; each of the search's bounds is slowed down, so that the
    child's MILPs finish first. The verdicts are the oracle's, and when none is reachable the child
    proved some disjunct unsat."""
    import milp.search.branch as branch_module
    import milp.search.verify as verify_module

    answers = []

    class Spy(verify_module.ReachArm):
        def result(self):
            answer = super().result()
            answers.append(answer[0])
            return answer

    slow = branch_module.BranchAndBound.bound

    def bound(self, *args, **kwargs):
        time.sleep(0.2)
        return slow(self, *args, **kwargs)

    monkeypatch.setattr(verify_module, "ReachArm", Spy)
    monkeypatch.setattr(branch_module.BranchAndBound, "bound", bound)
    network, property_of = _gap_properties(150 + seed)
    settings = replace(Settings(), branching="neuron", leaf_unstable=0, refine_after=0.0, samples=0, attack_starts=1, attack_steps=1,
                       refine_workers=2, milp_arm=20.0)
    for reachable in (None, 2):  # none of the three reachable, or only the last (the arm's last turn)
        prop = property_of(reachable)
        answers.clear()
        verdict = verify(network, prop, timeout=60, settings=settings)
        assert verdict.result == ("unsat" if reachable is None else "sat"), (reachable, verdict, answers)
        if reachable is None:
            assert "unsat" in answers
