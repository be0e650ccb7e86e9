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
   enabled, with few unstable neurons) is decided by an exact MILP (:mod:`milp.search.queries`);
   the others are halved along the input that the linear bound depends on most (slope
   times width).

The time budget is shared by all disjuncts and sub-boxes. Every bound is widened outward
by a margin far above float64 rounding (as in :mod:`milp.bounds.propagate`), so ``unsat`` is proved
for the float64 network; a counterexample is confirmed on the reference model.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np

from milp.core.errors import InputError
from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.deadline import Deadline
from milp.core.conditions import Condition
from milp.core.options import SolverOptions
from milp.core.network import Affine, Network
from milp.core.tolerances import REFERENCE_TOLERANCE
from milp.io.vnnlib import VnnlibProperty, check_counterexample, write_counterexample

__all__ = ["Verdict", "VerifyError", "verify", "RESULTS"]

Reference = Callable[[np.ndarray], np.ndarray]

RESULTS = ("sat", "unsat", "timeout", "unknown", "error")

# Relative outward margin on every bound (see milp.bounds.propagate._MARGIN): rounding of these
# float64 sums is below 1e-13 of the magnitudes involved.
_MARGIN = 1e-9
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


@dataclass(frozen=True)
class _Settings:
    """Search constants (fixed; a value, not a global, so experiments can pass others)."""

    samples: int = 2000  # uniform samples per box
    attack_starts: int = 256  # gradient-ascent starts per box
    attack_steps: int = 60
    batch: int = 1024  # sub-boxes split per numpy call (their 2048 halves are bounded at once)
    leaf_unstable: int = 0  # a sub-box with at most this many unstable neurons goes to the MILP (0: none)
    # "trial" (bound both halves along every input, keep the best), "slope" (|linear bound
    # slope| x width), "widest", or "auto": trial for a single disjunct, slope for several
    # (measured on ACAS Xu: trial is many times faster on one disjunct, much slower on several)
    split: str = "auto"
    stall: float = 0.02  # trial: a best split gaining less than this fraction of the bound falls back to the widest input
    spread: int = 60  # only inputs at least 2**-spread as wide (relative) as the widest are split
    local_attack: int = 32  # sub-boxes per batch whose best corner gets a few gradient steps
    local_steps: int = 8
    # While the branch and bound runs undecided, larger falsification rounds with fresh random
    # points start after these many seconds of it (then every last gap again): a counterexample
    # in a small basin of the margin is found long before the bounds would reach it.
    rounds_after: tuple = (1.5, 5.0, 15.0, 30.0)
    round_samples: int = 50000
    round_starts: int = 5000
    round_steps: int = 200
    round_every: float = 20.0


class _Found(Exception):
    """A confirmed counterexample: ends the search."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        super().__init__("counterexample")
        self.x, self.y = x, y


class _OutOfTime(Exception):
    pass


# ------------------------------------------------------------------ the margin of a group of disjuncts
@dataclass(frozen=True)
class _Group:
    """Disjuncts sharing one box: ``margin_j(x) = min over rows r of disjunct j of (rhs_r - rows_r . y)``.

    ``rows`` (K, outputs), ``rhs`` (K,), ``owner`` (K,) the disjunct of each row (rows are
    sorted by disjunct, ``starts`` (J,) where each disjunct's rows begin). A disjunct without
    rows (the whole box is unsafe) gets the row ``0 . y <= 0``.
    """

    box: Box
    rows: np.ndarray
    rhs: np.ndarray
    owner: np.ndarray
    starts: np.ndarray
    weights: np.ndarray = field(default=None)  # (L, K) convex combinations of each disjunct's rows
    weight_starts: np.ndarray = field(default=None)  # (J,) where each disjunct's combinations begin

    @property
    def disjuncts(self) -> int:
        return int(self.starts.size)

    def combined_upper(self, row_upper: np.ndarray, on_x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds of each disjunct's margin over each box (n, J), and the slope on x of the bound (n, J, d).

        ``row_upper`` (n, K) are widened upper bounds of the rows over the boxes, each the
        maximum of a linear function ``g_r(x) = b_r + a_r . x`` with ``a_r = on_x[:, r]``
        (n, K, d). Since ``min_r f_r <= sum_r w_r f_r <= sum_r w_r g_r`` for any convex weights
        ``w``, the maximum over the box of each combination bounds the margin too; it is
        below the smallest single row's when different rows are binding in different parts of
        the box. The best combination of a grid (single rows included) is taken.
        """
        centre, radius = (lo + hi) * 0.5, (hi - lo) * 0.5
        reach = np.maximum(np.abs(lo), np.abs(hi))
        row_offset = row_upper - np.einsum("nkd,nd->nk", on_x, centre) - np.einsum("nkd,nd->nk", np.abs(on_x), radius)
        slope = np.einsum("lk,nkd->nld", self.weights, on_x)  # (n, L, d)
        offset = row_offset @ self.weights.T  # (n, L)
        value = offset + np.einsum("nld,nd->nl", slope, centre) + np.einsum("nld,nd->nl", np.abs(slope), radius)
        # every term summed into the combination (cancellations included), for the widening
        magnitude = (np.abs(row_upper) + np.abs(row_offset) + 2.0 * np.einsum("nkd,nd->nk", np.abs(on_x), reach)) @ self.weights.T
        value = value + _MARGIN * (1.0 + np.abs(value) + magnitude)
        best = np.minimum.reduceat(value, self.weight_starts, axis=1)  # (n, J)
        # the combination attaining each disjunct's bound, for the choice of the input to split
        owner = np.repeat(np.arange(self.disjuncts), np.diff(np.append(self.weight_starts, value.shape[1])))
        hit = np.where(value == best[:, owner], np.arange(value.shape[1])[None, :], value.shape[1])
        first = np.minimum.reduceat(hit, self.weight_starts, axis=1)  # (n, J)
        return best, np.take_along_axis(slope, first[:, :, None], axis=1)

    def per_disjunct(self, row_values: np.ndarray) -> np.ndarray:
        """Min over each disjunct's rows: (n, K) -> (n, J)."""
        return np.minimum.reduceat(row_values, self.starts, axis=1)

    def margins(self, y: np.ndarray) -> np.ndarray:
        """Each disjunct's margin at outputs ``y`` (n, outputs): shape (n, J)."""
        return self.per_disjunct(self.rhs - y @ self.rows.T)


def _groups(prop: VnnlibProperty) -> list[_Group]:
    by_box: dict[tuple, list] = {}
    for disjunct in prop.disjuncts:
        key = (disjunct.box.lower.tobytes(), disjunct.box.upper.tobytes())
        by_box.setdefault(key, []).append(disjunct)
    groups = []
    for members in by_box.values():
        rows, rhs, owner, starts = [], [], [], []
        for j, disjunct in enumerate(members):
            starts.append(sum(part.size for part in rhs))  # the row where disjunct j begins
            if disjunct.output_rows.shape[0] == 0:
                rows.append(np.zeros((1, prop.n_outputs)))
                rhs.append(np.zeros(1))
                owner.append(np.array([j]))
                continue
            rows.append(disjunct.output_rows)
            rhs.append(disjunct.output_rhs)
            owner.append(np.full(disjunct.output_rhs.size, j))
        starts = np.array(starts)
        sizes = np.diff(np.append(starts, len(np.concatenate(rhs))))
        blocks = [_simplex_grid(int(k)) for k in sizes]
        weights = np.zeros((sum(b.shape[0] for b in blocks), int(sizes.sum())))
        weight_starts, at = [], 0
        for start, block in zip(starts, blocks):
            weight_starts.append(at)
            weights[at : at + block.shape[0], start : start + block.shape[1]] = block
            at += block.shape[0]
        groups.append(
            _Group(members[0].box, np.vstack(rows), np.concatenate(rhs), np.concatenate(owner), starts,
                   weights, np.array(weight_starts))
        )
    return groups


def _simplex_grid(k: int) -> np.ndarray:
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


# ------------------------------------------------------------------ forward pass and exact gradient
def _input_gradient(network: Network, masks: list[np.ndarray], output_weights: np.ndarray) -> np.ndarray:
    """``d (output_weights[n] . y) / dx`` at each point (the local affine map's slope), shape (n, input_dim)."""
    grads: dict[int, np.ndarray] = {}

    def add(source: int, value: np.ndarray) -> None:
        grads[source] = grads[source] + value if source in grads else value

    for source, matrix in network.output.terms:
        add(source, output_weights @ matrix)
    for layer in range(len(network.relu_layers) - 1, -1, -1):
        g = grads.pop(layer + 1, None)
        if g is None:
            continue
        g = g * masks[layer]
        for source, matrix in network.relu_layers[layer].terms:
            add(source, g @ matrix)
    return grads.get(0, np.zeros((output_weights.shape[0], network.input_dim)))


# ------------------------------------------------------------------ batched sound bounds
class _Bounder:
    """Sound bounds over many sub-boxes at once (arrays with a leading axis of ``n`` boxes).

    Each ReLU layer's pre-activation bounds come from back-substituting the layer to the
    input through the relaxations of the layers below (as :func:`milp.bounds.propagate.symbolic_bounds`),
    intersected with interval bounds; the margin rows are back-substituted the same way.
    Every bound moves outward by ``_MARGIN * (1 + |bound| + magnitude)``, the magnitude
    being the sum of the absolute values of the terms added up into it.

    Only unstable neurons need their bounds (a stable one's relaxation is exact whatever
    its bounds), so a neuron whose sign is known — from the bounds of the enclosing box,
    which hold in a sub-box too, or from interval bounds — is not back-substituted, and
    neurons inactive in every box of a batch drop out of the matrices.

    With ``lower_slopes`` (the default) each unstable neuron's bounds are back-substituted
    twice, with the adaptive lower slopes below and with lower slope 0, keeping the tighter:
    half again the work, for bounds that close about half of the sub-boxes the adaptive
    ones leave open near an optimum. ``check`` is called before every back-substitution and
    may raise to stop a long batch at the deadline.
    """

    def __init__(self, network: Network, check: Callable[[], None] | None = None):
        self.network = network
        self.check = check or (lambda: None)  # called before each back-substitution (may raise to stop)
        self.dim = network.input_dim
        self.offsets = network.neuron_offsets()
        self.lower_slopes = True

    def _widen(self, value: np.ndarray, magnitude: np.ndarray, up: bool) -> np.ndarray:
        margin = _MARGIN * (1.0 + np.abs(value) + magnitude)
        return value + margin if up else value - margin

    def _interval(self, form: Affine, lo, hi, lowers, uppers) -> tuple[np.ndarray, np.ndarray]:
        """Interval bounds of ``form`` (n, rows), widened."""
        low = np.broadcast_to(form.bias, (lo.shape[0], form.out_dim)).copy()
        high = low.copy()
        magnitude = np.abs(low)
        for source, matrix in form.terms:
            s_lo, s_hi = (lo, hi) if source == 0 else (np.maximum(lowers[source - 1], 0.0), np.maximum(uppers[source - 1], 0.0))
            centre, radius = (s_lo + s_hi) * 0.5, (s_hi - s_lo) * 0.5
            absolute = np.abs(matrix).T
            mid = centre @ matrix.T
            spread = radius @ absolute
            low += mid - spread
            high += mid + spread
            magnitude += np.maximum(np.abs(s_lo), np.abs(s_hi)) @ absolute
        return self._widen(low, magnitude, False), self._widen(high, magnitude, True)

    def neuron_bounds(self, lo: np.ndarray, hi: np.ndarray, known_lower: np.ndarray, known_upper: np.ndarray) -> tuple[list, list, list]:
        """Bounds of every ReLU layer over each box, and their relaxations.

        ``known_lower``/``known_upper`` (n, neurons) are bounds known already (those of an
        enclosing box; -inf/inf for none): the result is never looser. Returns the lower and
        upper bounds (lists of (n, width) arrays) and the relaxations.
        """
        lowers, uppers, relaxations = [], [], []
        for index, form in enumerate(self.network.relu_layers):
            part = slice(self.offsets[index], self.offsets[index + 1])
            lower, upper = self._interval(form, lo, hi, lowers, uppers)
            lower = np.maximum(lower, known_lower[:, part])
            upper = np.minimum(upper, known_upper[:, part])
            need = (lower < 0) & (upper > 0)
            k = int(need.sum(axis=1).max(initial=0))
            if k and any(source > 0 for source in form.sources):
                # back-substitute each box's unstable neurons (padded to the batch's largest count)
                chosen = np.argsort(~need, axis=1, kind="stable")[:, :k]  # (n, k)
                start = {s: np.concatenate([m[chosen], -m[chosen]], axis=1) for s, m in form.terms}
                const = np.concatenate([form.bias[chosen], -form.bias[chosen]], axis=1)
                value, _, magnitude = self._back_substitute(start, const, lo, hi, relaxations)
                bound = self._widen(value, magnitude, True)
                if self.lower_slopes and relaxations:
                    # the same with lower slope 0 on the unstable neurons below; keep the tighter
                    zero = _with_lower_slope(relaxations, lowers, uppers, 0.0)
                    value, _, magnitude = self._back_substitute(start, const, lo, hi, zero)
                    bound = np.minimum(bound, self._widen(value, magnitude, True))
                new_upper = bound[:, :k]
                new_lower = -bound[:, k:]
                np.put_along_axis(upper, chosen, np.minimum(np.take_along_axis(upper, chosen, 1), new_upper), 1)
                np.put_along_axis(lower, chosen, np.maximum(np.take_along_axis(lower, chosen, 1), new_lower), 1)
            lowers.append(lower)
            uppers.append(upper)
            relaxations.append(_relaxation(lower, upper))
        return lowers, uppers, relaxations

    def row_bounds(self, lo, hi, relaxations, rows: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds of ``rhs_r - rows_r . y`` over each box, (n, K), and their slopes on x (n, K, input_dim)."""
        output = self.network.output
        start = {s: -rows @ m for s, m in output.terms}
        const = rhs - rows @ output.bias
        value, on_x, magnitude = self._back_substitute(start, const, lo, hi, relaxations)
        return self._widen(value, magnitude, True), on_x

    # -------------------------------------------------- back-substitution
    def _back_substitute(self, start: dict, const: np.ndarray, lo, hi, relaxations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper bound over each box of ``sum_s start[s] @ source_s + const``, not widened.

        ``start[s]`` has shape (R, dim_s) or (n, R, dim_s), ``const`` (R,) or (n, R).
        ``relaxations[l]`` is ``(a, s, t, kept)`` of ReLU layer l (see :func:`_relaxation`).
        Returns the bound (n, R), the slope on x of the linear function it maximises
        (n, R, input_dim) and the magnitude of its terms (n, R).
        """
        self.check()
        n = lo.shape[0]
        kept = [None] + [r[3] for r in relaxations]  # columns carried per source (None: all)

        def narrow(matrix: np.ndarray, source: int) -> np.ndarray:
            return matrix if kept[source] is None else matrix[..., kept[source]]

        coefficients = {source: narrow(m, source) for source, m in start.items()}
        constant = np.broadcast_to(const, (n, const.shape[-1])).copy()
        magnitude = np.abs(constant)  # of every term summed into the bound, for the widening
        for source in range(max(coefficients, default=0), 0, -1):
            c = coefficients.pop(source, None)
            if c is None:
                continue
            lower_slope, upper_slope, upper_offset, columns = relaxations[source - 1]
            positive, negative = np.maximum(c, 0.0), np.minimum(c, 0.0)
            if positive.ndim == 2:  # rows still shared by every box (the first step)
                on_z = positive * upper_slope[:, None, :] + negative * lower_slope[:, None, :]
                offset = upper_offset @ positive.T
            else:
                on_z = positive * upper_slope[:, None, :]
                on_z += negative * lower_slope[:, None, :]
                offset = np.einsum("nrw,nw->nr", positive, upper_offset)
            form = self.network.relu_layers[source - 1]
            bias = form.bias[columns]
            constant += offset + on_z @ bias
            magnitude += offset + np.abs(on_z) @ np.abs(bias)
            rows = on_z.shape[1]
            flat = on_z.reshape(n * rows, -1)
            for earlier, matrix in form.terms:
                contribution = (flat @ narrow(matrix[columns], earlier)).reshape(n, rows, -1)
                if earlier in coefficients:
                    coefficients[earlier] = coefficients[earlier] + contribution
                else:
                    coefficients[earlier] = contribution
        rows = constant.shape[1]
        on_x = coefficients.get(0)
        on_x = np.zeros((n, rows, self.dim)) if on_x is None else np.broadcast_to(on_x, (n, rows, self.dim))
        centre, radius = (lo + hi) * 0.5, (hi - lo) * 0.5
        value = constant + np.einsum("nrd,nd->nr", on_x, centre) + np.einsum("nrd,nd->nr", np.abs(on_x), radius)
        magnitude += np.einsum("nrd,nd->nr", np.abs(on_x), np.maximum(np.abs(lo), np.abs(hi)))
        return value, on_x, magnitude


def _relaxation(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ReLU relaxation of one layer over each box: ``a z <= relu(z) <= s z + t``; returns ``(a, s, t, kept)``.

    ``lower``/``upper`` have shape (n, width). Unstable neurons: ``s = u / (u - l)``,
    ``t = -s l`` and CROWN's adaptive ``a`` (1 when ``u > -l``); stable active ones
    ``a = s = 1``; stable inactive ones all 0. ``kept`` lists the neurons that are not
    inactive in every box; ``a``, ``s``, ``t`` are restricted to them, shape (n, kept).
    """
    kept = np.flatnonzero(np.any(upper > 0, axis=0))
    lower, upper = lower[:, kept], upper[:, kept]
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    safe = np.where(unstable, upper - lower, 1.0)
    slope = np.where(unstable, upper / safe, active.astype(np.float64))
    offset = np.where(unstable, -slope * lower, 0.0)
    lower_slope = np.where(unstable, (upper > -lower).astype(np.float64), active.astype(np.float64))
    return lower_slope, slope, offset, kept


def _with_lower_slope(relaxations: list, lowers: list, uppers: list, value: float) -> list:
    """The relaxations with lower slope ``value`` (in [0, 1]) on every unstable neuron."""
    out = []
    for (lower_slope, slope, offset, kept), lower, upper in zip(relaxations, lowers, uppers):
        unstable = (lower[:, kept] < 0) & (upper[:, kept] > 0)
        out.append((np.where(unstable, value, lower_slope), slope, offset, kept))
    return out


# ------------------------------------------------------------------ the search
@dataclass
class _Counters:
    subproblems: int = 0
    milp_calls: int = 0
    closed: int = 0
    notes: list = field(default_factory=list)


class _Search:
    """Everything one :func:`verify` call shares: the network, the property, the clock, the counters."""

    def __init__(self, network, prop, reference, deadline, rng, settings: _Settings):
        self.network = network
        self.prop = prop
        self.reference = reference
        self.deadline = deadline
        self.rng = rng
        self.settings = settings
        self.counters = _Counters()
        self.rejected = 0  # candidate points the confirmation refused

    # -------------------------------------------------- clock
    def out_of_time(self) -> bool:
        return self.deadline.expired()

    def check_time(self) -> None:
        if self.out_of_time():
            raise _OutOfTime()

    def remaining(self) -> float | None:
        return self.deadline.remaining()

    # -------------------------------------------------- candidates
    def confirm(self, group: _Group, x: np.ndarray) -> bool:
        """Raise :class:`_Found` when ``x`` is a counterexample by every check; False otherwise."""
        x = np.clip(np.asarray(x, dtype=np.float64), group.box.lower, group.box.upper)
        y = self.network.forward(x[None, :]).output
        if not np.any(group.margins(y) >= 0):
            return False
        y = y[0]
        reported = y
        if self.reference is not None:
            reported = np.asarray(self.reference(x[None, :]), dtype=np.float64).reshape(-1)
            if reported.shape != y.shape or not np.allclose(reported, y, rtol=REFERENCE_TOLERANCE, atol=REFERENCE_TOLERANCE):
                self.rejected += 1
                return False
        if not check_counterexample(self.prop, x, reported, tol=COUNTEREXAMPLE_TOLERANCE):
            self.rejected += 1
            return False
        raise _Found(x, reported)

    def try_points(self, group: _Group, x: np.ndarray, margins: np.ndarray | None = None) -> np.ndarray:
        """Check the points whose margin is >= 0 (best first); returns each point's best margin (n,)."""
        if margins is None:
            margins = group.margins(self.network.forward(x).output).max(axis=1)
        hits = np.flatnonzero(margins >= 0)
        for index in hits[np.argsort(-margins[hits])][:8]:
            self.confirm(group, x[index])
        return margins

    # -------------------------------------------------- falsification
    def attack(self, group: _Group, starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, steps: int) -> np.ndarray:
        """Projected gradient ascent on the best disjunct's margin, each start in its own box (lo, hi (n, d)).

        Sign steps scaled by the box widths, shrinking geometrically; returns the best point of each start.
        """
        x = np.clip(starts, lo, hi)
        width = hi - lo
        best_x, best = x.copy(), np.full(x.shape[0], -np.inf)
        for step in range(steps):
            if self.out_of_time():
                raise _OutOfTime()
            trace = self.network.forward(x)
            y = trace.output
            row_values = group.rhs - y @ group.rows.T  # (n, K)
            per = group.per_disjunct(row_values)
            margin = per.max(axis=1)
            better = margin > best
            best_x[better], best[better] = x[better], margin[better]
            self.try_points(group, x, margin)
            if step == steps - 1:
                break
            # the binding row: the smallest row of the best disjunct
            chosen = np.argmax(per, axis=1)
            masked = np.where(group.owner[None, :] == chosen[:, None], row_values, np.inf)
            row = np.argmin(masked, axis=1)
            masks = [z > 0 for z in trace.pre_activations]
            gradient = _input_gradient(self.network, masks, -group.rows[row])
            size = 0.25 * (0.02 ** (step / max(1, steps - 1)))
            x = np.clip(x + size * width * np.sign(gradient), lo, hi)
        return best_x

    def falsify(self, group: _Group, samples: int | None = None, starts: int | None = None, steps: int | None = None,
                open_boxes: "_Boxes | None" = None) -> None:
        """Samples, then gradient ascent from the best samples and fresh random points.

        The counts default to the settings' first, cheap round; later rounds pass larger ones,
        and the sub-boxes still open in the branch and bound: half the samples are then drawn
        in those with the highest upper bounds, where a counterexample is likeliest.
        """
        box = group.box
        s = self.settings
        samples = s.samples if samples is None else samples
        starts = s.attack_starts if starts is None else starts
        steps = s.attack_steps if steps is None else steps
        corners = np.vstack([box.center, box.lower, box.upper])
        points = np.vstack([corners, box.sample(samples, self.rng)])
        if open_boxes is not None and open_boxes.count:
            top = np.argsort(-open_boxes.score)[: max(1, samples // 20)]
            pick = self.rng.choice(top, size=samples // 2)
            inside = open_boxes.lo[pick] + self.rng.random((pick.size, box.dim)) * (open_boxes.hi[pick] - open_boxes.lo[pick])
            points = np.vstack([corners, box.sample(samples - pick.size, self.rng), inside])
        margins = np.concatenate([self.try_points(group, chunk) for chunk in np.array_split(points, max(1, points.shape[0] // 10000))])
        if self.out_of_time():
            raise _OutOfTime()
        order = np.argsort(-margins)
        half = starts // 2
        begin = np.vstack([points[order[:half]], box.sample(starts - half, self.rng)])
        n = begin.shape[0]
        self.attack(group, begin, np.broadcast_to(box.lower, (n, box.dim)), np.broadcast_to(box.upper, (n, box.dim)), steps)

    # -------------------------------------------------- branch and bound
    def margin_upper(self, bounder: "_Bounder", group: _Group, lo, hi, lowers, uppers, relaxations) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds of each disjunct's margin over each box (n, J) and the slopes on x of the bounds (n, J, d).

        The rows are back-substituted twice: with CROWN's adaptive lower ReLU slopes, and with
        lower slope 0 for every unstable neuron (any slope in [0, 1] is sound). Neither is better
        everywhere — near the optimum of the margin the second is often much tighter — so each
        box keeps the smaller bound.
        """
        best, slopes = None, None
        for lower_slope in (None, 0.0):
            chosen = relaxations if lower_slope is None else _with_lower_slope(relaxations, lowers, uppers, lower_slope)
            row_upper, on_x = bounder.row_bounds(lo, hi, chosen, group.rows, group.rhs)
            per, slope = group.combined_upper(row_upper, on_x, lo, hi)
            if best is None:
                best, slopes = per, slope
            else:
                # the split follows the adaptive bound's slope: that of lower slope 0 is a worse guide
                best = np.minimum(per, best)
        return best, slopes

    def bound(self, bounder: "_Bounder", group: _Group, boxes: "_Boxes") -> "_Boxes":
        """Bound each box; returns the boxes where some disjunct stays open, with their bounds."""
        self.counters.subproblems += boxes.count
        lowers, uppers, relaxations = bounder.neuron_bounds(boxes.lo, boxes.hi, boxes.lower, boxes.upper)
        per, slopes = self.margin_upper(bounder, group, boxes.lo, boxes.hi, lowers, uppers, relaxations)
        per = np.where(boxes.open, per, -np.inf)
        open_ = boxes.open & (per >= 0)
        alive = np.flatnonzero(open_.any(axis=1))
        self.counters.closed += boxes.count - alive.size
        # the slope of the bound of each box's best disjunct
        chosen = np.argmax(per[alive], axis=1)
        return _Boxes(
            boxes.lo[alive], boxes.hi[alive], open_[alive],
            np.concatenate(lowers, axis=1)[alive], np.concatenate(uppers, axis=1)[alive],
            per[alive].max(axis=1), slopes[alive, chosen],
        )

    def branch_and_bound(self, group: _Group) -> str:
        """Close every sub-box of the group's box: "unsat", or raises _Found / _OutOfTime; "unknown" if stuck.

        Open sub-boxes wait on a stack of :class:`_Boxes` chunks, already bounded; taking the
        newest first keeps the stack short.
        """
        s = self.settings
        box = group.box
        bounder = _Bounder(self.network, self.check_time)
        root_width = np.where(box.widths > 0, box.widths, 1.0)
        free = box.widths > 0
        neurons = self.network.neuron_count
        root = _Boxes(
            box.lower[None, :].copy(), box.upper[None, :].copy(), np.ones((1, group.disjuncts), dtype=bool),
            np.full((1, neurons), -np.inf), np.full((1, neurons), np.inf), np.zeros(1), np.zeros((1, box.dim)),
        )
        stack = [self.bound(bounder, group, root)]
        stuck = 0
        started = time.perf_counter()
        rounds = list(s.rounds_after)
        while stack:
            if self.out_of_time():
                raise _OutOfTime()
            if rounds and time.perf_counter() - started >= rounds[0]:
                # undecided for a while: a larger falsification round (raises _Found on success);
                # after the listed times, one every `round_every` seconds
                rounds = rounds[1:] or [time.perf_counter() - started + s.round_every]
                self.falsify(group, s.round_samples, s.round_starts, s.round_steps, _Boxes.concatenate(stack) if stack else None)
            boxes = _Boxes.pop(stack, s.batch)
            if boxes.count == 0:
                continue
            # leaves: too small to split, or few unstable neurons -> exact MILP
            unstable = ((boxes.lower < 0) & (boxes.upper > 0)).sum(axis=1)
            widths = (boxes.hi - boxes.lo) / root_width
            tiny = ~np.any((widths > 1e-9) & free, axis=1)
            leaf = tiny | (unstable <= s.leaf_unstable)
            for index in np.flatnonzero(leaf):
                if self.milp_leaf(group, boxes, index) != "unsat":
                    if tiny[index]:
                        stuck += 1  # cannot split further: the sub-box stays undecided
                    else:
                        leaf[index] = False  # split it instead
            boxes = boxes.take(np.flatnonzero(~leaf))
            if boxes.count == 0:
                continue
            # an input may be split when it is not much narrower (relative to the root box) than the widest
            relative = np.where(free, (boxes.hi - boxes.lo) / root_width, 0.0)
            eligible = relative >= relative.max(axis=1, keepdims=True) * 0.5**s.spread
            split = s.split if s.split != "auto" else ("trial" if group.disjuncts == 1 else "slope")
            if split == "trial":
                children = self.split_by_trial(bounder, group, boxes, eligible, relative)
            else:
                if split == "widest":
                    score = np.where(eligible, relative, -1.0)
                else:
                    score = np.where(eligible, np.abs(boxes.slope) * (boxes.hi - boxes.lo) + 1e-12 * relative, -1.0)
                children = self.bound(bounder, group, boxes.halves(np.argmax(score, axis=1)))
            if children.count:
                self.try_boxes(group, children)
                stack.append(children)
        return "unknown" if stuck else "unsat"

    def split_by_trial(self, bounder: "_Bounder", group: _Group, boxes: "_Boxes", eligible: np.ndarray, relative: np.ndarray) -> "_Boxes":
        """Halve each box along the eligible input (n, d) whose halves have the lowest larger upper bound."""
        dims = np.flatnonzero(eligible.any(axis=0))
        n = boxes.count
        trials = _Boxes.concatenate([boxes.halves(np.full(n, dim)) for dim in dims])  # per dim: n lower, n upper halves
        lowers, uppers, relaxations = bounder.neuron_bounds(trials.lo, trials.hi, trials.lower, trials.upper)
        per = self.margin_upper(bounder, group, trials.lo, trials.hi, lowers, uppers, relaxations)[0]
        per = np.where(trials.open, per, -np.inf).max(axis=1).reshape(dims.size, 2, n)
        score = np.where(eligible[:, dims].T, per.max(axis=1) + 1e-3 * per.min(axis=1), np.inf)  # (dims, n)
        best = np.argmin(score, axis=0)
        # greedy trap: when no single split lowers the bound noticeably, halve the (relatively) widest input
        gain = boxes.score - per.max(axis=1)[best, np.arange(n)]
        stalled = gain < self.settings.stall * np.maximum(np.abs(boxes.score), 1e-9)
        widest = np.argmax(np.where(eligible[:, dims], relative[:, dims], -1.0), axis=1)
        best = np.where(stalled, widest, best)
        picked = np.concatenate([best * 2 * n + np.arange(n), best * 2 * n + n + np.arange(n)])
        return self.bound(bounder, group, trials.take(picked))

    def try_boxes(self, group: _Group, boxes: "_Boxes") -> None:
        """Try each box's centre and the corner maximising its linear bound; a few gradient steps from the best corners."""
        corner = np.where(boxes.slope > 0, boxes.hi, boxes.lo)
        self.try_points(group, np.vstack([(boxes.lo + boxes.hi) * 0.5, corner]))
        if self.settings.local_attack:
            top = np.argsort(-boxes.score)[: self.settings.local_attack]
            self.attack(group, corner[top], boxes.lo[top], boxes.hi[top], self.settings.local_steps)

    def milp_leaf(self, group: _Group, boxes: "_Boxes", index: int) -> str:
        """Decide each open disjunct over box ``index`` by one exact MILP each: "unsat", "unknown" (or raises _Found)."""
        from milp.search.queries import _milp_reach

        box = Box(boxes.lo[index], boxes.hi[index])
        split = self.network.neuron_offsets()
        bounds = Bounds(tuple(np.split(boxes.lower[index], split[1:-1])), tuple(np.split(boxes.upper[index], split[1:-1])), "symbolic")
        open_ = boxes.open[index]
        output = self.network.output
        for j in np.flatnonzero(open_):
            rows = np.flatnonzero(group.owner == j)
            conditions = []
            for r in rows:
                c = group.rows[r]
                expression = Affine(tuple((s, -(c @ m)[None, :]) for s, m in output.terms), np.array([group.rhs[r] - c @ output.bias]))
                conditions.append(Condition(expression, False, f"row {r}"))
            self.counters.milp_calls += 1
            options = SolverOptions()
            status, x, why = _milp_reach(self.network, box, bounds, conditions, self.reference, self.deadline, options)
            if status == "sat":
                if not self.confirm(group, x):
                    return "unknown"
            elif status != "unsat":
                if self.out_of_time():
                    raise _OutOfTime()
                return "unknown"
        return "unsat"


@dataclass(frozen=True)
class _Boxes:
    """A batch of ``n`` sub-boxes with what is known on each.

    ``lo``/``hi`` (n, d); ``open`` (n, J) the disjuncts not yet excluded there; ``lower``/
    ``upper`` (n, neurons) sound pre-activation bounds over the box (those of an enclosing
    box hold too); ``score`` (n,) the best open disjunct's upper bound; ``slope`` (n, d)
    the slope on x of that bound's linear function.
    """

    lo: np.ndarray
    hi: np.ndarray
    open: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    slope: np.ndarray

    @property
    def count(self) -> int:
        return int(self.lo.shape[0])

    def take(self, index) -> "_Boxes":
        return _Boxes(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concatenate(parts: list["_Boxes"]) -> "_Boxes":
        return _Boxes(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Boxes)))

    def halves(self, dim: np.ndarray) -> "_Boxes":
        """Each box halved along ``dim[i]``: the n lower halves, then the n upper halves (bounds inherited)."""
        index = np.arange(self.count)
        middle = 0.5 * (self.lo[index, dim] + self.hi[index, dim])
        low_hi = self.hi.copy()
        low_hi[index, dim] = middle
        high_lo = self.lo.copy()
        high_lo[index, dim] = middle
        both = _Boxes.concatenate([self, self])
        return _Boxes(np.vstack([self.lo, high_lo]), np.vstack([low_hi, self.hi]), *(getattr(both, f.name) for f in fields(self)[2:]))

    @staticmethod
    def pop(stack: list, count: int) -> "_Boxes":
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
        return parts[0] if len(parts) == 1 else _Boxes.concatenate(parts)


# ------------------------------------------------------------------ public API
def verify(
    network: Network,
    prop: VnnlibProperty,
    *,
    timeout: float | None,
    reference: Reference | None = None,
    seed: int = 0,
    settings: _Settings = _Settings(),
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
    search = _Search(network, prop, reference, deadline, np.random.default_rng(seed), settings)
    groups = _groups(prop)

    def verdict(result: str, x=None, y=None, reason: str = "") -> Verdict:
        c = search.counters
        return Verdict(result, x, y, time.perf_counter() - started, c.subproblems, c.milp_calls, reason)

    try:
        for group in groups:
            search.falsify(group)
            if search.out_of_time():
                raise _OutOfTime()
        undecided = 0
        for group in groups:
            if search.branch_and_bound(group) != "unsat":
                undecided += 1
    except _Found as found:
        return verdict("sat", found.x, found.y)
    except _OutOfTime:
        if deadline.stopped:
            return verdict("unknown", reason="stopped on request")
        return verdict("timeout", reason="time limit reached")
    if undecided:
        why = "sub-boxes that neither bounds nor the MILP could close"
        if search.rejected:
            why += f"; {search.rejected} candidate counterexample(s) failed the reference check"
        return verdict("unknown", reason=why)
    return verdict("unsat")
