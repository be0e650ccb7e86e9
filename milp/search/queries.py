"""The exact queries: can a neuron fire, is a set of conditions reachable, the exact range of each output.

Every answer is proved by the MILP (or by bounds, when they already decide it), and every
point reported is re-checked by a float64 forward pass — and by ``reference`` (e.g.
onnxruntime on the original model file) when one is given — before it is reported. A
solver point that fails the check is polished by an LP over its activation region; if it
still fails, the answer is ``unknown``, never a guess. A time limit gives ``unknown`` with
the best bounds known.

Tolerances (:mod:`milp.core.tolerances`): a witness's conditions are re-checked in float64 with a
margin of ``1e-9 (1 + scale)``; "never fires" and "unsat" for strict conditions are decided at
the solver's resolution, when the proved maximum is at most ``1e-8 (1 + |bound|)``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from milp.bounds.propagate import Bounds, bound_affine
from milp.core.box import Box
from milp.core.conditions import parse_conditions, value_form
from milp.core.deadline import NO_DEADLINE, Deadline
from milp.core.errors import InputError
from milp.core.network import Affine, Network, layer_choices
from milp.core.options import SolverOptions, check_count, check_index, check_seconds
from milp.core.tolerances import attained_tolerance, proves_not_positive
from milp.search.branch import BranchAndBound, Found, Objective, OutOfTime, Settings, refines, root_closes
from milp.search.exact import Maximum, MaximumArm, limit_reason, milp_maximum, milp_reach, values_at
from milp.search.refine import refined_bounds
from milp.search.tighten import pre_activation_bounds
from milp.search.witness import Reference, check_point

__all__ = [
    "FiresResult",
    "ReachResult",
    "OutputRange",
    "RangeResult",
    "QueryError",
    "fires",
    "reach",
    "output_range",
    "maximize",
]




class QueryError(InputError):
    """A query that cannot be asked (unknown layer or neuron, wrong box, ...)."""


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class FiresResult:
    """Can neuron ``neuron`` of ReLU layer ``layer`` be positive in the box?

    ``status`` is ``fires`` (a checked witness with ``z > 0``), ``never`` (proved ``max z <= 0``)
    or ``unknown`` (a time limit, or a sub-problem no solver could settle). ``maximum`` is the exact maximum of ``z`` (the value at
    ``witness``, shape ``(input_dim,)``) when proved; ``upper_bound`` the proved bound; ``found``
    the largest ``z`` at a checked point, proved or not (at a limit, the maximum lies in
    ``[found, upper_bound]``).
    """

    layer: int
    neuron: int
    status: str
    maximum: float | None
    upper_bound: float | None
    witness: np.ndarray | None
    seconds: float
    bounds_method: str = ""
    found: float | None = None

    @property
    def fires(self) -> bool | None:
        return {"fires": True, "never": False}.get(self.status)

    def to_json(self) -> dict:
        return {
            "fires": self.fires,
            "max": self.maximum,
            "witness": None if self.witness is None else self.witness.tolist(),
            "status": self.status,
            "upper_bound": self.upper_bound,
            "found": self.found,
            "layer": self.layer,
            "neuron": self.neuron,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class ReachResult:
    """Is there an input in the box where every condition holds?

    ``status`` is ``sat`` (``witness`` (input_dim,) checked, ``output`` (output_dim,) its outputs),
    ``unsat`` (proved) or ``unknown`` (time limit, or no point could be checked: ``reason``).
    """

    status: str
    witness: np.ndarray | None
    output: np.ndarray | None
    seconds: float
    reason: str = ""
    decided_by: str = ""
    subproblems: int = 0
    milp_calls: int = 0

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "witness": None if self.witness is None else self.witness.tolist(),
            "output": None if self.output is None else self.output.tolist(),
            "reason": self.reason,
            "decided_by": self.decided_by,
            "subproblems": self.subproblems,
            "milp_calls": self.milp_calls,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class OutputRange:
    """Exact ``min``/``max`` of output ``index`` with the inputs attaining them (shape ``(input_dim,)``).

    ``status`` is ``exact`` or ``unknown`` (time limit: ``min_bound``/``max_bound`` still hold).
    ``min``/``max`` are set only when proved; ``min_found``/``max_found`` are the extreme values at
    checked points, proved or not, attained at ``argmin``/``argmax`` (at a limit the maximum lies in
    ``[max_found, max_bound]``).
    """

    index: int
    min: float | None
    max: float | None
    argmin: np.ndarray | None
    argmax: np.ndarray | None
    min_bound: float | None
    max_bound: float | None
    status: str
    min_found: float | None = None
    max_found: float | None = None

    def to_json(self) -> dict:
        arr = lambda a: None if a is None else a.tolist()  # noqa: E731
        return {
            "index": self.index,
            "min": self.min,
            "max": self.max,
            "argmin": arr(self.argmin),
            "argmax": arr(self.argmax),
            "min_bound": self.min_bound,
            "max_bound": self.max_bound,
            "min_found": self.min_found,
            "max_found": self.max_found,
            "status": self.status,
        }


@dataclass(frozen=True)
class RangeResult:
    outputs: tuple[OutputRange, ...]
    seconds: float

    def to_json(self) -> dict:
        return {"outputs": [o.to_json() for o in self.outputs], "seconds": self.seconds}


# ------------------------------------------------------------------ maximisation
# reach: inputs up to this many dimensions are searched by the branch and bound; wider inputs go
# to one MILP over the whole box (maximize splits their neurons instead, see Settings.narrow).
SPLIT_INPUT_LIMIT = 8
# Seconds of branch and bound after which the whole-box MILP starts beside it (see maximize).
PORTFOLIO_DELAY = 0.3
# A sub-box with at most this many unstable neurons is closed by one exact MILP (measured on the
# 2-16-16-16-1 rung of benchmarks/queries.py, max and min over 10 seeds, best of 3 runs: with
# slope splits, 3 gives 1.16 s in all and 0.17 s at worst, 2 gives 1.44/0.15, 4 gives 1.37/0.28).
LEAF_UNSTABLE = 3
# The branch and bound's constants for queries: a light first falsification (the small nets of
# queries are decided by bounds and MILP leaves long before a long attack pays; a search still open
# after 1.5 s runs the larger falsification rounds of Settings.rounds_after, whose points raise the
# threshold: on the 10-64x4-1 rung, seed 0, 60 s, max y0's best point 0.1885 with them, 0.1402
# without, where plain gradient ascent from 140,000 starts finds 0.1888), MILP leaves, and input
# splits chosen by trial, with each sub-box's slopes tuned 8 steps. The exact range of ACAS Xu's
# outputs over a property's box (7 net/box pairs, 70 optimisations, 10 s each) is where this pays:
# 67 proved, against 64 with 4 steps and about half with slope x width splits and no tuning
# (which the small random nets had favoured: the 2-16-16-16-1 rung ends in hundredths of a second
# either way).
# Queries refine intermediate bounds (Settings.refine_after) only on nets of three ReLU layers or more.
# On the 10-64x4-1 rung (30 s a question, 5 seeds, side by side) refining lowered every open bound, by
# 23-37 % (max y0 <= 6.78..9.29 against 9.98..13.8); on the two-layer 784-100-100-10 rung, where only
# the second layer's bounds can tighten, it lowered the bound on max y0 for 2 seeds of 5 and raised it
# for 3 (150 s before: seed 0 from 0.252 to 0.198, seed 1 from 0.080 to 0.139, the restart's lost time).
QUERY_SETTINGS = Settings(samples=200, attack_starts=16, attack_steps=20, leaf_unstable=LEAF_UNSTABLE,
                          local_attack=4, local_steps=4, split="trial", input_steps=8, refine_layers=3)


def _prepare(network: Network, box: Box, bounds: Bounds | str, deadline: Deadline) -> Bounds:
    box.check_dim(network.input_dim)
    if isinstance(bounds, Bounds):
        return bounds
    return pre_activation_bounds(network, box, bounds, deadline=deadline)


def _pyomo_maximum(network, box, form, bounds, solver, reference, deadline) -> Maximum:
    """The maximum through a Pyomo solver; ``optimal`` only when the solver says so and its point,
    re-evaluated by a float64 forward pass (and the reference model), attains the claimed optimum."""
    from milp.solvers.pyomo import solve_pyomo

    remaining = None if deadline.remaining() is None else max(1e-3, deadline.remaining())
    result = solve_pyomo(network, box, form, True, _prepare(network, box, bounds, deadline), solver=solver, time_limit=remaining)
    if result.status != "optimal" or result.x is None or result.objective is None:
        return Maximum("unknown", None, None, None, 1, 1)
    x = np.clip(np.asarray(result.x, dtype=np.float64), box.lower, box.upper)
    value = float(form.apply(values_at(network, x))[0, 0])
    if not check_point(network, box, x, (), reference)[0] or abs(value - result.objective) > attained_tolerance(value):
        return Maximum("unknown", None, None, None, 1, 1)  # the solver's point does not confirm its optimum
    return Maximum("optimal", value, x, max(value, result.objective), 1, 1)


def maximize(
    network: Network,
    box: Box,
    form: Affine,
    *,
    bounds: Bounds | str = "symbolic",
    options: SolverOptions = SolverOptions(),
    deadline: Deadline = NO_DEADLINE,
    reference: Reference | None = None,
    split_inputs: bool | None = None,
    solver: str | None = None,
    portfolio: bool = True,
    settings: Settings = QUERY_SETTINGS,
) -> Maximum:
    """The exact maximum over ``box`` of a one-row affine ``form`` over ``network``'s sources.

    A portfolio of two arms, and the first proof answers: the branch and bound of
    :mod:`milp.search.branch` (splitting inputs when they are few, neurons otherwise, with exact
    MILPs on small sub-problems), and the whole-box big-M MILP in a child process
    (``portfolio=False``: the branch and bound alone). ``split_inputs=False`` asks for the MILP
    alone; ``settings`` are the branch and bound's. ``solver`` names a Pyomo solver (e.g.
    ``"highs"``, ``"gurobi"``): the whole big-M MILP is then solved through Pyomo instead, and its
    point is re-checked like any other.
    """
    if form.out_dim != 1:
        raise QueryError(f"maximize takes a form of one row, got {form.out_dim} rows")
    if solver is not None:
        return _pyomo_maximum(network, box, form, bounds, solver, reference, deadline)
    if split_inputs is False:
        return milp_maximum(network, box, _prepare(network, box, bounds, deadline), form, reference, deadline, options)
    if portfolio:
        started = time.perf_counter()
        arms: list[MaximumArm] = []

        def race() -> bool:
            # the MILP arm starts once the branch and bound has not answered within PORTFOLIO_DELAY:
            # most small queries end before, without paying for the model
            if not arms and time.perf_counter() - started >= PORTFOLIO_DELAY:
                arms.append(MaximumArm(network, box, _prepare(network, box, bounds, deadline), form, options, deadline, reference))
            return bool(arms) and arms[0].finished()

        def restart(refined: Bounds) -> None:
            # tighter bounds make a smaller MILP with tighter big-M rows (on the 784-100-100-10 rung, 107
            # binaries instead of 121); the arm built from the root's bounds is dropped
            if arms:
                arms[0].abandon()
            arms[:] = [MaximumArm(network, box, refined, form, options, deadline, reference)]

        found = _branch_maximum(network, box, form, bounds, options, deadline, reference, settings, race, restart)
        if not arms:
            return found
        if found.status == "optimal":
            arms[0].abandon()  # the proof is in: stop the other arm, without waiting for its next node
            return replace(found, milp_calls=found.milp_calls + 1)
        return _better(found, arms[0].result())
    return _branch_maximum(network, box, form, bounds, options, deadline, reference, settings)


def _better(one: Maximum, other: Maximum) -> Maximum:
    """Two arms' outcomes for the same maximum as one: a proof if either has one, else the best point
    and the smaller proved bound.

    The arms check each other: a checked point above an arm's proved bound refutes that bound (a
    solver's wrong proof; HiGHS 1.16 gave one), and a refuted proof is not reported."""
    points = [m.value for m in (one, other) if m.value is not None]
    highest = max(points) if points else -np.inf

    def refuted(m: Maximum) -> bool:
        return m.upper_bound is not None and m.upper_bound < highest - attained_tolerance(highest)

    for first, second in ((one, other), (other, one)):
        if first.status == "optimal" and not refuted(first):
            return replace(first, subproblems=first.subproblems + second.subproblems, milp_calls=first.milp_calls + second.milp_calls)
    best = max((m for m in (one, other) if m.value is not None), key=lambda m: m.value, default=one)
    bounds = [m.upper_bound for m in (one, other) if m.upper_bound is not None and not refuted(m)]
    return Maximum("unknown", best.value, best.x, min(bounds) if bounds else None,
                   one.subproblems + other.subproblems, one.milp_calls + other.milp_calls)


def _branch_maximum(network, box, form, bounds, options, deadline, reference, settings, race=None, refined=None) -> Maximum:
    """The maximum by :class:`~milp.search.branch.BranchAndBound` (inputs or neurons split, MILP leaves);
    ``race()`` true stops it early (another arm has finished): the outcome is then ``unknown``.

    With neuron splits, a search still open after :attr:`Settings.refine_after` seconds starts again
    from intermediate bounds tightened by :func:`~milp.search.refine.refined_bounds`, keeping its best
    point as the threshold to beat; ``refined(bounds)`` is then told those bounds."""
    best: dict = {"x": None}
    leaf_upper = -np.inf

    def accept(engine: BranchAndBound, x: np.ndarray, value: float) -> None:
        # a better checked point raises the threshold: boxes that cannot beat it close
        if value > engine.threshold and check_point(network, box, x, (), reference)[0]:
            engine.threshold, best["x"] = value, x

    def leaf(engine: BranchAndBound, sub_box: Box, lower, upper, open_) -> str:
        nonlocal leaf_upper
        result = milp_maximum(network, sub_box, Bounds.from_flat(network, lower, upper, "symbolic"), form, reference, engine.deadline, options,
                              split=engine.neuron_branching)
        if result.status == "empty":
            return "closed"
        if result.status != "optimal":
            engine.check_time()
            return "stuck"
        leaf_upper = max(leaf_upper, result.upper_bound)
        accept(engine, result.x, result.value)
        return "closed"

    def search(known, until: Deadline, threshold: float) -> tuple[BranchAndBound, str, float]:
        """One search: the engine, its outcome ("closed", "stuck" or "stopped") and its proved upper bound."""
        engine = BranchAndBound(network, Objective.of_rows(box, form, [0]), accept, leaf, until, settings,
                                threshold=threshold, moving=True, known=known, race=race)
        try:
            engine.falsify()
            outcome = engine.run()
        except OutOfTime:
            outcome = "stopped"
        # a stuck sub-box (its leaf undecided, it cannot be split) still has its proved bound in open_upper
        upper = max(engine.threshold, leaf_upper, engine.closed_upper, engine.open_upper if outcome in ("stopped", "stuck") else -np.inf)
        return engine, outcome, upper

    known = _known(network, box, bounds, deadline)
    refine = refines(network, box, settings)
    engine, outcome, upper = search(known, deadline.sooner(settings.refine_after) if refine else deadline, -np.inf)
    subproblems, milp_calls = engine.counters.subproblems, engine.counters.milp_calls
    if refine and outcome == "stopped" and not deadline.expired() and not (race and race()):
        # once the root closes on the bounds refined so far (the best point is the maximum), the layers
        # above are not refined
        lower, upper_bounds, stabilised = refine_for_search(network, box, known, deadline, settings, race, restarting=engine)
        known = (lower, upper_bounds)
        if refined is not None and stabilised:
            refined(Bounds.from_flat(network, *known, "refined"))
        first_upper = upper
        engine, outcome, upper = search(known, deadline, engine.threshold)
        upper = min(upper, first_upper)  # both are proved
        subproblems, milp_calls = subproblems + engine.counters.subproblems, milp_calls + engine.counters.milp_calls
    value = engine.threshold if best["x"] is not None else None
    if not np.isfinite(upper):
        upper = None  # none bounded yet: nothing proved
    status = "optimal" if outcome == "closed" and value is not None else "unknown"
    return Maximum(status, value, best["x"], upper, subproblems, milp_calls)


def refine_for_search(network: Network, box: Box, known, deadline: Deadline, settings: Settings, race=None,
                      restarting: BranchAndBound | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`~milp.search.refine.refined_bounds` for a search that has run :attr:`Settings.refine_after`
    seconds without an answer: each neuron side is maximised by the queries' branch and bound (without
    refinement of its own) until it has bounded :attr:`Settings.refine_subproblems` ``/ layers below``
    sub-problems, within :attr:`Settings.refine_share` of the time left, in
    :attr:`Settings.refine_workers` processes. ``race()`` true (another arm has finished) ends it.

    ``restarting`` is the search that will start again from these bounds: once it would close at its
    root on the bounds of the layers refined so far (:func:`~milp.search.branch.root_closes`), the
    layers above are not refined."""
    # the layers below come already tuned (alpha-CROWN) from the refinement: one step keeps them
    # without tuning them again, which took longer than the 0.1 s a side had then on the deeper layers
    inner = replace(QUERY_SETTINGS, refine_after=np.inf, root_steps=1, rounds_after=(), refine_subproblems=settings.refine_subproblems)
    settled = None if restarting is None else (lambda lower, upper: root_closes(restarting, (lower, upper), deadline))
    return refined_bounds(network, box, known, SideSearch(box, inner), deadline=deadline.share(settings.refine_share),
                          workers=settings.refine_workers, race=race, settled=settled)


@dataclass(frozen=True)
class SideSearch:
    """One side of a neuron for :func:`refine_for_search`: the maximum of ``row`` over ``below``'s
    input box by the branch and bound with ``settings`` (a search of its own, not refined again),
    which stops after ``settings.refine_subproblems / layers below`` sub-problems. A value, so that
    it can travel to a refinement process."""

    box: Box
    settings: Settings

    def __call__(self, below: Network, row: Affine, below_known, until: Deadline) -> float | None:
        bounds = Bounds.from_flat(below, *below_known, "refined")
        budget = replace(self.settings, max_subproblems=max(1, self.settings.refine_subproblems // len(below.widths)))
        return _branch_maximum(below, self.box, row, bounds, SolverOptions(), until, None, budget).upper_bound


def _known(network: Network, box: Box, bounds: Bounds | str, deadline: Deadline) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounds over the whole box to start the search from: given ones, or LP-tightened ones when asked
    for (the search computes symbolic bounds itself, at least as tight as interval ones)."""
    if isinstance(bounds, str) and bounds in ("interval", "symbolic"):
        return None
    known = _prepare(network, box, bounds, deadline)
    if not known.lower:
        return None
    return np.concatenate(known.lower), np.concatenate(known.upper)


# ------------------------------------------------------------------ queries
def fires(
    network: Network,
    box: Box,
    layer: int,
    neuron: int,
    *,
    bounds: Bounds | str = "symbolic",
    options: SolverOptions = SolverOptions(),
    time_limit: float | None = None,
    stop: threading.Event | None = None,
    reference: Reference | None = None,
    split_inputs: bool | None = None,
    solver: str | None = None,
) -> FiresResult:
    """Can neuron ``neuron`` of ReLU layer ``layer`` be positive anywhere in ``box``?

    Maximises its pre-activation ``z`` exactly over the layers below it.

    >>> # result = fires(net, Box([-5, -5], [5, 5]), layer=1, neuron=0)
    >>> # result.status in ("fires", "never", "unknown"); result.maximum; result.witness
    """
    started = time.perf_counter()
    deadline = Deadline.after(check_seconds(time_limit if time_limit is not None else options.time_limit), stop)
    box.check_dim(network.input_dim)
    layer, neuron = check_index(layer, "layer"), check_index(neuron, "neuron")
    if not 0 <= layer < len(network.widths):
        raise QueryError(f"there is no ReLU layer {layer}: the network has {layer_choices(len(network.widths))}")
    if not 0 <= neuron < network.widths[layer]:
        raise QueryError(f"ReLU layer {layer} has {network.widths[layer]} neurons (0..{network.widths[layer] - 1}); there is no neuron {neuron}")
    # Only the layers below matter: the neuron's z is the output of the truncated network.
    objective = value_form(network, f"z{layer}", neuron)
    sub = network.below(layer, objective)
    if isinstance(bounds, Bounds):
        bounds = Bounds(tuple(bounds.lower[:layer]), tuple(bounds.upper[:layer]), bounds.method)
    found = maximize(sub, box, objective, bounds=bounds, options=options, deadline=deadline, reference=None, split_inputs=split_inputs, solver=solver)
    x = found.x
    if x is not None and reference is not None and not check_point(network, box, x, (), reference)[0]:
        x = None  # the reference model disagrees: say nothing rather than a wrong witness
    value = found.value if x is not None else None
    if value is not None and value > 0:
        status = "fires"
    elif proves_not_positive(found.upper_bound):  # proved, exact maximum or not (a limit, an undecided leaf)
        status = "never"
    else:
        status = "unknown"
    exact = found.status == "optimal" and value is not None
    return FiresResult(
        layer, neuron, status, value if exact else None, found.upper_bound, x if (status == "fires" or exact) else None,
        time.perf_counter() - started, bounds if isinstance(bounds, str) else bounds.method, value,
    )


def reach(
    network: Network,
    box: Box,
    conditions,
    *,
    bounds: Bounds | str = "symbolic",
    options: SolverOptions = SolverOptions(),
    time_limit: float | None = None,
    stop: threading.Event | None = None,
    reference: Reference | None = None,
    samples: int = 1000,
    seed: int = 0,
    split_inputs: bool | None = None,
    settings: Settings = QUERY_SETTINGS,
) -> ReachResult:
    """Is there an input in ``box`` where every condition holds? (``conditions``: texts or parsed.)

    Sampling first (any checked sample decides ``sat``), then bounds (a condition that cannot
    reach 0 decides ``unsat``), then input splitting with MILPs on small sub-boxes (or one
    MILP for wide inputs).

    >>> # reach(net, parse_box("-1:1,-1:1,0:0.5"), ["y[0] - y[1] >= 0.2"]).status
    """
    started = time.perf_counter()
    deadline = Deadline.after(check_seconds(time_limit if time_limit is not None else options.time_limit), stop)
    box.check_dim(network.input_dim)
    samples, seed = check_count(samples, "samples", 0, allow_none=False), check_count(seed, "seed", 0)  # seed None: fresh entropy
    conditions = parse_conditions(network, conditions)
    if not conditions:
        raise QueryError("reach needs at least one condition, e.g. --where \"y[0] >= 0\"")
    counters = [0, 0]  # sub-boxes bounded, MILPs

    def done(status, x=None, reason="", by=""):
        return ReachResult(status, x, None if x is None else network.forward(x).output, time.perf_counter() - started, reason, by, *counters)

    split_inputs = network.input_dim <= SPLIT_INPUT_LIMIT if split_inputs is None else split_inputs
    if not split_inputs:
        if samples > 0:  # cheap falsification first: the centre, two corners and uniform samples
            rng = np.random.default_rng(seed)
            points = np.vstack([box.center[None, :], box.lower[None, :], box.upper[None, :], box.sample(samples, rng)])
            values = values_at(network, points)
            slacks = [(c, c.expression.apply(values)[:, 0]) for c in conditions]
            holds = np.all([slack > 0 if c.strict else slack >= 0 for c, slack in slacks], axis=0)
            for index in np.flatnonzero(holds)[:5]:
                if check_point(network, box, points[index], conditions, reference)[0]:
                    return done("sat", points[index], by="sampling")
        bound_set = _prepare(network, box, bounds, deadline)
        for c in conditions:
            lo, hi = bound_affine(network, bound_set, box, c.expression)
            if hi[0] < 0 or (c.strict and hi[0] <= 0):
                return done("unsat", reason=f"{c.text!r} cannot hold over the box (bounds)", by="bounds")
        counters[1] += 1
        status, x, why = milp_reach(network, box, bound_set, conditions, reference, deadline, options)
        return done(status, x, why, by="milp")

    def accept(engine: BranchAndBound, x: np.ndarray, margin: float) -> None:
        if check_point(network, box, x, conditions, reference)[0]:
            raise Found(x)

    def leaf(engine: BranchAndBound, sub_box: Box, lower, upper, open_) -> str:
        status, x, why = milp_reach(network, sub_box, Bounds.from_flat(network, lower, upper, "symbolic"), conditions, reference, engine.deadline, options)
        if status == "sat":
            raise Found(x)
        if status == "unsat":
            return "closed"
        engine.check_time()
        return "stuck"

    form = Affine.stack([c.expression for c in conditions])
    objective = Objective.of_rows(box, form, [0], [c.strict for c in conditions])
    settings = replace(settings, samples=samples, attack_starts=settings.attack_starts if samples else 0)
    engine = BranchAndBound(network, objective, accept, leaf, deadline, settings, np.random.default_rng(seed),
                            known=_known(network, box, bounds, deadline))
    try:
        engine.falsify()
        outcome = engine.run()
    except Found as found:
        counters[:] = [engine.counters.subproblems, engine.counters.milp_calls]
        return done("sat", found.x, by="branch and bound")
    except OutOfTime:
        counters[:] = [engine.counters.subproblems, engine.counters.milp_calls]
        return done("unknown", reason=limit_reason(deadline), by="branch and bound")
    counters[:] = [engine.counters.subproblems, engine.counters.milp_calls]
    if outcome == "stuck":
        return done("unknown", reason="a sub-box the MILP could not decide", by="branch and bound")
    return done("unsat", by="branch and bound")


def output_range(
    network: Network,
    box: Box,
    outputs: Sequence[int] | None = None,
    *,
    bounds: Bounds | str = "symbolic",
    options: SolverOptions = SolverOptions(),
    time_limit: float | None = None,
    stop: threading.Event | None = None,
    reference: Reference | None = None,
    split_inputs: bool | None = None,
    solver: str | None = None,
) -> RangeResult:
    """Exact minimum and maximum of each output (or of ``outputs``) over ``box``, with the inputs attaining them.

    A time limit is shared: each of the ``2 x outputs`` optimisations may take the time left divided
    by the count of those left (what one leaves unused goes to the next), so that at a limit every
    output still gets its checked points and proved bounds.
    ``solver`` names a Pyomo solver to use instead of the built-in HiGHS path (see :func:`maximize`).

    >>> # output_range(net, parse_box("-1:1", 2)).outputs[0].max
    """
    started = time.perf_counter()
    deadline = Deadline.after(check_seconds(time_limit if time_limit is not None else options.time_limit), stop)
    box.check_dim(network.input_dim)
    indices = list(range(network.output_dim)) if outputs is None else [check_index(i, "outputs") for i in outputs]
    for i in indices:
        if not 0 <= i < network.output_dim:
            raise QueryError(f"there is no output {i}: the network has {network.output_dim} (0..{network.output_dim - 1})")
    results = []
    left = 2 * len(indices)  # optimisations still to run, each given its share of the time left
    for i in indices:
        form = value_form(network, "y", i)
        negated = -form
        top = maximize(network, box, form, bounds=bounds, options=options, deadline=deadline.share(1 / left), reference=reference, split_inputs=split_inputs, solver=solver)
        bottom = maximize(network, box, negated, bounds=bounds, options=options, deadline=deadline.share(1 / (left - 1)), reference=reference, split_inputs=split_inputs, solver=solver)
        left -= 2
        low = None if bottom.value is None else 0.0 - bottom.value  # the min found, at bottom.x
        results.append(
            OutputRange(
                i,
                low if bottom.status == "optimal" else None,
                top.value if top.status == "optimal" else None,
                bottom.x,
                top.x,
                None if bottom.upper_bound is None else 0.0 - bottom.upper_bound,
                top.upper_bound,
                "exact" if top.status == "optimal" and bottom.status == "optimal" else "unknown",
                low,
                top.value,
            )
        )
    return RangeResult(tuple(results), time.perf_counter() - started)
