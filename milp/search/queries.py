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
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from milp.bounds.propagate import Bounds, bound_affine
from milp.core.box import Box
from milp.core.deadline import NO_DEADLINE, Deadline
from milp.core.errors import InputError
from milp.core.options import check_seconds
from milp.core.conditions import Condition, parse_conditions, value_form
from milp.encode.bigm import MilpModel, affine_row, build_milp, condition_rows
from milp.solvers.highs import HighsSolver, Solution, Status
from milp.core.options import SolverOptions
from milp.core.network import Affine, Network
from milp.core.patterns import local_form, pattern_constraints
from milp.search.tighten import pre_activation_bounds
from milp.core.tolerances import REFERENCE_TOLERANCE, condition_tolerance, proves_not_positive
from milp.search.branch import BranchStats, Frontier, SubProblem, ascent_candidates, best_split, open_subproblem, smear_split, split

__all__ = [
    "FiresResult",
    "ReachResult",
    "OutputRange",
    "RangeResult",
    "QueryError",
    "fires",
    "reach",
    "output_range",
    "check_point",
]

Reference = Callable[[np.ndarray], np.ndarray]



class QueryError(InputError):
    """A query that cannot be asked (unknown layer or neuron, wrong box, ...)."""


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class FiresResult:
    """Can neuron ``neuron`` of ReLU layer ``layer`` be positive in the box?

    ``status`` is ``fires`` (a checked witness with ``z > 0``), ``never`` (proved ``max z <= 0``)
    or ``unknown`` (time limit). ``maximum`` is the exact maximum of ``z`` (the value at
    ``witness``, shape ``(input_dim,)``) when proved; ``upper_bound`` the proved bound.
    """

    layer: int
    neuron: int
    status: str
    maximum: float | None
    upper_bound: float | None
    witness: np.ndarray | None
    seconds: float
    bounds_method: str = ""

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
    """

    index: int
    min: float | None
    max: float | None
    argmin: np.ndarray | None
    argmax: np.ndarray | None
    min_bound: float | None
    max_bound: float | None
    status: str

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
            "status": self.status,
        }


@dataclass(frozen=True)
class RangeResult:
    outputs: tuple[OutputRange, ...]
    seconds: float

    def to_json(self) -> dict:
        return {"outputs": [o.to_json() for o in self.outputs], "seconds": self.seconds}


# ------------------------------------------------------------------ checks
def _limit_reason(deadline: Deadline) -> str:
    return "stopped on request" if deadline.stopped else "time limit reached"


def check_point(
    network: Network,
    box: Box,
    x: np.ndarray,
    conditions: Sequence[Condition] = (),
    reference: Reference | None = None,
) -> tuple[bool, str]:
    """Re-check a point: in the box, every condition holds in float64, and the reference model agrees.

    Returns ``(ok, why_not)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (network.input_dim,) or not np.all(np.isfinite(x)):
        return False, "not a finite input of the right size"
    if not box.contains(x):
        return False, "outside the box"
    trace = network.forward(x[None, :])
    values = [trace.inputs, *trace.activations]
    for condition in conditions:
        e = condition.expression
        slack = float(e.apply(values)[0, 0])
        scale = float(sum(np.abs(w).sum() * np.abs(values[s]).max(initial=0.0) for s, w in e.terms) + abs(e.bias[0]))
        if condition.strict and not slack > condition_tolerance(scale):
            # a margin of a few ulps is rounding, not a proof that the strict inequality holds
            return False, f"{condition.text!r} does not hold strictly ({slack:.3g})"
        if not condition.strict and slack < -condition_tolerance(scale):
            return False, f"{condition.text!r} fails by {-slack:.3g}"
    if reference is not None:
        expected = trace.output[0]
        got = np.asarray(reference(x[None, :]), dtype=np.float64).reshape(-1)
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=REFERENCE_TOLERANCE, atol=REFERENCE_TOLERANCE):
            return False, "the reference model disagrees with the float64 network at this point"
    return True, ""


def _clip(box: Box, x: np.ndarray) -> np.ndarray:
    # Solver points may sit a tolerance outside the box; the clipped point is what gets checked.
    return np.clip(x, box.lower, box.upper)


# ------------------------------------------------------------------ helpers
def _pattern_lp_polish(
    network: Network,
    box: Box,
    x: np.ndarray,
    objective: Affine | None,
    conditions: Sequence[Condition],
    maximize: bool,
) -> np.ndarray | None:
    """Re-solve as an LP over the activation region of ``x``: exact where the MILP point is a tolerance off.

    Fixing every neuron's phase to its phase at ``x`` makes the network affine; the LP's
    optimum (the objective's, or the largest margin of the strict conditions) is a point
    of that region where the float64 forward pass agrees with the LP.
    """

    pattern = network.forward(x[None, :]).pattern()[0]
    strict = [c for c in conditions if c.strict]
    A, b = pattern_constraints(network, box, pattern, [c for c in conditions if not c.strict])
    d = network.input_dim
    # variables (x, t): strict conditions as e(x) >= t, t <= 1; maximise t or the objective
    rows = [np.hstack([A, np.zeros((A.shape[0], 1))])]
    rhs = [b]
    for condition in strict:
        g, g0 = local_form(network, pattern, condition.expression)
        rows.append(np.hstack([-g, [[1.0]]]))
        rhs.append(g0)
    cost = np.zeros(d + 1)
    if objective is not None:
        g, _ = local_form(network, pattern, objective)
        cost[:d] = -g[0] if maximize else g[0]
    else:
        cost[d] = -1.0
    t_bounds = (None, 1.0) if strict else (0.0, 0.0)
    result = linprog(
        cost,
        A_ub=np.vstack(rows),
        b_ub=np.concatenate(rhs),
        bounds=[*zip(box.lower, box.upper), t_bounds],
        method="highs",
    )
    if result.status != 0:
        return None
    return _clip(box, result.x[:d])


def _solve_checked(
    network: Network,
    box: Box,
    model: MilpModel,
    solver: HighsSolver,
    objective: Affine | None,
    conditions: Sequence[Condition],
    maximize: bool,
    reference: Reference | None,
    deadline: Deadline,
    options: SolverOptions,
) -> tuple[Solution, np.ndarray | None, str]:
    """Solve, then check the point (polishing it by an LP when the raw point fails)."""
    solution = solver.solve(deadline)
    if not solution.has_point:
        return solution, None, ""
    x = _clip(box, solution.values[model.layout.input])
    ok, why = check_point(network, box, x, conditions, reference)
    if ok:
        return solution, x, ""
    polished = _pattern_lp_polish(network, box, x, objective, conditions, maximize)
    if polished is not None:
        ok2, why2 = check_point(network, box, polished, conditions, reference)
        if ok2:
            return solution, polished, ""
        why = why2
    return solution, None, why


# ------------------------------------------------------------------ maximisation
@dataclass(frozen=True)
class Maximum:
    """The proved maximum of a one-row form: ``status`` ``optimal`` or ``unknown`` (limit);
    ``value`` at the checked point ``x`` (input_dim,); ``upper_bound`` proved."""

    status: str
    value: float | None
    x: np.ndarray | None
    upper_bound: float | None
    subproblems: int = 0
    milp_calls: int = 0


# Inputs up to this many dimensions are split (branch and bound over sub-boxes); wider
# inputs go to one MILP over the whole box, where splitting cannot pay.
SPLIT_INPUT_LIMIT = 8
# A sub-box with at most this many unstable neurons is closed by one exact MILP.
LEAF_UNSTABLE = 12
SPLITTERS = {"best": best_split, "smear": smear_split}
# A maximum is proved when no open sub-box can exceed the best checked value by more than
# this (relative): symbolic bounds are widened outward by ~1e-9 for rounding, so on a plateau
# of optima a tighter test would split forever.
OPTIMALITY_TOLERANCE = 1e-7


def _prepare(network: Network, box: Box, bounds: Bounds | str, deadline: Deadline) -> Bounds:
    box.check_dim(network.input_dim)
    if isinstance(bounds, Bounds):
        return bounds
    return pre_activation_bounds(network, box, bounds, deadline=deadline)


def _milp_maximum(network, box, bounds, form, reference, deadline, options, check_network=None) -> Maximum:
    """One exact MILP over ``box``: the maximum of ``form`` (over ``network``'s sources)."""
    model = build_milp(network, box, bounds)
    solver = HighsSolver(model, options)
    cols, coefs, constant = affine_row(model.layout, form)
    solver.set_objective(cols, coefs, constant, maximize=True)
    check = check_network or network
    solution, x, _ = _solve_checked(check, box, model, solver, form, (), True, reference, deadline, options)
    if solution.status == "infeasible":
        raise QueryError("the MILP is infeasible over the box, which cannot happen for a valid network and box")
    value = None if x is None else float(form.apply([*_values(network, x)])[0, 0])
    bound = solution.bound
    exact = solution.status == "optimal" and value is not None and bound is not None and bound - value <= 1e-6 * (1 + abs(value))
    return Maximum("optimal" if exact else "unknown", value, x, bound, 1, 1)


def _pyomo_maximum(network, box, form, bounds, solver, reference, deadline) -> Maximum:
    """The maximum through a Pyomo solver; ``optimal`` only when the solver says so and its point,
    re-evaluated by a float64 forward pass (and the reference model), attains the claimed optimum."""
    from milp.solvers.pyomo import solve_pyomo

    remaining = None if deadline.remaining() is None else max(1e-3, deadline.remaining())
    result = solve_pyomo(network, box, form, True, bounds, solver=solver, time_limit=remaining)
    if result.status != "optimal" or result.x is None or result.objective is None:
        return Maximum("unknown", None, None, None, 1, 1)
    x = np.clip(np.asarray(result.x, dtype=np.float64), box.lower, box.upper)
    value = float(form.apply(_values(network, x))[0, 0])
    if not check_point(network, box, x, (), reference)[0] or abs(value - result.objective) > 1e-6 * (1 + abs(value)):
        return Maximum("unknown", None, None, None, 1, 1)  # the solver's point does not confirm its optimum
    return Maximum("optimal", value, x, max(value, result.objective), 1, 1)


def _values(network: Network, x: np.ndarray) -> list[np.ndarray]:
    trace = network.forward(np.atleast_2d(x))
    return [trace.inputs, *trace.activations]


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
    splitter: str = "best",
    solver: str | None = None,
) -> Maximum:
    """The exact maximum over ``box`` of a one-row affine ``form`` over ``network``'s sources.

    Low-dimensional inputs are split (:mod:`milp.search.branch`), the rest solved as one MILP.
    ``solver`` names a Pyomo solver (e.g. ``"highs"``, ``"gurobi"``): the whole big-M MILP is
    then solved through Pyomo instead, and its point is re-checked like any other.
    """
    if solver is not None:
        return _pyomo_maximum(network, box, form, bounds, solver, reference, deadline)
    split_inputs = network.input_dim <= SPLIT_INPUT_LIMIT if split_inputs is None else split_inputs
    if not split_inputs:
        return _milp_maximum(network, box, _prepare(network, box, bounds, deadline), form, reference, deadline, options)
    forms = (form,)
    stats = BranchStats()
    frontier = Frontier()
    best_value, best_x = -np.inf, None
    leaf_upper = -np.inf

    def consider(sub: SubProblem) -> None:
        nonlocal best_value, best_x
        stats.subproblems += 1
        for x in ascent_candidates(network, sub.box, form):
            value = float(form.apply(_values(network, x))[0, 0])
            if value > best_value and check_point(network, box, x, (), reference)[0]:
                best_value, best_x = value, x
        frontier.push(sub)

    consider(open_subproblem(network, box, forms))
    while len(frontier):
        if deadline.expired():
            upper = max(frontier.peek_upper(), leaf_upper, best_value)
            return Maximum("unknown", best_value if best_x is not None else None, best_x, upper, stats.subproblems, stats.milp_calls)
        sub = frontier.pop()
        if sub.upper <= best_value + OPTIMALITY_TOLERANCE * (1 + abs(best_value)):
            # every open sub-box is bounded by this one (best first): the maximum is proved
            stats.closed_by_bounds += 1 + len(frontier)
            leaf_upper = max(leaf_upper, sub.upper)
            break
        if sub.bounds.unstable_count <= LEAF_UNSTABLE or not np.any(sub.box.widths > 1e-9 * (1 + np.max(box.widths))):
            result = _milp_maximum(network, sub.box, sub.bounds, form, reference, deadline, options)
            stats.milp_calls += 1
            if result.status != "optimal":
                upper = max(frontier.peek_upper(), sub.upper, best_value)
                return Maximum("unknown", best_value if best_x is not None else None, best_x, upper, stats.subproblems, stats.milp_calls)
            leaf_upper = max(leaf_upper, result.upper_bound)
            if result.value > best_value:
                best_value, best_x = result.value, result.x
            continue
        stats.splits += 1
        for child in SPLITTERS[splitter](network, sub, forms):
            consider(child)
    upper = max(leaf_upper, best_value)
    return Maximum("optimal", best_value, best_x, upper, stats.subproblems, stats.milp_calls)


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
    if not 0 <= layer < len(network.widths):
        raise QueryError(f"there is no ReLU layer {layer}: the network has {len(network.widths)} (0..{len(network.widths) - 1})")
    if not 0 <= neuron < network.widths[layer]:
        raise QueryError(f"ReLU layer {layer} has {network.widths[layer]} neurons (0..{network.widths[layer] - 1}); there is no neuron {neuron}")
    # Only the layers below matter: the neuron's z is the output of the truncated network.
    objective = value_form(network, f"z{layer}", neuron)
    sub = Network(network.input_dim, network.relu_layers[:layer], objective)
    if isinstance(bounds, Bounds):
        bounds = Bounds(tuple(bounds.lower[:layer]), tuple(bounds.upper[:layer]), bounds.method)
    found = maximize(sub, box, objective, bounds=bounds, options=options, deadline=deadline, reference=None, split_inputs=split_inputs, solver=solver)
    x = found.x
    if x is not None and reference is not None and not check_point(network, box, x, (), reference)[0]:
        x = None  # the reference model disagrees: say nothing rather than a wrong witness
    value = found.value if x is not None else None
    if value is not None and value > 0:
        status = "fires"
    elif found.status == "optimal" and proves_not_positive(found.upper_bound):
        status = "never"
    else:
        status = "unknown"
    exact = found.status == "optimal" and value is not None
    return FiresResult(
        layer, neuron, status, value if exact else None, found.upper_bound, x if (status == "fires" or exact) else None,
        time.perf_counter() - started, bounds if isinstance(bounds, str) else bounds.method,
    )


def _milp_reach(network, box, bounds, conditions, reference, deadline, options) -> tuple[str, np.ndarray | None, str]:
    """One MILP over ``box``: ``("sat", x, "")``, ``("unsat", None, why)`` or ``("unknown", None, why)``."""
    model = build_milp(network, box, bounds)
    solver = HighsSolver(model, options)
    strict = [c for c in conditions if c.strict]
    rows, lower, upper = condition_rows(model.layout, [c for c in conditions if not c.strict])
    solver.add_rows(rows, lower, upper)
    if strict:
        # strict conditions through a margin t that is maximised: e(x) - t >= 0, t <= 1
        t = solver.add_column(-np.inf, 1.0)
        srows, slower, supper = condition_rows(model.layout, strict)
        srows = sp.hstack([sp.csr_matrix((srows.data, srows.indices, srows.indptr), shape=(srows.shape[0], t)), -np.ones((len(strict), 1))], format="csr")
        solver.add_rows(srows, slower, supper)
        solver.set_objective([t], [1.0], 0.0, maximize=True)
    solution, x, why = _solve_checked(network, box, model, solver, None, conditions, True, reference, deadline, options)
    if x is not None:
        return "sat", x, ""
    if solution.status == "infeasible":
        return "unsat", None, ""
    if strict and solution.status == Status.OPTIMAL and proves_not_positive(solution.bound):
        return "unsat", None, f"the strict conditions hold nowhere (largest margin {solution.bound:.3g}, within the solver's tolerance of 0)"
    if solution.status in (Status.TIME_LIMIT, Status.FEASIBLE, Status.INTERRUPTED):
        return "unknown", None, _limit_reason(deadline)
    return "unknown", None, why or f"solver status {solution.status}"


def _cannot_hold(sub: SubProblem, conditions, uppers) -> bool:
    return any(hi < 0 or (c.strict and hi <= 0) for c, hi in zip(conditions, uppers))


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
    conditions = parse_conditions(network, conditions)
    if not conditions:
        raise QueryError("reach needs at least one condition, e.g. --where \"y[0] >= 0\"")
    stats = BranchStats()

    def done(status, x=None, reason="", by=""):
        return ReachResult(status, x, None if x is None else network.forward(x).output, time.perf_counter() - started, reason, by, stats.subproblems, stats.milp_calls)

    def holds(points: np.ndarray) -> np.ndarray:
        values = _values(network, points)
        ok = np.ones(points.shape[0], dtype=bool)
        for c in conditions:
            s = c.expression.apply(values)[:, 0]
            ok &= s > 0 if c.strict else s >= 0
        return ok

    # 1. cheap falsification: box centre and corners, uniform samples
    if samples > 0:
        rng = np.random.default_rng(seed)
        points = np.vstack([box.center[None, :], box.lower[None, :], box.upper[None, :], box.sample(samples, rng)])
        for index in np.flatnonzero(holds(points))[:5]:
            if check_point(network, box, points[index], conditions, reference)[0]:
                return done("sat", points[index], by="sampling")
    forms = tuple(c.expression for c in conditions)
    split_inputs = network.input_dim <= SPLIT_INPUT_LIMIT if split_inputs is None else split_inputs
    if not split_inputs:
        bound_set = _prepare(network, box, bounds, deadline)
        for c in conditions:
            lo, hi = bound_affine(network, bound_set, box, c.expression)
            if hi[0] < 0 or (c.strict and hi[0] <= 0):
                return done("unsat", reason=f"{c.text!r} cannot hold over the box (bounds)", by="bounds")
        stats.milp_calls += 1
        status, x, why = _milp_reach(network, box, bound_set, conditions, reference, deadline, options)
        return done(status, x, why, by="milp")
    # 2. input splitting: a sub-box is closed by bounds, by a checked centre, or by a MILP
    frontier = Frontier()

    def consider(sub: SubProblem, uppers) -> ReachResult | None:
        stats.subproblems += 1
        if _cannot_hold(sub, conditions, uppers):
            stats.closed_by_bounds += 1
            return None
        x = sub.box.center
        if holds(x[None, :])[0] and check_point(network, box, x, conditions, reference)[0]:
            return done("sat", x, by="splitting")
        frontier.push(sub)
        return None

    def open_with_uppers(sub_box: Box):
        sub = open_subproblem(network, sub_box, forms)
        uppers = [float(bound_affine(network, sub.bounds, sub_box, f)[1][0]) for f in forms]
        return sub, uppers

    answer = consider(*open_with_uppers(box))
    if answer is not None:
        return answer
    while len(frontier):
        if deadline.expired():
            return done("unknown", reason=_limit_reason(deadline), by="splitting")
        sub = frontier.pop()
        if sub.bounds.unstable_count <= LEAF_UNSTABLE or not np.any(sub.box.widths > 1e-9 * (1 + np.max(box.widths))):
            stats.milp_calls += 1
            status, x, why = _milp_reach(network, sub.box, sub.bounds, conditions, reference, deadline, options)
            if status == "sat":
                return done("sat", x, by="splitting+milp")
            if status == "unknown":
                return done("unknown", reason=why, by="splitting+milp")
            continue
        stats.splits += 1
        for child_box in split(sub.box, _widest_relative(sub.box, box)):
            answer = consider(*open_with_uppers(child_box))
            if answer is not None:
                return answer
    return done("unsat", by="splitting+milp" if stats.milp_calls else "splitting")


def _widest_relative(sub: Box, whole: Box) -> int:
    widths = np.where(whole.widths > 0, sub.widths / np.where(whole.widths > 0, whole.widths, 1.0), -1.0)
    return int(np.argmax(widths))


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

    ``solver`` names a Pyomo solver to use instead of the built-in HiGHS path (see :func:`maximize`).

    >>> # output_range(net, parse_box("-1:1", 2)).outputs[0].max
    """
    started = time.perf_counter()
    deadline = Deadline.after(check_seconds(time_limit if time_limit is not None else options.time_limit), stop)
    box.check_dim(network.input_dim)
    indices = list(range(network.output_dim)) if outputs is None else [int(i) for i in outputs]
    for i in indices:
        if not 0 <= i < network.output_dim:
            raise QueryError(f"there is no output {i}: the network has {network.output_dim} (0..{network.output_dim - 1})")
    results = []
    for i in indices:
        form = value_form(network, "y", i)
        negated = Affine(tuple((s, -w) for s, w in form.terms), -form.bias)
        top = maximize(network, box, form, bounds=bounds, options=options, deadline=deadline, reference=reference, split_inputs=split_inputs, solver=solver)
        bottom = maximize(network, box, negated, bounds=bounds, options=options, deadline=deadline, reference=reference, split_inputs=split_inputs, solver=solver)
        exact = top.status == "optimal" and bottom.status == "optimal"
        results.append(
            OutputRange(
                i,
                None if bottom.value is None or bottom.status != "optimal" else 0.0 - bottom.value,
                top.value if top.status == "optimal" else None,
                bottom.x if bottom.status == "optimal" else None,
                top.x if top.status == "optimal" else None,
                None if bottom.upper_bound is None else 0.0 - bottom.upper_bound,
                top.upper_bound,
                "exact" if exact else "unknown",
            )
        )
    return RangeResult(tuple(results), time.perf_counter() - started)
