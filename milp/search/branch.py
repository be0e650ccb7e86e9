"""The one branch and bound over input sub-boxes, driven by ``maximize``, ``reach`` and ``verify``.

Every question is put the same way: an :class:`Objective` of disjuncts, each the minimum of a
few affine *margin rows* over the network's sources, and a threshold ``t``. Some input "holds"
when a disjunct's margin reaches ``t``.

* ``verify``: the disjuncts of a VNN-LIB property (margin rows ``rhs - c . y``), ``t = 0``;
* ``reach``: one disjunct, a row per condition, ``t = 0``;
* ``maximize``: one disjunct, one row (the form), and ``t`` the best checked value so far,
  raised as better points are found.

Open sub-boxes wait on a stack (newest first, and every few batches the highest bounds), bounded
in batches of up to ``batch`` at once by the one bounding
engine (:class:`~milp.bounds.propagate.BatchBounder`). A box is closed when no open disjunct's
upper bound reaches the threshold; a box with few unstable neurons (or too small to split) is
handed to the caller's *leaf* (an exact MILP); the others are halved along the input whose halves
have the lowest bound. Candidate points (samples, projected gradient ascent, box centres and the
corners that maximise each box's linear bound) go to the caller's *accept*, which re-checks them
and may end the search (raise :class:`Found`) or raise the threshold.

Every bound is sound (widened outward); a question is decided only by a checked point, or by
closing every box.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, fields, replace
from typing import Callable

import numpy as np

from milp.bounds.propagate import BatchBounder, with_lower_slope
from milp.core.box import Box
from milp.core.deadline import Deadline
from milp.core.network import Affine, Network
from milp.core.patterns import input_gradients
from milp.core.tolerances import BOUND_MARGIN, OPTIMALITY_TOLERANCE
from milp.encode.bigm import binary_free

__all__ = ["Objective", "Settings", "Boxes", "BranchAndBound", "Found", "OutOfTime", "simplex_grid", "open_at_root", "root_closes"]


class Found(Exception):
    """A confirmed point: ends the search (``x`` (d,), ``y`` as the reference model computes it)."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None):
        super().__init__("found")
        self.x, self.y = x, y


class OutOfTime(Exception):
    """The deadline passed during the search, a stop was requested, or :attr:`Settings.max_subproblems`
    were bounded."""


@dataclass(frozen=True)
class Settings:
    """Search constants (a value, not a global, so callers and experiments pass their own)."""

    samples: int = 2000  # uniform samples in the box
    attack_starts: int = 256  # gradient-ascent starts
    attack_steps: int = 60
    batch: int = 1024  # sub-boxes split per numpy call (their 2048 halves are bounded at once)
    neuron_batch: int = 128  # the same when neurons are split (a wide net's sub-problem weighs far more)
    leaf_unstable: int = 0  # a sub-box with at most this many unstable neurons goes to the leaf (0: none)
    # "trial" (bound both halves along every input, keep the best), "slope" (|linear bound
    # slope| x width), "widest", or "auto": trial for a single disjunct, slope for several
    # (measured on ACAS Xu: trial is many times faster on one disjunct, much slower on several)
    split: str = "auto"
    spread: int = 60  # only inputs at least 2**-spread as wide (relative) as the widest are split
    local_attack: int = 32  # sub-boxes per batch whose best corner gets a few gradient steps
    local_steps: int = 8
    # While the search runs undecided, larger falsification rounds with fresh random points
    # start after these many seconds of it (then every last gap again): a point in a small
    # basin is found long before the bounds would reach it.
    rounds_after: tuple = (1.5, 5.0, 15.0, 30.0)
    round_samples: int = 50000
    round_starts: int = 5000
    round_steps: int = 200
    round_every: float = 20.0
    # a round lasts at most this fraction of the search's time so far, a fraction multiplied by
    # `round_decay` after each round: the first rounds find the points (ACAS Xu 1_9 property 7: the
    # round at 1.5 s, 3.2 s in all; with every round capped at 5 %, 29 s), the later ones rarely do and
    # took 30 % of a long proof (3_3 property 2: 40 s, 28 s at 5 %). Every ACAS Xu sat instance takes
    # the same time with the decay as without.
    round_share: float = 0.25
    round_decay: float = 0.5
    optimality: float = OPTIMALITY_TOLERANCE  # a found value closes boxes whose bound exceeds it by at most this (relative)
    # "input" (halve the box), "neuron" (fix one unstable ReLU's phase in each child) or "auto": inputs
    # while at most `narrow` of them are free, neurons beyond (splitting 784 pixels cannot pay)
    branching: str = "auto"
    narrow: int = 8
    # neuron branching: steps of projected gradient on the objective's relaxation (per-row lower ReLU
    # slopes, multipliers of the split neurons; 0: CROWN's slopes only). Measured on mnist_fc with the
    # root's bounds kept, 4 open instances at 60 s: 8 or 16 steps decide 0 or 1 of them, 32 decide 2
    # (256x2 prop_10_0.05 in 3.7 s, 256x4 prop_8_0.03 in 14 s), 64 the same 2 more slowly. Each open
    # (box, row) pair stops once it closes, or when at step 8, 16 or 24 its pace so far could not close
    # it (256x4 prop_11_0.05: 44 s with every row tuned 32 steps, 14.5 s; checking the pace at step 2 or
    # 4 as well drops rows that would have closed: both time out at 120 s). 16 steps: 36 s, 64: 38 s.
    optimise_steps: int = 32
    # neuron branching: steps of the same on every layer's unstable neurons at the root (alpha-CROWN's
    # intermediate bounds), which every sub-problem then keeps (0: CROWN's at the root, recomputed in
    # every sub-problem). A sub-problem's splits then act on its bound through their multipliers.
    root_steps: int = 20
    # neuron branching leaves alone, for each row, the neurons whose binary the row does not need
    # (milp.encode.bigm.binary_free: the last ReLU layer's neurons the row weighs down): their LP
    # relaxation is already exact for it, and the leaves' MILPs take them without a binary
    unsplit_free: bool = True
    # input branching: the same tuning of each open row's lower ReLU slopes in every sub-box (0: CROWN's
    # slopes and slope 0 only). Measured on ACAS Xu property 2 (116 s each), tuning from CROWN's slopes:
    # with 0, nets 3_3 and 4_2 time out (about 23,000 sub-boxes); 4 steps leave 4_2 open, 8 leave it
    # open at 100 s; 12 and 16 prove both; 32 leaves 3_3 open. Started from the parent's (`warm_start`),
    # 4 steps do better than 16: 4_2 in 17.6 s against 21.3 s, 3_3 in 29.4 s (8: 32.9 s).
    input_steps: int = 4
    # every this many batches, the boxes with the highest bounds are split instead of the newest
    # (0: depth-first only), so that a search stopped at a limit reports a bound that has fallen.
    # Measured, 30 s on seed 0 of the 10-64x4-1 rung: the bound on max y0 is 17.26 depth-first,
    # 15.69 with 4, 15.02 with 2, 14.59 with 1 (best-first); the 2-16-16-16-1 rung and ACAS Xu
    # property 2 on 3_3 take the same time with 2 as with 0. 1 would let the stack grow widest.
    best_every: int = 2
    # bytes the open sub-problems waiting on the stack may take while best-first turns still run: past
    # this the search goes depth-first only, which keeps the stack about as deep as the tree. Measured,
    # 120 s on seed 0 of the 10-64x4-1 rung (neuron splits), side by side: peak RSS 2,586 MiB with
    # best-first turns throughout (bound on max y0 14.08, 1.01M sub-boxes), 1,486 MiB with this budget
    # (14.50, 0.78M); depth-first from the start, 212 MiB (17.86).
    stack_memory: int = 2**30
    # trial splits try only this many inputs per box, those of largest |slope| x width (0: every eligible
    # input). Measured on ACAS Xu (all 186, 2 workers): all inputs 170 s wall, property 2 on 3_3 and 4_2
    # in 63 s and 40 s; 3 inputs 129 s, 45 s and 30 s (more sub-boxes, each cheaper); 2 inputs take
    # property 2 to 36 s and 26 s, but leave five property-1 instances open at 116 s.
    trial_dims: int = 3
    # input branching: each sub-box's tuning starts from its parent's best slopes and multipliers
    # (beta-CROWN's warm start) instead of CROWN's slopes. Measured on ACAS Xu property 2, 4_2: 24.2 s
    # (7,591 sub-boxes) cold with 16 steps, 21.3 s warm with 16, 17.6 s warm with 4 (cold with 8: 58 s).
    # Not when neurons are split: on mnist_fc 256x4 the parent's multipliers send Adam's first steps far
    # off (prop_8_0.03: 10.4 s cold, 15.8 s warm; with the parent's bound only as a candidate, the same
    # 18 of 30 are solved at 60 s as cold).
    warm_start: bool = True
    # a search stops as at its deadline (OutOfTime, with its open bound) once it has bounded this many
    # sub-problems (0: never)
    max_subproblems: int = 0
    # neuron branching: a search still open after `refine_after` seconds stops, tightens every layer's
    # intermediate bounds by a short search per unstable neuron side (`refine_subproblems` sub-problems,
    # within `refine_share` of the time left: milp.search.refine) and starts again from them (inf: never).
    # Measured on mnist_fc, side by side: 256x6 prop_7_0.03 82 s before, 22 s; 256x4 prop_11_0.05 13.8 s
    # before, 23.4 s. Max y0 on the 784-100-100-10 rung (seed 0): layer 2's
    # unstable neurons 74 -> 66 in 15 s (0.5 s a side: 60 in 72 s), the bound 0.20 after 150 s (0.26
    # after 120 s before); unproved either way. Longer sides pay in the first layers, whose tighter
    # bounds make neurons above stable: 256x4 prop_0_0.05 and 256x6 prop_9_0.03 time out (300 s) with
    # 0.1 s a side and half the time, and are proved in 78 s and 80 s with 0.2 s and 70 % (99 s and 117 s
    # with 0.4 s); 256x6 prop_1_0.03 stays open, its bound left 107, 75 and 45. The whole benchmark: 71
    # of 89 (64 with 0.1 s and half the time).
    refine_after: float = 5.0
    # ... and only on networks with at least this many ReLU layers (the first layer's bounds are exact:
    # with two layers only the second's can tighten). Set per caller: see QUERY_SETTINGS.
    refine_layers: int = 2
    # A side's search stops once it has bounded refine_subproblems / (layers below the neuron)
    # sub-problems: a budget of work, not of seconds, so that the refined bounds, and the search after
    # them, do not depend on the machine's load. With 0.2 s a side they varied, and so did the proof
    # after them: 256x4 prop_0_0.05 took 71-77 s alone, 203 s or a time-out after another instance in
    # the same process. 700 buys what 0.2 s did on a quiet machine (767, 511 and 255 sub-problems one,
    # two and three layers down on the 256x4 net). Counting batches instead does not: the first
    # batches of a search are tiny (1, 2, 4, ... boxes).
    refine_subproblems: int = 700
    refine_share: float = 0.7
    # processes for the refinement's searches (this one and refine_workers - 1 children, each taking
    # its turn of every layer's neurons, ordered by weight); the refined bounds are the same.
    refine_workers: int = 1
    # verify, with a second process (refine_workers > 1): beside a search restarted from refined
    # bounds, a child process runs one whole-box MILP per disjunct still open in the search, each
    # first for `milp_arm` seconds, then twice as long after the others' turns (0: no such arm).
    # Neither arm loses its work to the other. A fixed time slice on one process did (search alone
    # for a quarter of the time left, then the MILPs, then the search again): it proved 256x4
    # prop_7_0.05 (HiGHS proves each of its 9 disjuncts in 4.6-44 s, where the search's open bound
    # stays above 1 for 230 s) in 220 s, but lost 256x4 prop_4_0.05 in one run of two, and a longer
    # slice lost prop_7 again. With the arm, on 256x4 with 2 processes: prop_7_0.05 unsat in 158 s (a
    # timeout without it; 210 s and 244 s in two later runs), prop_4_0.05 106 s (131 s), prop_6_0.03
    # 81 s (98 s). The 20 s is not tuned (prop_7_0.05's disjunct MILPs take 8.6 s the median).
    milp_arm: float = 20.0


@dataclass(frozen=True)
class Objective:
    """Disjuncts over one box: ``margin_j(x) = min over rows r of disjunct j of form_r(sources at x)``.

    ``form`` has ``K`` rows over the network's sources; ``starts`` (J,) where each disjunct's rows
    begin (rows sorted by disjunct); ``strict`` (K,) rows that must be positive, not only
    non-negative; ``weights`` (L, K) convex combinations of each disjunct's rows, the first ones
    the single rows, and ``weight_starts`` (J,) where each disjunct's combinations begin.
    """

    box: Box
    form: Affine
    starts: np.ndarray
    strict: np.ndarray
    weights: np.ndarray
    weight_starts: np.ndarray

    @classmethod
    def of_rows(cls, box: Box, form: Affine, starts, strict=None) -> "Objective":
        """An objective whose combinations are :func:`simplex_grid` over each disjunct's rows."""
        starts = np.asarray(starts, dtype=int)
        sizes = np.diff(np.append(starts, form.out_dim))
        blocks = [simplex_grid(int(k)) for k in sizes]
        weights = np.zeros((sum(b.shape[0] for b in blocks), form.out_dim))
        weight_starts, at = [], 0
        for start, block in zip(starts, blocks):
            weight_starts.append(at)
            weights[at : at + block.shape[0], start : start + block.shape[1]] = block
            at += block.shape[0]
        strict = np.zeros(form.out_dim, dtype=bool) if strict is None else np.asarray(strict, dtype=bool)
        return cls(box, form, starts, strict, weights, np.array(weight_starts, dtype=int))

    @property
    def disjuncts(self) -> int:
        return int(self.starts.size)

    @property
    def owner(self) -> np.ndarray:
        """The disjunct of each row, (K,)."""
        return np.repeat(np.arange(self.disjuncts), np.diff(np.append(self.starts, self.form.out_dim)))

    @property
    def all_strict(self) -> np.ndarray:
        """Per disjunct: are all its rows strict? (A bound of exactly the threshold then closes it.)"""
        return np.logical_and.reduceat(self.strict, self.starts) if self.strict.size else np.zeros(self.disjuncts, dtype=bool)

    def row_values(self, values: list[np.ndarray]) -> np.ndarray:
        """Each row at the points whose sources are ``values`` (from a forward pass): (n, K)."""
        return self.form.apply(values)

    def per_disjunct(self, row_values: np.ndarray) -> np.ndarray:
        """Min over each disjunct's rows: (n, K) -> (n, J)."""
        return np.minimum.reduceat(row_values, self.starts, axis=1)

    def combined_upper(self, row_upper: np.ndarray, on_x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds of each disjunct's margin over each box (n, J), and the slope on x of the bound (n, J, d).

        ``row_upper`` (n, K) are widened upper bounds of the rows over the boxes, each the
        maximum of a linear function ``g_r(x) = b_r + a_r . x`` with ``a_r = on_x[:, r]``
        (n, K, d). Since ``min_r f_r <= sum_r w_r f_r <= sum_r w_r g_r`` for any convex weights
        ``w``, the maximum over the box of each combination bounds the margin too; it is
        below the smallest single row's when different rows are binding in different parts of
        the box. The best combination of a grid (single rows included) is taken.
        """
        if self.weights.shape[0] == self.disjuncts:  # one row per disjunct: nothing to combine
            return row_upper, on_x
        centre, radius = (lo + hi) * 0.5, (hi - lo) * 0.5
        reach = np.maximum(np.abs(lo), np.abs(hi))
        row_offset = row_upper - np.einsum("nkd,nd->nk", on_x, centre) - np.einsum("nkd,nd->nk", np.abs(on_x), radius)
        slope = np.einsum("lk,nkd->nld", self.weights, on_x)  # (n, L, d)
        offset = row_offset @ self.weights.T  # (n, L)
        value = offset + np.einsum("nld,nd->nl", slope, centre) + np.einsum("nld,nd->nl", np.abs(slope), radius)
        # every term summed into the combination (cancellations included), for the widening
        magnitude = (np.abs(row_upper) + np.abs(row_offset) + 2.0 * np.einsum("nkd,nd->nk", np.abs(on_x), reach)) @ self.weights.T
        value = value + BOUND_MARGIN * (1.0 + np.abs(value) + magnitude)
        best = np.minimum.reduceat(value, self.weight_starts, axis=1)  # (n, J)
        # the combination attaining each disjunct's bound, for the choice of the input to split
        owner = np.repeat(np.arange(self.disjuncts), np.diff(np.append(self.weight_starts, value.shape[1])))
        hit = np.where(value == best[:, owner], np.arange(value.shape[1])[None, :], value.shape[1])
        first = np.minimum.reduceat(hit, self.weight_starts, axis=1)  # (n, J)
        return best, np.take_along_axis(slope, first[:, :, None], axis=1)


def take_bounds(lowers: list, uppers: list, relaxations: list, index: np.ndarray) -> tuple[list, list, list]:
    """The neuron bounds and relaxations (as :meth:`BatchBounder.neuron_bounds` gives them) of the
    boxes ``index`` of a batch."""
    return ([a[index] for a in lowers], [a[index] for a in uppers],
            [(a[index], s[index], t[index], kept) for a, s, t, kept in relaxations])


def simplex_grid(k: int) -> np.ndarray:
    """Convex weights over ``k`` rows, (L, k): every single row first, then a grid of mixtures.

    Steps of 1/6 for up to 4 rows (84 weightings at most), pairs and the uniform mixture for up
    to 8, single rows and the uniform mixture beyond.
    """
    single = np.eye(k)
    if k == 1:
        return single
    if k <= 4:
        steps = 6
        grid = [c for c in itertools.product(range(steps + 1), repeat=k) if sum(c) == steps and max(c) < steps]
        return np.vstack([single, np.array(grid, dtype=np.float64) / steps])
    mixtures = [np.full(k, 1.0 / k)]
    if k <= 8:
        for a, b in itertools.combinations(range(k), 2):
            for w in (0.25, 0.5, 0.75):
                row = np.zeros(k)
                row[a], row[b] = w, 1.0 - w
                mixtures.append(row)
    return np.vstack([single, np.array(mixtures)])


@dataclass(frozen=True)
class Boxes:
    """A batch of ``n`` sub-boxes with what is known on each.

    ``lo``/``hi`` (n, d); ``open`` (n, J) the disjuncts not yet excluded there; ``lower``/
    ``upper`` (n, neurons) sound pre-activation bounds over the box (those of an enclosing
    box hold too); ``score`` (n,) the best open disjunct's upper bound; ``slope`` (n, d)
    the slope on x of that bound's linear function; ``neuron`` (n,) the unstable neuron
    (index over all ReLU layers) whose split promises most, -1 for none. A neuron split is
    kept in the bounds: ``lower == 0`` (phase active) or ``upper == 0`` (inactive).
    ``alpha``/``beta`` (n, K, neurons), float32: for each row of the objective, the lower ReLU
    slopes and split multipliers of the tuned bound of the box's parent (NaN slopes where
    none was tuned), from which the box's own tuning starts (warm start, as in beta-CROWN).
    Boxes waiting on a neuron-split stack are :meth:`shelved`: ``lo``/``hi``/``slope`` (n, 0).
    """

    lo: np.ndarray
    hi: np.ndarray
    open: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    slope: np.ndarray
    neuron: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray

    @property
    def count(self) -> int:
        return int(self.lo.shape[0])

    def take(self, index) -> "Boxes":
        return Boxes(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concatenate(parts: list["Boxes"]) -> "Boxes":
        return Boxes(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Boxes)))

    def halves(self, dim: np.ndarray) -> "Boxes":
        """Each box halved along ``dim[i]``: the n lower halves, then the n upper halves (bounds inherited)."""
        index = np.arange(self.count)
        middle = 0.5 * (self.lo[index, dim] + self.hi[index, dim])
        low_hi = self.hi.copy()
        low_hi[index, dim] = middle
        high_lo = self.lo.copy()
        high_lo[index, dim] = middle
        both = Boxes.concatenate([self, self])
        return Boxes(np.vstack([self.lo, high_lo]), np.vstack([low_hi, self.hi]), *(getattr(both, f.name) for f in fields(self)[2:]))

    def phases(self) -> "Boxes":
        """Each box split on its ``neuron``: the n children where it is active (``lower = 0``), then the n
        where it is inactive (``upper = 0``)."""
        index = np.arange(self.count)
        both = Boxes.concatenate([self, self])
        lower, upper = both.lower.copy(), both.upper.copy()
        lower[index, self.neuron] = np.maximum(lower[index, self.neuron], 0.0)
        upper[self.count + index, self.neuron] = np.minimum(upper[self.count + index, self.neuron], 0.0)
        return replace(both, lower=lower, upper=upper)

    def without(self, proved: np.ndarray) -> "Boxes":
        """The boxes with the disjuncts ``proved`` (J,) bool closed, those left with none open dropped.
        (``score`` stays the larger, former one: still an upper bound.)"""
        open_ = self.open & ~proved[None, :]
        keep = np.flatnonzero(open_.any(axis=1))
        return replace(self, open=open_).take(keep)

    def shelved(self) -> "Boxes":
        """The boxes without ``lo``, ``hi`` and ``slope`` (left with no columns), to wait on a stack
        when neurons are split: every sub-problem then spans the whole input box, and on a wide input
        (784 pixels, 200 neurons) those three rows would weigh six times what the neuron bounds do."""
        empty = np.empty((self.count, 0))
        return replace(self, lo=empty, hi=empty, slope=empty)

    def unshelved(self, box: Box) -> "Boxes":
        """Shelved boxes back over ``box`` (read-only views), with zero slopes (the next bound sets them)."""
        if self.lo.shape[1] == box.dim:
            return self
        shape = (self.count, box.dim)
        return replace(self, lo=np.broadcast_to(box.lower, shape), hi=np.broadcast_to(box.upper, shape),
                       slope=np.broadcast_to(0.0, shape))

    @staticmethod
    def pop_best(stack: list, count: int) -> "Boxes":
        """Take up to ``count`` boxes with the highest scores from the chunk of a stack that holds the
        highest score of all (the others keep their places)."""
        at = max(range(len(stack)), key=lambda i: float(stack[i].score.max()) if stack[i].count else -np.inf)
        chunk = stack[at]
        if chunk.count <= count:
            return stack.pop(at)
        order = np.argsort(-chunk.score, kind="stable")
        stack[at] = chunk.take(np.sort(order[count:]))
        return chunk.take(order[:count])

    @staticmethod
    def pop(stack: list, count: int) -> "Boxes":
        """Take up to ``count`` boxes from the top of a stack of chunks."""
        parts, taken = [], 0
        while stack and taken < count:
            chunk = stack.pop()
            need = count - taken
            if chunk.count > need:
                stack.append(chunk.take(slice(0, chunk.count - need)))
                chunk = chunk.take(slice(chunk.count - need, chunk.count))
            parts.append(chunk)
            taken += chunk.count
        return parts[0] if len(parts) == 1 else Boxes.concatenate(parts)


@dataclass
class Counters:
    """Sub-boxes bounded, leaves handed to the caller (MILPs), boxes closed by bounds, the stack's peak."""

    subproblems: int = 0
    milp_calls: int = 0
    closed: int = 0
    waiting: int = 0  # the most sub-boxes waiting on the stack at once


# accept(engine, x (d,), margin) -> None: re-check a candidate; raise Found to end the search,
# or raise engine.threshold (maximisation). leaf(engine, box, lower, upper, open (J,)) -> "closed"
# | "split" (not decided: split the box instead) | "stuck" (not decided and cannot be split).
Accept = Callable[["BranchAndBound", np.ndarray, float], None]
Leaf = Callable[["BranchAndBound", Box, np.ndarray, np.ndarray, np.ndarray], str]


def splits_neurons(box: Box, settings: Settings) -> bool:
    """Does a search over ``box`` split neurons (else inputs)? See :attr:`Settings.branching`."""
    free = int(np.count_nonzero(box.widths > 0))
    return settings.branching == "neuron" or (settings.branching == "auto" and free > settings.narrow)


def refines(network: Network, box: Box, settings: Settings) -> bool:
    """Does a search over ``box`` stop after :attr:`Settings.refine_after` seconds to tighten the
    intermediate bounds (:mod:`milp.search.refine`)? Only when it splits neurons, and the network has
    :attr:`Settings.refine_layers` ReLU layers or more, and at least one above the first (whose
    bounds are exact already)."""
    return (splits_neurons(box, settings) and bool(np.isfinite(settings.refine_after))
            and len(network.widths) >= max(2, settings.refine_layers))


def open_at_root(engine: "BranchAndBound", known: tuple[np.ndarray, np.ndarray], deadline: Deadline) -> np.ndarray:
    """The disjuncts (J,) bool that a search like ``engine``'s (same objective, threshold and
    settings) started from the intermediate bounds ``known`` (lower, upper) (neurons,) would leave
    open at its root, before any split: all of them when ``deadline`` passes first.

    ``known`` should be tuned already (alpha-CROWN), as the refinement's are: the probe does not tune
    them again, only back-substitutes them once (on mnist_fc's 256x6 net, prop_10_0.05: 0.07 s against
    0.68 s, for a root bound of 955.2839 against 955.2815)."""
    probe = BranchAndBound(engine.network, engine.objective, engine.accept, engine.leaf, deadline, replace(engine.settings, root_steps=0),
                           threshold=engine.threshold, moving=engine.moving, known=known, race=engine.race)
    try:
        root = probe.bounded_root()
    except OutOfTime:
        return np.ones(engine.objective.disjuncts, dtype=bool)
    return root.open.any(axis=0) if root.count else np.zeros(engine.objective.disjuncts, dtype=bool)


def root_closes(engine: "BranchAndBound", known: tuple[np.ndarray, np.ndarray], deadline: Deadline) -> bool:
    """Would a search like ``engine``'s started from ``known`` close at its root (see
    :func:`open_at_root`)? False when ``deadline`` passes first. Once it would, tightening the bounds
    further cannot change its answer (see ``settled`` in :func:`milp.search.refine.refined_bounds`)."""
    return not open_at_root(engine, known, deadline).any()


class BranchAndBound:
    """One search over ``objective.box`` (see the module docstring)."""

    def __init__(self, network: Network, objective: Objective, accept: Accept, leaf: Leaf, deadline: Deadline,
                 settings: Settings = Settings(), rng: np.random.Generator | None = None, threshold: float = 0.0,
                 moving: bool = False, known: tuple[np.ndarray, np.ndarray] | None = None,
                 race: Callable[[], bool] | None = None, elsewhere: Callable[["BranchAndBound", np.ndarray], np.ndarray] | None = None):
        self.network, self.objective, self.accept, self.leaf = network, objective, accept, leaf
        self.deadline, self.settings = deadline, settings
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.threshold = float(threshold)  # a disjunct holds when its margin reaches this
        self.moving = moving  # the threshold is a best value so far (maximisation): close within `optimality`
        self.known = known  # (lower, upper) (neurons,) bounds known over the whole box
        self.race = race  # true when another arm of a portfolio has finished: stop as at the deadline
        # elsewhere(search, open (J,) bool, the disjuncts still open on the stack): those (J,) bool another
        # arm has proved unsat over the whole box so far; the search closes them on every waiting box
        self.elsewhere = elsewhere
        # neurons not split for a row, (K, neurons) (Settings.unsplit_free): their split cannot tighten
        # that row's bound, and the leaves' models need no binary for them (milp.encode.bigm.binary_free).
        # A box whose chosen row leaves none to split splits one that some row needs; those no row
        # needs do not count towards a leaf's unstable neurons.
        if settings.unsplit_free:
            self.unsplit_rows = binary_free(network, objective.form, per_row=True)
        else:
            self.unsplit_rows = np.zeros((objective.form.out_dim, network.neuron_count), dtype=bool)
        self.unsplit = np.all(self.unsplit_rows, axis=0)
        self.counters = Counters()
        self.closed_upper = -np.inf  # the largest bound of a box closed within the optimality tolerance
        self.open_upper = np.inf  # after a stop: the largest bound of a box left open (none bounded yet: inf)
        self.bounder = BatchBounder(network, self.check_time)
        if settings.branching not in ("auto", "input", "neuron"):
            raise ValueError(f"branching must be 'auto', 'input' or 'neuron', got {settings.branching!r}")
        self.neuron_branching = splits_neurons(objective.box, settings)
        # sub-problems keep the root's optimised intermediate bounds instead of recomputing CROWN's
        self.keeps_bounds = self.neuron_branching and settings.root_steps > 0 and network.neuron_count > 0

    # -------------------------------------------------- clock and levels
    def check_time(self) -> None:
        if self.deadline.expired() or (self.race is not None and self.race()):
            raise OutOfTime()

    def level(self) -> float:
        """A disjunct is closed on a box when its upper bound is below this."""
        if self.moving and np.isfinite(self.threshold):
            return self.threshold + self.settings.optimality * (1.0 + abs(self.threshold))
        return self.threshold

    def closes(self, per: np.ndarray) -> np.ndarray:
        """Which bounds (n, J) close their disjunct: below the level, or at it when all its rows are strict."""
        level = self.level()
        if self.moving:
            return per <= level
        return (per < level) | ((per <= level) & self.objective.all_strict[None, :])

    # -------------------------------------------------- candidates
    def try_points(self, x: np.ndarray, margins: np.ndarray | None = None) -> np.ndarray:
        """Hand the points whose margin reaches the threshold to ``accept`` (best first); returns each point's best margin (n,)."""
        if margins is None:
            margins = self.margins(self.network.forward(x)).max(axis=1)
        hits = np.flatnonzero(margins >= self.threshold)
        for index in hits[np.argsort(-margins[hits])][:8]:
            if margins[index] >= self.threshold:
                self.accept(self, x[index], float(margins[index]))
        return margins

    def margins(self, trace) -> np.ndarray:
        """Each disjunct's margin at the points of a forward ``trace``: (n, J)."""
        return self.objective.per_disjunct(self.objective.row_values([trace.inputs, *trace.activations]))

    def attack(self, starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, steps: int, until: float = np.inf) -> np.ndarray:
        """Projected gradient ascent on the best disjunct's margin, each start in its own box (lo, hi (n, d)).

        Sign steps scaled by the box widths, shrinking geometrically (and no step after the
        ``time.perf_counter()`` value ``until``); returns the best point of each start.
        """
        objective = self.objective
        x = np.clip(starts, lo, hi)
        width = hi - lo
        best_x, best = x.copy(), np.full(x.shape[0], -np.inf)
        owner = objective.owner
        for step in range(steps):
            self.check_time()
            if time.perf_counter() > until:
                break
            trace = self.network.forward(x)
            row_values = objective.row_values([trace.inputs, *trace.activations])  # (n, K)
            per = objective.per_disjunct(row_values)
            margin = per.max(axis=1)
            better = margin > best
            best_x[better], best[better] = x[better], margin[better]
            self.try_points(x, margin)
            if step == steps - 1:
                break
            # the binding row: the smallest row of the best disjunct
            chosen = np.argmax(per, axis=1)
            masked = np.where(owner[None, :] == chosen[:, None], row_values, np.inf)
            weights = np.zeros_like(row_values)
            weights[np.arange(x.shape[0]), np.argmin(masked, axis=1)] = 1.0
            gradient = input_gradients(self.network, objective.form, trace.masks(), weights)
            size = 0.25 * (0.02 ** (step / max(1, steps - 1)))
            x = np.clip(x + size * width * np.sign(gradient), lo, hi)
        return best_x

    def falsify(self, samples: int | None = None, starts: int | None = None, steps: int | None = None,
                open_boxes: Boxes | None = None, seconds: float = np.inf) -> None:
        """Samples, then gradient ascent from the best samples and fresh random points.

        The counts default to the settings' first, cheap round; later rounds pass larger ones,
        and the sub-boxes still open: half the samples are then drawn in those with the highest
        upper bounds, where a point is likeliest. The round ends after ``seconds`` (a large net's
        round would otherwise eat the time its bounds need).
        """
        until = time.perf_counter() + seconds
        box = self.objective.box
        s = self.settings
        samples = s.samples if samples is None else samples
        starts = s.attack_starts if starts is None else starts
        steps = s.attack_steps if steps is None else steps
        top = None
        if open_boxes is not None and open_boxes.count:
            top = np.argsort(-open_boxes.score)[: max(1, samples // 20)]
        half = starts // 2
        # the best `half` points so far start the attack; the corners are tried first
        best = np.vstack([box.center, box.lower, box.upper])
        best_margins = self.try_points(best)
        # drawn and tried 2,000 at a time: the deadline and the round's time are checked between chunks
        # (50,000 points of 784 inputs take seconds to draw and evaluate)
        for first in range(0, samples, 2000):
            if time.perf_counter() > until:
                break
            self.check_time()
            size = min(2000, samples - first)
            if top is None:
                chunk = box.sample(size, self.rng)
            else:  # half of them in the open sub-boxes with the highest bounds
                pick = self.rng.choice(top, size=size // 2)
                inside = open_boxes.lo[pick] + self.rng.random((pick.size, box.dim)) * (open_boxes.hi[pick] - open_boxes.lo[pick])
                chunk = np.vstack([box.sample(size - pick.size, self.rng), inside])
            margins = np.concatenate([best_margins, self.try_points(chunk)])
            keep = np.argsort(-margins)[:half]
            best, best_margins = np.vstack([best, chunk])[keep], margins[keep]
        self.check_time()
        if starts <= 0 or steps <= 0 or time.perf_counter() > until:
            return
        begin = np.vstack([best[:half], box.sample(starts - min(half, best.shape[0]), self.rng)])
        n = begin.shape[0]
        self.attack(begin, np.broadcast_to(box.lower, (n, box.dim)), np.broadcast_to(box.upper, (n, box.dim)), steps, until)

    # -------------------------------------------------- bounds
    def margin_upper(self, lo, hi, lowers, uppers, relaxations, open_: np.ndarray | None = None,
                     warm: tuple | None = None) -> tuple[np.ndarray, np.ndarray, tuple | None, tuple | None]:
        """Upper bounds of each disjunct's margin over each box (n, J), the slopes on x of the bounds (n, J, d),
        when neurons are split the rows' bounds (n, K) with each layer's neuron weights in them
        (:meth:`~milp.bounds.propagate.BatchBounder.optimised_upper`), for :meth:`branching_neurons`,
        and the tuned slopes and multipliers (``warm`` (:attr:`Boxes.alpha`, :attr:`Boxes.beta`), where
        the tuning started, with the rows tuned here replaced by their best iterate).

        The rows are back-substituted twice: with CROWN's adaptive lower ReLU slopes, and with
        lower slope 0 for every unstable neuron (any slope in [0, 1] is sound). Neither is better
        everywhere — near the optimum of the margin the second is often much tighter — so each
        box keeps the smaller bound. A third bound tunes the slopes and the splits' multipliers to
        each row of the disjuncts ``open_`` (n, J) that the first two leave open
        (:meth:`tuned_upper`; :attr:`Settings.optimise_steps` steps when neurons are split,
        :attr:`Settings.input_steps` when inputs are).
        """
        best, slopes = None, None
        for lower_slope in (None, 0.0):
            chosen = relaxations if lower_slope is None else with_lower_slope(relaxations, lowers, uppers, lower_slope)
            row_upper, on_x = self.bounder.form_upper(self.objective.form, lo, hi, chosen)
            per, slope = self.objective.combined_upper(row_upper, on_x, lo, hi)
            if best is None:
                best, slopes = per, slope
            else:
                # the split follows the adaptive bound's slope: that of lower slope 0 is a worse guide
                best = np.minimum(per, best)
        steps = self.settings.optimise_steps if self.neuron_branching else self.settings.input_steps
        if steps <= 0 and not self.neuron_branching:  # neuron branching reads the weights even untuned
            return best, slopes, None, warm
        best, weights, warm = self.tuned_upper(lo, hi, lowers, uppers, relaxations, best, row_upper, on_x, open_, steps, warm)
        return best, slopes, weights, warm

    def tuned_upper(self, lo, hi, lowers, uppers, relaxations, best, row_upper, on_x, open_, steps: int,
                    warm: tuple | None = None) -> tuple[np.ndarray, tuple | None, tuple | None]:
        """``best`` (n, J), the margins' bounds, tightened by tuning the relaxation of each row of the
        disjuncts they leave open (``open_`` (n, J) or all) for ``steps`` steps; ``row_upper`` (n, K)
        and ``on_x`` (n, K, d) are the rows' untuned bounds and linear functions. Only the rows of open
        disjuncts are tuned, each (box, row) pair on its own.

        ``warm`` (slopes, multipliers) (n, K, neurons), when given, is where each row's tuning starts.

        Returns the new ``best``; when neurons are split (for :meth:`branching_neurons`), the
        rows' bounds (n, K) with each layer's neuron weights in them (n, K, kept), zero where nothing
        was tuned (None when inputs are split: nothing reads them); and ``warm`` with the tuned rows'
        best slopes and multipliers in place.
        """
        owner, n = self.objective.owner, lo.shape[0]
        live = ((np.ones_like(best, dtype=bool) if open_ is None else open_) & ~self.closes(best))[:, owner]
        layers = [np.zeros((n, row_upper.shape[1], kept.size)) for *_, kept in relaxations] if self.neuron_branching else None
        # each (box, row) pair is tuned as a sub-problem of its own: no padding to the batch's most open
        # rows, and each pair stops on its own (a disjunct closes on its own too)
        box_of, row_of = np.nonzero(live)
        if not box_of.size:
            return best, None if layers is None else (row_upper, layers), warm
        start = None  # (zero-width slopes: warm starts are off)
        if warm is not None and warm[0].shape[2]:
            start = tuple(a[box_of, row_of][:, None, :] for a in warm)
        # a row that closes (with a margin for the float32 iterations) is tuned no further
        level = self.level()
        enough = np.full((box_of.size, 1), level - 1e-3 * (1.0 + abs(level)))
        tuned, tuned_x, tuned_layers, tuned_start = self.bounder.optimised_upper(
            self.objective.form, lo[box_of], hi[box_of], *take_bounds(lowers, uppers, relaxations, box_of), steps,
            rows=row_of[:, None], warm=start, enough=enough)
        if start is not None:
            warm = tuple(a.copy() for a in warm)
            for full, part in zip(warm, tuned_start):
                full[box_of, row_of] = part[:, 0]
        # a row's bound and its linear function travel together (the combinations need both)
        better = tuned[:, 0] < row_upper[box_of, row_of]
        row_upper, on_x = np.array(row_upper), np.array(on_x)
        row_upper[box_of[better], row_of[better]] = tuned[better, 0]
        on_x[box_of[better], row_of[better]] = tuned_x[better, 0]
        some = np.unique(box_of)
        best = best.copy()
        best[some] = np.minimum(best[some], self.objective.combined_upper(row_upper[some], on_x[some], lo[some], hi[some])[0])
        if layers is None:
            return best, None, warm
        for full, c in zip(layers, tuned_layers):
            full[box_of, row_of] = c[:, 0]
        return best, (row_upper, layers), warm

    def branching_neurons(self, per: np.ndarray, weights: tuple, lowers: list, uppers: list, relaxations: list) -> np.ndarray:
        """The neuron to split in each box (n,), -1 where none is unstable: the largest estimated gain
        (BaBSR's idea), the relaxation's slack times the neuron's weight in the bound of the best open
        disjunct's tightest row.

        A neuron with a positive weight uses the upper relaxation, whose slack is its offset
        ``-u l / (u - l)``; with a negative weight, the lower one, whose slack reaches ``min(u, -l)``
        (half of it is counted: it is reached only at one end). ``weights`` are :meth:`margin_upper`'s.
        """
        row_upper, weights = weights
        n = per.shape[0]
        if not self.network.neuron_count:  # an affine network (a first layer's neuron): nothing to split
            return np.full(n, -1)
        owner = self.objective.owner
        best_disjunct = np.argmax(per, axis=1)
        masked = np.where(owner[None, :] == best_disjunct[:, None], row_upper, np.inf)
        row = np.argmin(masked, axis=1)
        index = np.arange(n)
        score = np.full((n, self.network.neuron_count), -np.inf)
        offsets = self.bounder.offsets
        for layer, ((_, _, upper_offset, kept), lower, upper, weight) in enumerate(zip(relaxations, lowers, uppers, weights)):
            c = weight[index, row]  # (n, kept)
            lk, uk = lower[:, kept], upper[:, kept]
            unstable = (lk < 0) & (uk > 0)
            gain = np.maximum(c, 0.0) * upper_offset - 0.5 * np.minimum(c, 0.0) * np.minimum(uk, -lk)
            score[:, offsets[layer] + kept] = np.where(unstable, gain + 1e-12 * (uk - lk), -np.inf)
        # the chosen row's unsplit neurons after the others, and those of every row last: a leaf that
        # could not decide a box (a point the checks refused) still has them to split
        chosen = np.full(n, -1)
        for excluded in (self.unsplit_rows[row], self.unsplit[None, :], None):
            tier = score if excluded is None else np.where(excluded, -np.inf, score)
            left = np.flatnonzero(chosen < 0)
            best = np.argmax(tier[left], axis=1)
            found = np.isfinite(tier[left, best])
            chosen[left[found]] = best[found]
        return chosen

    def bound(self, boxes: Boxes, computed: tuple | None = None) -> Boxes:
        """Bound each box; returns the boxes where some disjunct stays open, with their bounds.

        ``computed``: the boxes' ``(lowers, uppers, relaxations)`` and :meth:`margin_upper`'s
        outcome, when they are already known (a trial split has bounded the halves it keeps)."""
        self.counters.subproblems += boxes.count
        if computed is None:
            lowers, uppers, relaxations = self.bounder.neuron_bounds(boxes.lo, boxes.hi, boxes.lower, boxes.upper, not self.keeps_bounds)
            per, slopes, weights, (alpha, beta) = self.margin_upper(boxes.lo, boxes.hi, lowers, uppers, relaxations, boxes.open,
                                                                    (boxes.alpha, boxes.beta))
        else:
            (lowers, uppers, relaxations), (per, slopes, weights, (alpha, beta)) = computed
        # a split whose side the bounds exclude (lower > upper somewhere): no point of the box is on it
        empty = np.zeros(boxes.count, dtype=bool)
        for lower, upper in zip(lowers, uppers):
            empty |= np.any(lower > upper, axis=1)
        per = np.where(boxes.open & ~empty[:, None], per, -np.inf)
        closing = self.closes(per)
        open_ = boxes.open & ~closing
        shut = boxes.open & closing & np.isfinite(per)
        if shut.any():
            self.closed_upper = max(self.closed_upper, float(per[shut].max()))
        alive = np.flatnonzero(open_.any(axis=1))
        self.counters.closed += boxes.count - alive.size
        chosen = np.argmax(per[alive], axis=1)  # the slope of the bound of each box's best disjunct
        lower = np.concatenate(lowers, axis=1) if lowers else np.zeros((boxes.count, 0))
        upper = np.concatenate(uppers, axis=1) if uppers else np.zeros((boxes.count, 0))
        if self.neuron_branching:
            neuron = self.branching_neurons(per, weights, lowers, uppers, relaxations)[alive]
        else:
            neuron = np.full(alive.size, -1)
        return Boxes(
            boxes.lo[alive], boxes.hi[alive], open_[alive], lower[alive], upper[alive],
            per[alive].max(axis=1), slopes[alive, chosen], neuron, alpha[alive], beta[alive],
        )

    def refilter(self, boxes: Boxes) -> Boxes:
        """Close the boxes a raised threshold has overtaken since they were bounded."""
        if not self.moving:
            return boxes
        shut = self.closes(boxes.score[:, None])[:, 0]
        if shut.any():
            self.closed_upper = max(self.closed_upper, float(boxes.score[shut].max()))
            self.counters.closed += int(shut.sum())
        return boxes.take(np.flatnonzero(~shut))

    # -------------------------------------------------- the search
    def bounded_root(self) -> Boxes:
        """The whole box bounded, as the search starts (with the root's optimised intermediate bounds
        when sub-problems keep them): one box, or none when the bounds close every disjunct."""
        s = self.settings
        box = self.objective.box
        neurons = self.network.neuron_count
        known_lower = np.full((1, neurons), -np.inf) if self.known is None else self.known[0][None, :].astype(float)
        known_upper = np.full((1, neurons), np.inf) if self.known is None else self.known[1][None, :].astype(float)
        # no warm start (or no tuning): zero-width slopes and multipliers, which every child inherits
        rows = self.objective.form.out_dim
        width = neurons if s.warm_start and not self.neuron_branching and s.input_steps > 0 else 0
        root = Boxes(
            box.lower[None, :].copy(), box.upper[None, :].copy(), np.ones((1, self.objective.disjuncts), dtype=bool),
            known_lower, known_upper, np.zeros(1), np.zeros((1, box.dim)), np.full(1, -1),
            np.full((1, rows, width), np.nan, dtype=np.float32), np.zeros((1, rows, width), dtype=np.float32),
        )
        if self.keeps_bounds:
            lowers, uppers, _ = self.bounder.optimised_neuron_bounds(root.lo, root.hi, known_lower, known_upper, s.root_steps)
            root = replace(root, lower=np.concatenate(lowers, axis=1), upper=np.concatenate(uppers, axis=1))
        return self.bound(root)

    def run(self) -> str:
        """Close every sub-box: "closed", or "stuck" when some box could neither be closed nor split.

        Raises :class:`Found` (from ``accept``) or :class:`OutOfTime` (then :attr:`open_upper` holds
        the largest bound still open: of the boxes on the stack, of those being split, and of the
        leaves that could neither be closed nor split). Open sub-boxes wait on a stack of
        :class:`Boxes` chunks, already bounded; taking the newest first keeps the stack short, and
        every :attr:`Settings.best_every` batches the highest bounds are taken instead, so that the
        largest open bound falls as the search goes on, while the stack takes less than
        :attr:`Settings.stack_memory` bytes. Before each batch, the disjuncts that ``elsewhere``
        reports proved are closed on every waiting box.
        """
        s = self.settings
        box = self.objective.box
        root_width = np.where(box.widths > 0, box.widths, 1.0)
        free = box.widths > 0
        stack: list[Boxes] = []
        shelve = Boxes.shelved if self.neuron_branching else (lambda boxes: boxes)
        self.open_upper = -np.inf
        flight = None  # the boxes taken off the stack and not yet closed or pushed back as children
        try:
            stack.append(shelve(self.bounded_root()))
            box_bytes = sum(getattr(stack[0], f.name)[:1].nbytes for f in fields(Boxes))  # one waiting sub-box
            stuck = 0
            started = time.perf_counter()
            rounds = list(s.rounds_after)
            batches = done_rounds = 0
            closed_elsewhere = np.zeros(self.objective.disjuncts, dtype=bool)
            while stack:
                flight = None
                batches += 1
                self.check_time()
                if s.max_subproblems and self.counters.subproblems >= s.max_subproblems:
                    raise OutOfTime()
                if self.elsewhere is not None:
                    proved = self.elsewhere(self, np.any([chunk.open.any(axis=0) for chunk in stack], axis=0))
                    fresh = proved & ~closed_elsewhere  # each proof rewrites the stack once, not every batch
                    if fresh.any():
                        closed_elsewhere |= fresh
                        stack[:] = [kept for kept in (chunk.without(fresh) for chunk in stack) if kept.count]
                        if not stack:
                            break
                if rounds and time.perf_counter() - started >= rounds[0]:
                    # undecided for a while: a larger falsification round; after the listed
                    # times, one every `round_every` seconds
                    elapsed = time.perf_counter() - started
                    rounds = rounds[1:] or [elapsed + s.round_every]
                    self.falsify(s.round_samples, s.round_starts, s.round_steps, Boxes.concatenate(stack).unshelved(box) if stack else None,
                                 s.round_share * s.round_decay**done_rounds * elapsed)
                    done_rounds += 1
                waiting = sum(chunk.count for chunk in stack)
                self.counters.waiting = max(self.counters.waiting, waiting)
                best_turn = s.best_every and batches % s.best_every == 0 and waiting * box_bytes <= s.stack_memory
                take = Boxes.pop_best if best_turn else Boxes.pop
                boxes = flight = self.refilter(take(stack, s.neuron_batch if self.neuron_branching else s.batch)).unshelved(box)
                if boxes.count == 0:
                    continue
                # leaves: too small to split, or few unstable neurons -> the caller's exact leaf
                unstable = ((boxes.lower < 0) & (boxes.upper > 0) & ~self.unsplit).sum(axis=1)
                if self.neuron_branching:
                    tiny = boxes.neuron < 0  # no unstable neuron left to split
                else:
                    widths = (boxes.hi - boxes.lo) / root_width
                    tiny = ~np.any((widths > 1e-9) & free, axis=1)
                leaf = tiny | (unstable <= s.leaf_unstable)
                for index in np.flatnonzero(leaf):
                    self.counters.milp_calls += 1
                    outcome = self.leaf(self, Box(boxes.lo[index], boxes.hi[index]), boxes.lower[index], boxes.upper[index], boxes.open[index])
                    if outcome == "closed":
                        continue
                    if tiny[index] or outcome == "stuck":
                        stuck += 1  # cannot split further: the sub-box stays undecided
                        self.open_upper = max(self.open_upper, float(boxes.score[index]))
                    else:
                        leaf[index] = False  # split it instead
                boxes = boxes.take(np.flatnonzero(~leaf))
                if boxes.count == 0:
                    continue
                children = self.bound(boxes.phases()) if self.neuron_branching else self.halve(boxes, free, root_width)
                if children.count:
                    self.try_boxes(children)
                    stack.append(shelve(self.refilter(children)))
        except OutOfTime:
            if not stack and flight is None:
                self.open_upper = np.inf  # stopped before the first bound
            # the open boxes: those on the stack, and those being split when the clock stopped
            left = [chunk for chunk in [*stack, flight] if chunk is not None and chunk.count]
            self.open_upper = max([self.open_upper, *(float(chunk.score.max()) for chunk in left)])
            raise
        return "stuck" if stuck else "closed"

    def halve(self, boxes: Boxes, free: np.ndarray, root_width: np.ndarray) -> Boxes:
        """Each box halved along one input (:attr:`Settings.split`), the halves bounded."""
        s = self.settings
        # an input may be split when it is not much narrower (relative to the root box) than the widest
        relative = np.where(free, (boxes.hi - boxes.lo) / root_width, 0.0)
        eligible = relative >= relative.max(axis=1, keepdims=True) * 0.5**s.spread
        split = s.split if s.split != "auto" else ("trial" if self.objective.disjuncts == 1 else "slope")
        if split == "widest":
            return self.bound(boxes.halves(np.argmax(np.where(eligible, relative, -1.0), axis=1)))
        # how much each eligible input moves the bound's linear function: |slope| x width (ties: the wider)
        estimate = np.where(eligible, np.abs(boxes.slope) * (boxes.hi - boxes.lo) + 1e-12 * relative, -1.0)
        if split == "trial":
            return self.split_by_trial(boxes, eligible, estimate)
        return self.bound(boxes.halves(np.argmax(estimate, axis=1)))

    def split_by_trial(self, boxes: Boxes, eligible: np.ndarray, estimate: np.ndarray) -> Boxes:
        """Halve each box along the eligible input (n, d) whose halves have the lowest larger upper bound,
        among the :attr:`Settings.trial_dims` candidates of largest ``estimate`` (n, d)."""
        n = boxes.count
        # each box's candidate inputs (n, m): all eligible ones, or the `trial_dims` of largest estimate
        m = int(eligible.sum(axis=1).max())
        m = min(m, self.settings.trial_dims) if self.settings.trial_dims else m
        dims = np.argsort(-estimate, axis=1, kind="stable")[:, :m]
        valid = np.take_along_axis(eligible, dims, 1)
        trials = Boxes.concatenate([boxes.halves(dims[:, r]) for r in range(m)])  # per rank: n lower, n upper halves
        lowers, uppers, relaxations = self.bounder.neuron_bounds(trials.lo, trials.hi, trials.lower, trials.upper)
        bounds = self.margin_upper(trials.lo, trials.hi, lowers, uppers, relaxations, trials.open, (trials.alpha, trials.beta))
        per = np.where(trials.open, bounds[0], -np.inf).max(axis=1).reshape(m, 2, n)
        score = np.where(valid.T, per.max(axis=1) + 1e-3 * per.min(axis=1), np.inf)  # (m, n)
        # No fallback to the widest input when no split gains much: near an optimum every gain is
        # small beside the bound, and that fallback took the range of ACAS Xu 1_1's output 3 over
        # property 1's box from 1,035 sub-boxes to 34,499; on the ACAS Xu verification run it never acted.
        best = np.argmin(score, axis=0)
        picked = np.concatenate([best * 2 * n + np.arange(n), best * 2 * n + n + np.arange(n)])
        # the kept halves are bounded already: their bounds are handed on, not computed again
        kept = take_bounds(lowers, uppers, relaxations, picked)
        warm = tuple(a[picked] for a in bounds[3])
        return self.bound(trials.take(picked), (kept, (bounds[0][picked], bounds[1][picked], None, warm)))  # no neuron weights when inputs split

    def try_boxes(self, boxes: Boxes) -> None:
        """Try each box's centre and the corner maximising its linear bound; a few gradient steps from the best corners."""
        corner = np.where(boxes.slope > 0, boxes.hi, boxes.lo)
        self.try_points(np.vstack([(boxes.lo + boxes.hi) * 0.5, corner]))
        if self.settings.local_attack:
            top = np.argsort(-boxes.score)[: self.settings.local_attack]
            self.attack(corner[top], boxes.lo[top], boxes.hi[top], self.settings.local_steps)
