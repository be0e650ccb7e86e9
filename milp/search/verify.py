"""Answer a VNN-LIB property like a verifier of the competition VNN-COMP: sat, unsat or timeout.

A property's unsafe set is a union of disjuncts ``{x in box : C y <= d}`` (see
:mod:`milp.io.vnnlib`). :func:`verify` answers

* ``sat``: a counterexample ``x`` in some disjunct, found by search and accepted only after
  its float64 output satisfies the disjunct, the reference model (onnxruntime on the
  original file) agrees, and the competition's own check (tolerance 1e-4) passes on the
  reference output;
* ``unsat``: proved that no disjunct is reachable (the property holds);
* ``timeout``: the time budget ran out first; ``unknown``: the search ended without either
  (a point that would be a counterexample but that the reference model does not confirm).

Never a guess. For each disjunct the search is about its *margin*
``m(x) = min_r (d_r - C_r . y(x))``: the disjunct is reachable exactly when ``max m >= 0``
over its box. Disjuncts that share a box are searched together (one bound computation
serves them all). The steps, cheapest first:

1. Falsification: uniform samples of the box, then projected gradient ascent on the margin
   from many starts at once. A ReLU network is piecewise affine, so the gradient at a
   point is exact: the output rows multiplied back through the active neurons. While the
   search below stays undecided, larger rounds follow (after 1.5, 5, 15, 30 s, then every
   20 s), half their samples drawn in the open sub-boxes with the highest bounds.
2. Input splitting, many sub-boxes per numpy call: sound bounds on the margin over each
   sub-box — symbolic bounds (linear in ``x``) for every neuron, then the margin's rows
   back-substituted through the ReLU relaxations (CROWN style), each bound computed with
   CROWN's adaptive lower ReLU slopes and with lower slope 0, the smaller kept. A
   disjunct's rows are combined convexly (``min_r f_r <= sum_r w_r f_r``) over a grid of
   weights, which closes sub-boxes where different rows bind in different parts. A sub-box
   whose upper bound is below 0 is closed; its centre and the corner that maximises the
   linear bound are tried as counterexamples; a sub-box too small to split (or, when
   enabled, with few unstable neurons) is decided by an exact MILP (:mod:`milp.search.exact`);
   the others are halved along the input that the linear bound depends on most (slope
   times width).

3. On wide inputs neurons are split instead of inputs; a search still open after a few seconds
   refines the intermediate bounds (:mod:`milp.search.refine`) and starts again from them. With a
   second process (:attr:`~milp.search.branch.Settings.refine_workers`), a portfolio: a child
   process runs one whole-box MILP with the refined bounds per disjunct still open in the search,
   in turns of doubling length (:attr:`~milp.search.branch.Settings.milp_arm`), and the search
   drops each disjunct it proves unsat.

Steps 1 to 3 are the one branch and bound of :mod:`milp.search.branch`, which the queries drive
too. The time budget is shared by all disjuncts and sub-boxes. Every bound is widened outward
by a margin far above float64 rounding (as in :mod:`milp.bounds.propagate`), so ``unsat`` is proved
for the float64 network; a counterexample is confirmed on the reference model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.conditions import Condition
from milp.core.deadline import Deadline
from milp.core.errors import InputError
from milp.core.network import Affine, Network
from milp.core.options import SolverOptions
from milp.io.vnnlib import VnnlibProperty, check_counterexample, write_counterexample
from milp.search.branch import BranchAndBound, Found, Objective, OutOfTime, Settings, refines
from milp.search.exact import ReachArm, milp_reach
from milp.search.queries import refine_for_search
from milp.search.witness import Reference, reference_output

__all__ = ["Verdict", "VerifyError", "verify", "RESULTS", "SEVERAL_NETWORKS"]

RESULTS = ("sat", "unsat", "timeout", "unknown", "error")

# Settings for a query over several networks side by side (VNN-LIB 2.0): bounds relax each copy on its
# own, so a bound on their difference stays loose however small the sub-box, while one MILP couples them.
# Sub-boxes with up to 64 unstable neurons therefore go to the MILP (measured on ACAS Xu 1_1 and its
# simplified copy: the property-3 box shrunk 4x is proved equal in about a minute, against no answer in
# 120 s without the leaf).
SEVERAL_NETWORKS = Settings(leaf_unstable=64)

# The competition accepts a counterexample whose output meets the rows up to this.
COUNTEREXAMPLE_TOLERANCE = 1e-4


class VerifyError(InputError):
    """A property that does not fit the network, or a bad argument to :func:`verify`."""


@dataclass(frozen=True)
class Verdict:
    """The answer to a property.

    ``result`` is one of :data:`RESULTS`; for ``sat``, ``x`` (input_dim,) is the
    counterexample and ``y`` (output_dim,) its output as the reference model computes it
    (the float64 network's when there is no reference). ``subproblems`` counts bounded
    sub-boxes, ``milp_calls`` exact MILPs; ``reason`` says why a result is not sat/unsat.
    """

    result: str
    x: np.ndarray | None
    y: np.ndarray | None
    seconds: float
    subproblems: int = 0
    milp_calls: int = 0
    reason: str = ""

    def counterexample_text(self) -> str:
        """The competition's result text: the result word, then for sat the counterexample."""
        if self.result == "sat":
            return write_counterexample(self.x, self.y)
        return self.result

    def to_json(self) -> dict:
        return {
            "result": self.result,
            "counterexample": None if self.x is None else {"x": self.x.tolist(), "y": self.y.tolist()},
            "seconds": self.seconds,
            "subproblems": self.subproblems,
            "milp_calls": self.milp_calls,
            "reason": self.reason,
        }


def _objectives(network: Network, prop: VnnlibProperty) -> list[Objective]:
    """The property's disjuncts grouped by box, each group one :class:`Objective` whose rows are the
    margins ``rhs_r - C_r . y`` as affine maps over the network's sources. A disjunct without rows
    (its whole box is unsafe) gets the row ``0 >= 0``."""
    output = network.output
    by_box: dict[tuple, list] = {}
    for disjunct in prop.disjuncts:
        by_box.setdefault((disjunct.box.lower.tobytes(), disjunct.box.upper.tobytes()), []).append(disjunct)
    objectives = []
    for members in by_box.values():
        rows, rhs, starts = [], [], []
        for disjunct in members:
            starts.append(sum(part.size for part in rhs))  # the row where this disjunct begins
            if disjunct.output_rows.shape[0] == 0:
                rows.append(np.zeros((1, prop.n_outputs)))
                rhs.append(np.zeros(1))
            else:
                rows.append(disjunct.output_rows)
                rhs.append(disjunct.output_rhs)
        C, d = np.vstack(rows), np.concatenate(rhs)
        form = Affine(tuple((s, -(C @ m)) for s, m in output.terms), d - C @ output.bias)
        objectives.append(Objective.of_rows(members[0].box, form, starts))
    return objectives


class _Counterexamples:
    """Accepts a candidate only when the float64 network, the reference model and the competition's
    check all agree that it is in the unsafe set."""

    def __init__(self, network: Network, prop: VnnlibProperty, reference: Reference | None):
        self.network, self.prop, self.reference = network, prop, reference
        self.rejected = 0  # candidates the reference model or the competition's check refused

    def accept(self, engine: BranchAndBound, x: np.ndarray, margin: float) -> None:
        box = engine.objective.box
        x = np.clip(np.asarray(x, dtype=np.float64), box.lower, box.upper)
        trace = self.network.forward(x[None, :])
        if not np.any(engine.margins(trace) >= 0):
            return
        y = trace.output[0]
        reported = y
        if self.reference is not None:
            reported = reference_output(self.reference, x, y)
            if reported is None:
                self.rejected += 1
                return
        if not check_counterexample(self.prop, x, reported, tol=COUNTEREXAMPLE_TOLERANCE):
            self.rejected += 1
            return
        raise Found(x, reported)

    @staticmethod
    def conditions(objective: Objective, j: int) -> list[Condition]:
        """Disjunct ``j`` of ``objective`` as conditions: each of its rows >= 0."""
        return [Condition(objective.form.rows(slice(r, r + 1)), False, f"row {r}") for r in np.flatnonzero(objective.owner == j)]

    def disjunct(self, engine: BranchAndBound, box: Box, bounds: Bounds, j: int, deadline: Deadline) -> str:
        """One exact MILP for disjunct ``j`` of ``engine``'s objective over ``box``, within ``deadline``:
        "unsat", or "open" (a limit, or a point the checks refused). A confirmed point raises Found."""
        conditions = self.conditions(engine.objective, j)
        status, x, _ = milp_reach(self.network, box, bounds, conditions, self.reference, deadline, SolverOptions())
        if status == "sat":
            self.accept(engine, x, 0.0)  # raises Found when confirmed; else the reference refused it
        return "unsat" if status == "unsat" else "open"

    def leaf(self, engine: BranchAndBound, box: Box, lower: np.ndarray, upper: np.ndarray, open_: np.ndarray) -> str:
        """Decide each open disjunct over ``box`` by one exact MILP each."""
        bounds = Bounds.from_flat(self.network, lower, upper, "symbolic")
        for j in np.flatnonzero(open_):
            if self.disjunct(engine, box, bounds, j, engine.deadline) != "unsat":
                engine.check_time()
                return "split"  # look closer
        return "closed"


class _DisjunctArm:
    """The portfolio's second arm beside a search restarted from refined bounds ``bounds``: one
    whole-box MILP (HiGHS, in a child process) per disjunct still open in the search, one at a time.
    Each disjunct's first MILP stops after ``seconds``; one not decided goes back to the queue with
    twice that, after every other has had its turn, so that no hard disjunct holds up the easy ones.
    An instance that has a second process for it only (:attr:`~milp.search.branch.Settings.refine_workers`).

    Called by the search before each batch (``elsewhere``): returns the disjuncts (J,) bool proved
    unsat so far; a point the MILP finds is handed to the checks (Found when confirmed)."""

    def __init__(self, checks: _Counterexamples, bounds: Bounds, deadline: Deadline, seconds: float):
        self.checks, self.bounds, self.deadline, self.seconds = checks, bounds, deadline, seconds
        self.limits: dict[int, float] = {}  # a disjunct's next MILP's limit (seconds)
        self.proved: np.ndarray | None = None
        self.refused: set[int] = set()  # disjuncts whose MILP point the checks refused: left to the search
        self.running: tuple[int, ReachArm] | None = None

    def __call__(self, engine: BranchAndBound, open_: np.ndarray) -> np.ndarray:
        if self.proved is None:
            self.proved = np.zeros(engine.objective.disjuncts, dtype=bool)
        if self.running is not None:
            j, arm = self.running
            if open_[j] and not arm.finished():
                return self.proved
            self.running = None
            if not open_[j]:  # the search closed it first
                arm.abandon()
            else:
                status, x, _ = arm.result()
                engine.counters.milp_calls += 1
                if status == "unsat":
                    self.proved[j] = True
                elif status == "sat":
                    self.checks.accept(engine, x, 0.0)  # raises Found when confirmed
                    self.refused.add(j)
                else:
                    self.limits[j] *= 2.0
        waiting = [j for j in np.flatnonzero(open_ & ~self.proved) if j not in self.refused]
        if waiting and not self.deadline.expired():
            j = min(waiting, key=lambda k: (self.limits.setdefault(k, self.seconds), k))
            conditions = _Counterexamples.conditions(engine.objective, j)
            until = self.deadline.sooner(self.limits[j])
            self.running = (j, ReachArm(self.checks.network, engine.objective.box, self.bounds, conditions, SolverOptions(), until))
        return self.proved

    def close(self) -> None:
        """Stop the MILP still running, if any."""
        if self.running is not None:
            self.running[1].abandon()
            self.running = None


# ------------------------------------------------------------------ public API
def verify(
    network: Network,
    prop: VnnlibProperty,
    *,
    timeout: float | None,
    reference: Reference | None = None,
    seed: int = 0,
    settings: Settings = Settings(),
    stop: threading.Event | None = None,
) -> Verdict:
    """Decide whether the property's unsafe set is reachable: a :class:`Verdict`.

    ``timeout`` (seconds, None for none) bounds the whole call; setting ``stop`` ends it early
    (``unknown``, "stopped on request"); ``reference`` evaluates the
    original model (e.g. ``importers.OnnxReference``) on a batch ``(n, input_dim)`` and must
    confirm every counterexample; ``seed`` makes the random search repeatable.

    >>> # verify(load_onnx("net.onnx"), read_vnnlib("prop.vnnlib", 5, 5), timeout=60).result
    """
    started = time.perf_counter()
    if not isinstance(prop, VnnlibProperty):
        raise VerifyError(f"expected a VnnlibProperty (from milp.io.vnnlib.read_vnnlib), got {type(prop).__name__}")
    if prop.n_inputs != network.input_dim or prop.n_outputs != network.output_dim:
        raise VerifyError(
            f"the property has {prop.n_inputs} inputs and {prop.n_outputs} outputs; "
            f"the network has {network.input_dim} and {network.output_dim}"
        )
    if timeout is not None and not (timeout > 0):
        raise VerifyError(f"timeout must be a positive number of seconds, got {timeout}")
    deadline = Deadline.after(timeout, stop)
    checks = _Counterexamples(network, prop, reference)
    rng = np.random.default_rng(seed)
    engines: list[BranchAndBound] = []  # every search run, for the counters

    def search(objective: Objective, until: Deadline, known=None, elsewhere=None) -> BranchAndBound:
        engines.append(BranchAndBound(network, objective, checks.accept, checks.leaf, until, settings, rng, known=known,
                                      elsewhere=elsewhere))
        return engines[-1]

    def decide(engine: BranchAndBound) -> str:
        # a neuron-split search still open after `refine_after` seconds starts again from intermediate
        # bounds tightened neuron by neuron (mnist_fc 256x6 prop_7_0.03: 82 s before, 22 s with them)
        try:
            return engine.run()
        except OutOfTime:
            if not refines(network, engine.objective.box, settings) or deadline.expired():
                raise
        lower, upper, _ = refine_for_search(network, engine.objective.box, None, deadline, settings, restarting=engine)
        known = (lower, upper)
        if settings.refine_workers > 1 and settings.milp_arm > 0:
            # a second process: whole-box MILPs per disjunct beside the restarted search
            arm = _DisjunctArm(checks, Bounds.from_flat(network, *known, "refined"), deadline, settings.milp_arm)
            try:
                return search(engine.objective, deadline, known, elsewhere=arm).run()
            finally:
                arm.close()
        return search(engine.objective, deadline, known).run()

    def verdict(result: str, x=None, y=None, reason: str = "") -> Verdict:
        return Verdict(result, x, y, time.perf_counter() - started, sum(e.counters.subproblems for e in engines),
                       sum(e.counters.milp_calls for e in engines), reason)

    try:
        first = [search(o, deadline.sooner(settings.refine_after) if refines(network, o.box, settings) else deadline) for o in _objectives(network, prop)]
        for engine in first:
            try:
                engine.falsify()
            except OutOfTime:
                if not refines(network, engine.objective.box, settings) or deadline.expired():
                    raise  # else only the first search's clock ran out: its run stops at once, to refine
        undecided = sum(decide(engine) != "closed" for engine in first)
    except Found as found:
        return verdict("sat", found.x, found.y)
    except OutOfTime:
        if deadline.stopped:
            return verdict("unknown", reason="stopped on request")
        return verdict("timeout", reason="time limit reached")
    if undecided:
        why = "sub-boxes that neither bounds nor the MILP could close"
        if checks.rejected:
            why += f"; {checks.rejected} candidate counterexample(s) failed the reference check"
        return verdict("unknown", reason=why)
    return verdict("unsat")
