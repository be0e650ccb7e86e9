"""Sound per-neuron pre-activation bounds: interval arithmetic and symbolic back-substitution.

A neuron whose pre-activation ``z`` has lower bound ``>= 0`` (stable active) or upper
bound ``<= 0`` (stable inactive) needs no binary in the MILP; the others get big-M
constants equal to their bounds. Every bound here is *sound*: it contains every value
``z`` takes over the input box. A bound tighter than the truth would cut real points
out of the MILP, so when in doubt the functions below round outward.

Two methods, both over the canonical form of :mod:`milp.core.network` (source 0 is the
input ``x``, source ``l + 1`` is ``h_l = relu(z_l)``):

``interval``
    ``z = sum_s W[s] h_s + c`` bounded term by term from the bounds of each source
    (the box for ``x``, ``[max(l, 0), max(u, 0)]`` for ``h_l``).

``symbolic`` (DeepPoly / CROWN style)
    Each bound of ``z`` is a linear function of the sources, pushed back through the
    network until it reads only ``x``, then maximised over the box. A ReLU output
    ``h_j`` is replaced by a linear relaxation in ``z_j`` and ``z_j`` by its own affine
    map over earlier sources. For a neuron with bounds ``l < 0 < u``::

        upper relaxation   h <= u / (u - l) * (z - l)
        lower relaxation   h >= a z,  a = 1 if u > -l else 0   (adaptive, as in CROWN)

    a stable active neuron is ``h = z`` and a stable inactive one ``h = 0``. To bound a
    linear function from above, a positive coefficient on ``h_j`` takes the upper
    relaxation and a negative one the lower relaxation. A lower bound of ``f`` is
    minus the upper bound of ``-f``, so one routine serves both sides.

Each layer's bounds are intersected with the interval bounds before later layers use them.

One engine, :class:`BatchBounder`, computes all of this on a batch of ``n`` boxes at once
(arrays with a leading axis ``n``); the one-box functions below call it with ``n = 1``. It
back-substitutes only the neurons that interval bounds leave unstable (a stable neuron's
relaxation is exact whatever its bounds), and by default twice, with the adaptive lower
slopes and with lower slope 0, keeping the tighter (any slope in [0, 1] is sound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from milp.core.box import Box
from milp.core.errors import InputError
from milp.core.network import Affine, Network
from milp.core.tolerances import BOUND_MARGIN

__all__ = [
    "Bounds", "BoundsError", "BatchBounder", "interval_bounds", "symbolic_bounds", "bound_affine",
    "output_bounds", "relaxation", "with_lower_slope",
]

# A group of boxes has its unstable neurons back-substituted in slices of at most about this many
# rows (boxes x 2 x unstable neurons): one slice's arrays stay small enough for the caches, and the
# deadline is checked between slices. Measured on 6,144 sub-boxes of [-1,1]^5 and [-1,1]^10 (the
# 5-50x6-5 and 10-64x4-1 rungs' nets, every neuron bounded): in one slice 21.0 s and 15.4 s, with
# 65,536 rows 10.5 s and 11.8 s, 16,384 rows 9.7 s and 7.7 s, 4,096 rows 6.2 s and 4.0 s, 1,024 rows
# 6.6 s and 4.5 s; the same bounds. A single back-substitution had taken 3.8 s there, and the search
# that ran it went 2.3 s past its deadline.
SLICE_ROWS = 4096


class BoundsError(InputError):
    """Bounds that do not fit the network, are inverted or are not finite."""


def _frozen(values) -> tuple[np.ndarray, ...]:
    """Read-only float64 copies (callers may keep changing the arrays they passed)."""
    arrays = []
    for value in values:
        array = np.array(value, dtype=np.float64).reshape(-1)
        array.setflags(write=False)
        arrays.append(array)
    return tuple(arrays)


@dataclass(frozen=True)
class Bounds:
    """``lower[l] <= z_l <= upper[l]`` for each ReLU layer ``l``, arrays of shape ``(width_l,)``.

    ``method`` names how they were found (``interval``, ``symbolic``, ``symbolic+lp``...).
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    method: str

    def __post_init__(self) -> None:
        lower = _frozen(self.lower)
        upper = _frozen(self.upper)
        if len(lower) != len(upper):
            raise BoundsError(f"bounds have {len(lower)} lower and {len(upper)} upper layers")
        for layer, (lo, hi) in enumerate(zip(lower, upper)):
            if lo.shape != hi.shape:
                raise BoundsError(f"layer {layer} has {lo.size} lower and {hi.size} upper bounds")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @classmethod
    def from_flat(cls, network: Network, lower: np.ndarray, upper: np.ndarray, method: str) -> "Bounds":
        """Bounds given for every neuron at once, shape (neurons,), in the network's layer order."""
        split = network.neuron_offsets()[1:-1]
        return cls(tuple(np.split(lower, split)), tuple(np.split(upper, split)), method)

    @property
    def layer_count(self) -> int:
        return len(self.lower)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(lo.size) for lo in self.lower)

    def stable_active(self, layer: int) -> np.ndarray:
        """Neurons of ``layer`` with ``z >= 0`` everywhere (``h = z``), bool mask ``(width,)``."""
        return self.lower[layer] >= 0

    def stable_inactive(self, layer: int) -> np.ndarray:
        """Neurons of ``layer`` with ``z <= 0`` everywhere (``h = 0``), bool mask ``(width,)``."""
        return self.upper[layer] <= 0

    def unstable(self, layer: int) -> np.ndarray:
        """Neurons of ``layer`` whose sign is not fixed by the bounds, bool mask ``(width,)``."""
        return ~(self.stable_active(layer) | self.stable_inactive(layer))

    @property
    def unstable_counts(self) -> tuple[int, ...]:
        return tuple(int(self.unstable(layer).sum()) for layer in range(self.layer_count))

    @property
    def unstable_count(self) -> int:
        return int(sum(self.unstable_counts))

    def activation_bounds(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of ``h = relu(z)`` for ``layer``: ``(max(lower, 0), max(upper, 0))``."""
        return np.maximum(self.lower[layer], 0.0), np.maximum(self.upper[layer], 0.0)

    def intersect(self, other: "Bounds") -> "Bounds":
        """The elementwise tighter of two sound bound sets for the same layers."""
        if self.widths != other.widths:
            raise BoundsError(f"cannot intersect bounds of layer widths {self.widths} and {other.widths}")
        lower = tuple(np.maximum(a, b) for a, b in zip(self.lower, other.lower))
        upper = tuple(np.minimum(a, b) for a, b in zip(self.upper, other.upper))
        return Bounds(lower, upper, f"{self.method}+{other.method}")

    def validate(self) -> "Bounds":
        """Return self, or raise :class:`BoundsError` at the first non-finite or inverted bound."""
        for layer, (lo, hi) in enumerate(zip(self.lower, self.upper)):
            bad = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
            if bad.size:
                k = int(bad[0])
                raise BoundsError(f"{self.method} bounds of z{layer}[{k}] are not finite: [{lo[k]}, {hi[k]}]")
            bad = np.flatnonzero(lo > hi)
            if bad.size:
                k = int(bad[0])
                raise BoundsError(f"{self.method} bounds of z{layer}[{k}] are inverted: lower {lo[k]:.17g} > upper {hi[k]:.17g}")
        return self


# ------------------------------------------------------------------ the engine: a batch of boxes
class BatchBounder:
    """Sound bounds over many sub-boxes at once (arrays with a leading axis of ``n`` boxes).

    Each ReLU layer's pre-activation bounds come from back-substituting the layer to the
    input through the relaxations of the layers below (as :func:`milp.bounds.propagate.symbolic_bounds`),
    intersected with interval bounds; the margin rows are back-substituted the same way.
    Every bound moves outward by ``BOUND_MARGIN * (1 + |bound| + magnitude)``, the magnitude
    being the sum of the absolute values of the terms added up into it.

    A back-substituted bound that comes out NaN (an overflow on the way) never tightens anything:
    bounds are combined with ``fmin``/``fmax``, which ignore NaN, so the interval bound stands
    (a NaN bound would make a neuron look strictly inactive to :func:`relaxation`).

    Only unstable neurons need their bounds (a stable one's relaxation is exact whatever
    its bounds), so a neuron whose sign is known — from the bounds of the enclosing box,
    which hold in a sub-box too, or from interval bounds — is not back-substituted, and
    neurons inactive in every box of a batch drop out of the matrices. A layer's unstable neurons
    are back-substituted for groups of boxes with the same count of them (:func:`padding_groups`),
    each group padded to its own count and its relaxations narrowed to the neurons it needs.

    With ``lower_slopes`` (the default) each unstable neuron's bounds are back-substituted
    twice, with the adaptive lower slopes below and with lower slope 0, keeping the tighter:
    half again the work, for bounds that close about half of the sub-boxes the adaptive
    ones leave open near an optimum. A group is back-substituted in slices of at most about
    ``slice_rows`` rows (see :data:`SLICE_ROWS`). ``check`` is called before every
    back-substitution and may raise to stop a long batch at the deadline.
    """

    def __init__(self, network: Network, check: Callable[[], None] | None = None, lower_slopes: bool = True,
                 slice_rows: int = SLICE_ROWS):
        self.network = network
        self.check = check or (lambda: None)  # called before each back-substitution (may raise to stop)
        self.dim = network.input_dim
        self.offsets = network.neuron_offsets()
        self.lower_slopes = lower_slopes
        self.slice_rows = slice_rows
        # each ReLU layer's (terms, bias) in float64, and a float32 copy for the tuning iterations
        # (half the memory traffic; the bound they lead to is computed again in float64)
        with np.errstate(over="ignore"):  # an overflow is detected below
            self.layers = {
                np.float64: [(form.terms, form.bias) for form in network.relu_layers],
                np.float32: [(tuple((s, m.astype(np.float32)) for s, m in form.terms), form.bias.astype(np.float32))
                             for form in network.relu_layers],
            }
        # weights beyond float32's range (about 3.4e38) would tune on infinities: then tune in float64
        # (so do rows, boxes and relaxations beyond it: see optimised_upper)
        single = [m for terms, bias in self.layers[np.float32] for m in (bias, *(m for _, m in terms))]
        self.tuning = np.float32 if _all_finite(single) else np.float64

    def _widen(self, value: np.ndarray, magnitude: np.ndarray, up: bool) -> np.ndarray:
        margin = BOUND_MARGIN * (1.0 + np.abs(value) + magnitude)
        return value + margin if up else value - margin

    def interval(self, form: Affine, lo, hi, lowers, uppers) -> tuple[np.ndarray, np.ndarray]:
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

    def neuron_bounds(self, lo: np.ndarray, hi: np.ndarray, known_lower: np.ndarray, known_upper: np.ndarray,
                      back_substitute: bool = True) -> tuple[list, list, list]:
        """Bounds of every ReLU layer over each box, and their relaxations.

        ``known_lower``/``known_upper`` (n, neurons) are bounds known already (those of an
        enclosing box; -inf/inf for none): the result is never looser. Without
        ``back_substitute``, only interval arithmetic tightens them (a sub-problem that keeps its
        parent's bounds). Returns the lower and upper bounds (lists of (n, width) arrays) and the
        relaxations.
        """
        lowers, uppers, relaxations = [], [], []
        for index, form in enumerate(self.network.relu_layers):
            part = slice(self.offsets[index], self.offsets[index + 1])
            lower, upper = self.interval(form, lo, hi, lowers, uppers)
            lower = np.fmax(lower, known_lower[:, part])
            upper = np.fmin(upper, known_upper[:, part])
            need = (lower < 0) & (upper > 0)
            counts = need.sum(axis=1)
            if back_substitute and counts.any() and any(source > 0 for source in form.sources):
                zero = with_lower_slope(relaxations, lowers, uppers, 0.0) if self.lower_slopes and relaxations else None
                # boxes with similar counts of unstable neurons together: each group is padded to its own largest
                for whole in padding_groups(counts):
                    k = int(counts[whole].max())
                    for group in np.array_split(whole, min(whole.size, -(-whole.size * 2 * k // self.slice_rows))):
                        own, *own_zero = _rows_of(group, uppers, relaxations, *([] if zero is None else [zero]))
                        self._bound_unstable(form, lo[group], hi[group], need[group], k,
                                             own, own_zero[0] if own_zero else None, lower, upper, group)
            lowers.append(lower)
            uppers.append(upper)
            relaxations.append(relaxation(lower, upper))
        return lowers, uppers, relaxations

    def _bound_unstable(self, form: Affine, lo, hi, need, k: int, relaxations: list, zero: list | None,
                        lower: np.ndarray, upper: np.ndarray, group: np.ndarray) -> None:
        """Back-substitute the unstable neurons ``need`` (m, width) of the boxes ``group`` (m,), padded to
        ``k`` a box, through ``relaxations`` (and ``zero``, the same with lower slope 0: the tighter
        bound is kept); tightens ``lower``/``upper`` (n, width) in place on the group's rows."""
        chosen = np.argsort(~need, axis=1, kind="stable")[:, :k]  # (m, k)
        start = {s: np.concatenate([m[chosen], -m[chosen]], axis=1) for s, m in form.terms}
        const = np.concatenate([form.bias[chosen], -form.bias[chosen]], axis=1)
        value, _, magnitude = self._back_substitute(start, const, lo, hi, relaxations)
        bound = self._widen(value, magnitude, True)
        if zero is not None:
            value, _, magnitude = self._back_substitute(start, const, lo, hi, zero)
            bound = np.fmin(bound, self._widen(value, magnitude, True))
        rows_upper, rows_lower = upper[group], lower[group]
        np.put_along_axis(rows_upper, chosen, np.fmin(np.take_along_axis(rows_upper, chosen, 1), bound[:, :k]), 1)
        np.put_along_axis(rows_lower, chosen, np.fmax(np.take_along_axis(rows_lower, chosen, 1), -bound[:, k:]), 1)
        upper[group], lower[group] = rows_upper, rows_lower

    def optimised_neuron_bounds(self, lo: np.ndarray, hi: np.ndarray, known_lower: np.ndarray, known_upper: np.ndarray,
                                steps: int) -> tuple[list, list, list]:
        """:meth:`neuron_bounds`, then each layer's unstable neurons tightened, layer by layer, by
        :meth:`optimised_upper` (``steps`` steps) on their two rows ``z`` and ``-z``: alpha-CROWN's
        optimised intermediate bounds. Each layer reads the tightened relaxations of those below,
        so the gain compounds with depth. Worth it once per search (at the root), where every
        sub-problem inherits the bounds.
        """
        lowers, uppers, relaxations = self.neuron_bounds(lo, hi, known_lower, known_upper)
        for index, form in enumerate(self.network.relu_layers):
            lower, upper = lowers[index], uppers[index]
            # the optimiser starts from CROWN's slopes on the (tightened) layers below
            columns = np.flatnonzero(((lower < 0) & (upper > 0)).any(axis=0))
            if columns.size and any(source > 0 for source in form.sources):
                both = Affine(tuple((source, np.concatenate([m[columns], -m[columns]])) for source, m in form.terms),
                              np.concatenate([form.bias[columns], -form.bias[columns]]))
                bound = self.optimised_upper(both, lo, hi, lowers[:index], uppers[:index], relaxations[:index], steps)[0]
                k = columns.size
                upper[:, columns] = np.fmin(upper[:, columns], bound[:, :k])
                lower[:, columns] = np.fmax(lower[:, columns], -bound[:, k:])
            relaxations[index] = relaxation(lower, upper)  # of the tightened bounds, for the layers above
        return lowers, uppers, relaxations

    def form_bounds(self, form: Affine, lo, hi, lowers: list, uppers: list) -> tuple[np.ndarray, np.ndarray]:
        """Sound lower and upper bounds (n, rows) of an affine ``form`` over the sources, on each box,
        given the bounds ``lowers``/``uppers`` (lists of (n, width)) of the layers it reads."""
        relaxations = [relaxation(l, u) for l, u in zip(lowers, uppers)]
        rows = form.out_dim
        start = {s: np.concatenate([m, -m], axis=0) for s, m in form.terms}
        const = np.concatenate([form.bias, -form.bias])
        value, _, magnitude = self._back_substitute(start, const, lo, hi, relaxations)
        bound = self._widen(value, magnitude, True)
        if self.lower_slopes and relaxations:
            value, _, magnitude = self._back_substitute(start, const, lo, hi, with_lower_slope(relaxations, lowers, uppers, 0.0))
            bound = np.fmin(bound, self._widen(value, magnitude, True))
        low, high = self.interval(form, lo, hi, lowers, uppers)
        return np.fmax(-bound[:, rows:], low), np.fmin(bound[:, :rows], high)

    def form_upper(self, form: Affine, lo, hi, relaxations) -> tuple[np.ndarray, np.ndarray]:
        """Widened upper bounds of each row of ``form`` (over the sources) over each box, (n, rows), and
        the slopes on x (n, rows, input_dim) of the linear functions whose maxima they are."""
        value, on_x, magnitude = self._back_substitute(dict(form.terms), form.bias, lo, hi, relaxations)
        return self._widen(value, magnitude, True), on_x

    def optimised_upper(self, form: Affine, lo, hi, lowers: list, uppers: list, relaxations: list,
                        steps: int, rates: tuple[float, float] = (0.1, 0.05), rows: np.ndarray | None = None,
                        warm: tuple[np.ndarray, np.ndarray] | None = None, enough: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list, tuple]:
        """:meth:`form_upper` with the relaxation tuned to each row and box (the idea of alpha- and beta-CROWN).

        Each row gets its own lower ReLU slopes on the unstable neurons (any value in [0, 1] is sound),
        and a multiplier ``beta >= 0`` on each *split* neuron: one whose bounds over the box end exactly
        at 0 (``lower == 0``: ``z >= 0`` holds there; ``upper == 0``: ``z <= 0``), so that the split
        constraint reaches the neurons below it instead of acting through that neuron's relaxation
        alone. Both are tuned by ``steps`` steps of projected Adam on the bound, from CROWN's adaptive
        slopes and no multipliers (``rates``: the step sizes of slopes and multipliers).
        Every iterate is a sound bound; each (box, row) keeps the slopes and multipliers of its smallest.

        ``rows`` (n, R), when given, picks the rows of ``form`` to bound in each box (the others cost
        nothing); the results then have R rows, in that order. ``warm`` (slopes, multipliers), each
        (n, R, neurons) over all ReLU layers' neurons, is where the tuning starts instead: a parent
        box's best iterate, which a sub-box's bound rarely needs to move far from (NaN slopes, and
        neurons no longer unstable or split, start from CROWN's and 0). ``enough`` (n, R), when given,
        ends the tuning of a box early: once every row's bound is below its entry (a box that closes
        needs no tighter bound), or when, at a step that is a multiple of 8, some row would stay above
        its entry even if its bound kept falling at its pace so far (a box that will not close: its
        untuned bound serves as well).

        Returns the bounds (n, R), the slopes on x of the linear functions they maximise
        (n, R, input_dim), per ReLU layer the coefficients of the best iterate on the layer's
        kept neurons (n, R, kept) (zero arrays where the objective does not reach the layer): a
        neuron's weight in the bound, which the branching scores read; and, when ``warm`` is given
        (all NaN: a cold start), the best iterate's slopes and multipliers as ``warm`` takes them
        (float32; NaN slopes off the unstable neurons), else None.

        The iterations run in float32 (twice as fast, and only a choice of slopes and multipliers
        rides on them); the best iterate's bound is then computed once more in float64 and widened,
        so the bound is as sound as :meth:`form_upper`'s. (The best is picked at float32 resolution:
        callers keep the smaller of this and the untuned bound.)
        """
        n = lo.shape[0]
        if rows is None:
            start, const = dict(form.terms), form.bias
        else:
            start, const = {source: m[rows] for source, m in form.terms}, form.bias[rows]
        rows = form.out_dim if rows is None else rows.shape[1]
        single = self.tuning
        with np.errstate(over="ignore"):  # an overflow is detected below
            start32 = {source: m.astype(single) for source, m in start.items()}
            const32, lo32, hi32 = const.astype(single), lo.astype(single), hi.astype(single)
            relaxations32 = [(a.astype(single), s.astype(single), t.astype(single), kept) for a, s, t, kept in relaxations]
        if single is not np.float64 and not _all_finite([const32, lo32, hi32, *start32.values(), *(t for _, _, t, _ in relaxations32)]):
            # a value beyond float32's range (a huge box, row or offset): tune in float64 instead
            single, start32, const32, lo32, hi32, relaxations32 = np.float64, start, const, lo, hi, relaxations
        alpha, beta, signs, unstable = [], [], [], []
        for (lower_slope, _, _, kept), lower, upper, first in zip(relaxations32, lowers, uppers, self.offsets):
            lk, uk = lower[:, kept], upper[:, kept]
            unstable.append(((lk < 0) & (uk > 0))[:, None, :])
            sign = np.where((lk == 0) & (uk > 0), 1.0, np.where(uk == 0, -1.0, 0.0)).astype(single)
            signs.append(sign[:, None, :] if np.any(sign) else None)
            initial = np.repeat(lower_slope[:, None, :], rows, axis=1)
            initial_beta = np.zeros((n, rows, kept.size), dtype=single) if np.any(sign) else None
            if warm is not None and steps > 0:
                parent = warm[0][:, :, first + kept]
                initial = np.where(unstable[-1] & ~np.isnan(parent), parent, initial).astype(single)
                if initial_beta is not None:
                    initial_beta = np.where(signs[-1] != 0, warm[1][:, :, first + kept], 0.0).astype(single)
            alpha.append(initial)
            beta.append(initial_beta)
        best = np.full((n, rows), np.inf, dtype=single)
        best_alpha, best_beta = [a.copy() for a in alpha], [None if b is None else b.copy() for b in beta]
        alpha_moments = [[np.zeros_like(a), np.zeros_like(a)] for a in alpha]
        beta_moments = [None if b is None else [np.zeros_like(b), np.zeros_like(b)] for b in beta]
        # the boxes still tuned: a box whose rows are all below `enough`, or cannot get there, leaves the
        # iterations; `left` then holds the best iterate of every box (over all n), filled as they leave
        active, left, first_value = np.arange(n), None, None
        state_signs, state_unstable = list(signs), list(unstable)
        # an iterate that overflows or goes NaN in float32 is never kept (it is not below `best`), and
        # BLAS kernels have been seen to raise the invalid flag on finite data: no warning from here
        with np.errstate(invalid="ignore", over="ignore"):
            for step in range(steps + 1 if steps > 0 else 0):  # no steps: CROWN's slopes, bounded below
                multipliers = [None if b is None else b * sign for b, sign in zip(beta, state_signs)]
                met: list = []
                value, on_x, _ = self._back_substitute(start32, const32, lo32, hi32, relaxations32, alpha, multipliers, met)
                better = value < best
                np.copyto(best, value, where=better)
                if step:  # step 0's slopes and multipliers are the initial ones, already held
                    kept_better = better[:, :, None]
                    for a, b in zip(alpha, best_alpha):
                        np.copyto(b, a, where=kept_better)
                    for a, b in zip(beta, best_beta):
                        if b is not None:
                            np.copyto(b, a, where=kept_better)
                if step == steps:
                    break
                done = np.zeros(best.shape[0], dtype=bool)
                if step == 0:
                    first_value = best.copy()
                elif enough is not None:
                    done = np.all(best < enough, axis=1)
                    if step % 8 == 0:
                        # too far to go: even at the pace so far some row would not get below `enough`
                        pace = (first_value - best) / step
                        done |= np.any(best - pace * (steps - step) >= enough, axis=1)
                # drop the boxes that have finished, once they are enough to be worth gathering the others' state
                if done.any() and (done.all() or done.sum() * 8 >= done.size):
                    if left is None:  # the state arrays still cover every box: they keep the leavers' iterates
                        left = (best_alpha, best_beta)
                    else:
                        out = active[done]
                        for full, part in zip([*left[0], *left[1]], [*best_alpha, *best_beta]):
                            if full is not None:
                                full[out] = part[done]
                    if done.all():  # every box has left: `left` holds them all
                        (best_alpha, best_beta), left = left, None
                        break
                    keep = np.flatnonzero(~done)
                    active = active[keep]
                    best, first_value, enough = best[keep], first_value[keep], enough[keep]
                    best_alpha = [a[keep] for a in best_alpha]
                    best_beta = [None if b is None else b[keep] for b in best_beta]
                    met = [(source, c[keep] if c.ndim == 3 else c) for source, c in met]  # (R, kept): shared rows
                    on_x, lo32, hi32 = on_x[keep], lo32[keep], hi32[keep]
                    start32 = {source: m[keep] if m.ndim == 3 else m for source, m in start32.items()}
                    const32 = const32[keep] if const32.ndim == 2 else const32
                    relaxations32 = [(a[keep], s_[keep], t[keep], kept) for a, s_, t, kept in relaxations32]
                    alpha = [a[keep] for a in alpha]
                    beta = [None if b is None else b[keep] for b in beta]
                    alpha_moments = [[m[keep] for m in ms] for ms in alpha_moments]
                    beta_moments = [None if ms is None else [m[keep] for m in ms] for ms in beta_moments]
                    state_signs = [None if g is None else g[keep] for g in state_signs]
                    state_unstable = [u[keep] for u in state_unstable]
                for layer, gz, c in self._gradients(met, on_x, lo32, hi32, relaxations32, alpha):
                    g_alpha = np.where(state_unstable[layer], gz * np.minimum(c, 0.0), 0.0)
                    alpha[layer] = np.clip(alpha[layer] - _adam(alpha_moments[layer], g_alpha, step, rates[0]), 0.0, 1.0)
                    if beta[layer] is not None:
                        g_beta = gz * state_signs[layer]
                        beta[layer] = np.maximum(beta[layer] - _adam(beta_moments[layer], g_beta, step, rates[1]), 0.0)
        if left is not None:  # the boxes tuned to the end join those that left
            for full, part in zip([*left[0], *left[1]], [*best_alpha, *best_beta]):
                if full is not None:
                    full[active] = part
            best_alpha, best_beta = left
        # the sound bound of the best iterate, in float64 (any slopes in [0, 1] and multipliers >= 0 are sound)
        slopes = [a.astype(np.float64) for a in best_alpha]
        multipliers = [None if b is None else b.astype(np.float64) * sign for b, sign in zip(best_beta, signs)]
        met = []
        value, on_x, magnitude = self._back_substitute(start, const, lo, hi, relaxations, slopes, multipliers, met)
        weights = [np.zeros((n, rows, relax[3].size)) for relax in relaxations]
        for source, c in met:
            weights[source - 1] = c
        if warm is None:
            return self._widen(value, magnitude, True), on_x, weights, None
        best_slopes = np.full((n, rows, self.offsets[-1]), np.nan, dtype=np.float32)
        best_multipliers = np.zeros((n, rows, self.offsets[-1]), dtype=np.float32)
        for (*_, kept), first, a, b, is_unstable in zip(relaxations, self.offsets, best_alpha, best_beta, unstable):
            best_slopes[:, :, first + kept] = np.where(is_unstable, a, np.nan)
            if b is not None:
                best_multipliers[:, :, first + kept] = b
        return self._widen(value, magnitude, True), on_x, weights, (best_slopes, best_multipliers)

    def _gradients(self, met: list, on_x: np.ndarray, lo, hi, relaxations: list, slopes: list) -> list:
        """Gradients of a :meth:`_back_substitute` bound (value only) with respect to the coefficients on
        each ``z_l`` met, from its ``kept_coefficients``: ``[(layer, dB/d(coefficient on z_l) (n, R, kept),
        coefficient on h_l)]``.

        The bound is ``const + max over the box of (coefficients on x) . x``; a coefficient on ``z_l``
        reaches it through the layer's bias and through the coefficients it adds on earlier sources,
        so the gradients run forward from ``x``, each layer reading those of the sources below.
        """
        kept = [None] + [r[3] for r in relaxations]
        centre, radius = (lo + hi) * 0.5, (hi - lo) * 0.5
        on_source = {0: centre[:, None, :] + np.sign(on_x) * radius[:, None, :]}  # dB/d(coefficients on x)
        out = []
        for source, c in sorted(met, key=lambda item: item[0]):
            _, upper_slope, upper_offset, columns = relaxations[source - 1]
            terms, bias = self.layers[on_x.dtype.type][source - 1]
            gz = np.broadcast_to(bias[columns], on_x.shape[:2] + (columns.size,)).copy()
            for earlier, matrix in terms:
                rows = matrix[columns]
                rows = rows if kept[earlier] is None else rows[:, kept[earlier]]
                if earlier in on_source and rows.shape[1]:  # a layer with no kept neuron adds nothing
                    # one 2-D product: a stacked (n, R, w) @ (w, k) runs n small ones, three times slower
                    flat = on_source[earlier].reshape(-1, rows.shape[1])
                    gz += (flat @ rows.T).reshape(gz.shape)
            positive = c > 0
            on_source[source] = gz * np.where(positive, upper_slope[:, None, :], slopes[source - 1]) + np.where(positive, upper_offset[:, None, :], 0.0)
            out.append((source - 1, gz, c))
        return out

    # -------------------------------------------------- back-substitution
    def _back_substitute(self, start: dict, const: np.ndarray, lo, hi, relaxations, slopes: list | None = None,
                         multipliers: list | None = None, kept_coefficients: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper bound over each box of ``sum_s start[s] @ source_s + const``, not widened.

        ``start[s]`` has shape (R, dim_s) or (n, R, dim_s), ``const`` (R,) or (n, R).
        ``relaxations[l]`` is ``(a, s, t, kept)`` of ReLU layer l (see :func:`relaxation`).
        ``slopes[l]`` (n, R, kept), when given, replaces the lower slopes ``a`` of layer l with
        one per row (any value in [0, 1] is sound on an unstable neuron); ``multipliers[l]``
        (n, R, kept) are added to the coefficients on ``z_l``: a multiplier ``beta * sign`` with
        ``beta >= 0`` on a neuron whose ``sign * z >= 0`` holds on the box (a split) keeps the
        bound sound (Lagrangian relaxation of the split, as in beta-CROWN). With
        ``kept_coefficients`` (a list), the coefficients on each ``h_l`` met on the way down are
        appended to it as ``(l, coefficients)``, for :meth:`_gradients`.
        Returns the bound (n, R), the slope on x of the linear function it maximises
        (n, R, input_dim) and the magnitude of its terms (n, R). The arithmetic follows the dtype
        of ``const``; in float32 (the tuning iterations, never widened) the magnitude is not summed.
        """
        self.check()
        n = lo.shape[0]
        kept = [None] + [r[3] for r in relaxations]  # columns carried per source (None: all)

        def narrow(matrix: np.ndarray, source: int) -> np.ndarray:
            return matrix if kept[source] is None else matrix[..., kept[source]]

        coefficients = {source: narrow(m, source) for source, m in start.items()}
        constant = np.broadcast_to(const, (n, const.shape[-1])).copy()
        layers = self.layers[constant.dtype.type]  # float64, or float32 in the tuning iterations
        precise = constant.dtype == np.float64  # the float32 iterations are not widened: no magnitude
        magnitude = np.abs(constant)  # of every term summed into the bound, for the widening
        for source in range(max(coefficients, default=0), 0, -1):
            c = coefficients.pop(source, None)
            if c is None:
                continue
            lower_slope, upper_slope, upper_offset, columns = relaxations[source - 1]
            if kept_coefficients is not None:
                kept_coefficients.append((source, c))
            lower_slope = lower_slope[:, None, :] if slopes is None or slopes[source - 1] is None else slopes[source - 1]
            positive, negative = np.maximum(c, 0.0), np.minimum(c, 0.0)
            if positive.ndim == 2:  # rows still shared by every box (the first step)
                on_z = positive * upper_slope[:, None, :] + negative * lower_slope
                offset = upper_offset @ positive.T
            else:
                on_z = positive * upper_slope[:, None, :]
                on_z += negative * lower_slope
                offset = np.einsum("nrw,nw->nr", positive, upper_offset)
            if multipliers is not None and multipliers[source - 1] is not None:
                on_z = on_z + multipliers[source - 1]
            terms, bias = layers[source - 1]
            bias = bias[columns]
            constant += offset + on_z @ bias
            if precise:
                magnitude += offset + np.abs(on_z) @ np.abs(bias)
            rows = on_z.shape[1]
            flat = on_z.reshape(n * rows, -1)
            for earlier, matrix in terms:
                contribution = (flat @ narrow(matrix[columns], earlier)).reshape(n, rows, -1)
                if earlier in coefficients:
                    coefficients[earlier] = coefficients[earlier] + contribution
                else:
                    coefficients[earlier] = contribution
        rows = constant.shape[1]
        on_x = coefficients.get(0)
        on_x = np.zeros((n, rows, self.dim), dtype=constant.dtype) if on_x is None else np.broadcast_to(on_x, (n, rows, self.dim))
        centre, radius = (lo + hi) * 0.5, (hi - lo) * 0.5
        value = constant + np.einsum("nrd,nd->nr", on_x, centre) + np.einsum("nrd,nd->nr", np.abs(on_x), radius)
        if precise:
            magnitude += np.einsum("nrd,nd->nr", np.abs(on_x), np.maximum(np.abs(lo), np.abs(hi)))
        return value, on_x, magnitude


def padding_groups(counts: np.ndarray, least: int = 16) -> list[np.ndarray]:
    """The boxes with a positive ``counts`` (n,) (rows each needs back-substituted) in groups of equal
    count, as index arrays in ascending order of count; a group of fewer than ``least`` boxes takes in
    the next counts (a numpy call per group has its overhead).

    A batch is padded to its largest count; deep in a search that is often four times the mean
    (ACAS Xu: 17 rows against 4.0 on a last layer). Measured on ACAS Xu property 2, net 3_3: 30.1 s
    padded to the batch, 21.3 s in groups whose counts are within a factor 2, 17.0 s within 1.25,
    16.7 s equal.
    """
    order = np.argsort(counts, kind="stable")
    ordered = counts[order]
    groups, first = [], int(np.searchsorted(ordered, 1))
    while first < order.size:
        end = max(int(np.searchsorted(ordered, ordered[first], side="right")), min(order.size, first + least))
        if order.size - end < least:  # too few left for a group of their own
            end = order.size
        groups.append(order[first:end])
        first = end
    return groups


def _rows_of(group: np.ndarray, uppers: list, *relaxation_sets: list) -> list:
    """Each of ``relaxation_sets`` (per-layer relaxations of the same bounds ``uppers``) for the boxes
    ``group`` only, each layer restricted to the neurons not inactive in all of them (a narrower
    matrix for every product of the back-substitution)."""
    lives = [np.flatnonzero(np.any(upper[group][:, kept] >= 0, axis=0)) for (*_, kept), upper in zip(relaxation_sets[0], uppers)]
    return [[(a[group][:, live], s[group][:, live], t[group][:, live], kept[live]) for (a, s, t, kept), live in zip(relaxations, lives)]
            for relaxations in relaxation_sets]


def relaxation(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ReLU relaxation of one layer over each box: ``a z <= relu(z) <= s z + t``; returns ``(a, s, t, kept)``.

    ``lower``/``upper`` have shape (n, width). Unstable neurons: ``s = u / (u - l)``,
    ``t = -s l`` and CROWN's adaptive ``a`` (1 when ``u > -l``); stable active ones
    ``a = s = 1``; stable inactive ones all 0. ``kept`` lists the neurons that are not
    strictly inactive in every box; ``a``, ``s``, ``t`` are restricted to them, shape (n, kept).
    """
    kept = np.flatnonzero(np.any(upper >= 0, axis=0))  # upper == 0: a split neuron, kept for its multiplier
    lower, upper = lower[:, kept], upper[:, kept]
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    safe = np.where(unstable, upper - lower, 1.0)
    slope = np.where(unstable, upper / safe, active.astype(np.float64))
    offset = np.where(unstable, -slope * lower, 0.0)
    lower_slope = np.where(unstable, (upper > -lower).astype(np.float64), active.astype(np.float64))
    return lower_slope, slope, offset, kept


def _all_finite(arrays: list) -> bool:
    """Whether every entry of every array is finite (a cast to float32 turns values beyond its range into inf)."""
    return all(np.isfinite(a).all() for a in arrays)


def _adam(moments: list, gradient: np.ndarray, step: int, rate: float, decay=(0.9, 0.999)) -> np.ndarray:
    """One Adam step (``moments`` ``[m, v]`` updated in place); returns the change to subtract.

    The bias corrections are folded into scalars: ``rate m^ / (sqrt(v^) + eps)`` equals
    ``rate sqrt(c2) / c1 * m / (sqrt(v) + eps sqrt(c2))``, two fewer passes over the arrays.
    """
    m, v = moments
    m *= decay[0]
    m += (1 - decay[0]) * gradient
    v *= decay[1]
    v += (1 - decay[1]) * gradient * gradient
    c1, c2 = 1 - decay[0] ** (step + 1), np.sqrt(1 - decay[1] ** (step + 1))
    change = np.sqrt(v)
    change += 1e-12 * c2
    np.divide(m, change, out=change)
    change *= rate * c2 / c1
    return change


def with_lower_slope(relaxations: list, lowers: list, uppers: list, value: float) -> list:
    """The relaxations with lower slope ``value`` (in [0, 1]) on every unstable neuron."""
    out = []
    for (lower_slope, slope, offset, kept), lower, upper in zip(relaxations, lowers, uppers):
        unstable = (lower[:, kept] < 0) & (upper[:, kept] > 0)
        out.append((np.where(unstable, value, lower_slope), slope, offset, kept))
    return out


# ------------------------------------------------------------------ one box
def _check(network: Network, box: Box) -> None:
    box.check_dim(network.input_dim)


def _one_box(box: Box) -> tuple[np.ndarray, np.ndarray]:
    return box.lower[None, :].astype(np.float64), box.upper[None, :].astype(np.float64)


def interval_bounds(network: Network, box: Box) -> Bounds:
    """Interval-arithmetic bounds of every ReLU layer's pre-activation over ``box``."""
    _check(network, box)
    bounder = BatchBounder(network)
    lo, hi = _one_box(box)
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for form in network.relu_layers:
        low, high = bounder.interval(form, lo, hi, lower, upper)
        lower.append(low)
        upper.append(high)
    return Bounds(tuple(a[0] for a in lower), tuple(a[0] for a in upper), "interval")


def symbolic_bounds(network: Network, box: Box, base: Bounds | None = None) -> Bounds:
    """Back-substitution (DeepPoly/CROWN-style) bounds of every ReLU layer over ``box``.

    Each layer's bounds are intersected with ``base`` (interval bounds when None) and with an
    interval step from the layers below, before later layers use them; so the result is never
    looser than ``base``.
    """
    _check(network, box)
    lo, hi = _one_box(box)
    base = base if base is not None else interval_bounds(network, box)
    if base.widths != network.widths:
        raise BoundsError(f"base bounds have layer widths {base.widths}, the network has {network.widths}")
    known_lower = np.concatenate(base.lower)[None, :] if base.lower else np.zeros((1, 0))
    known_upper = np.concatenate(base.upper)[None, :] if base.upper else np.zeros((1, 0))
    lowers, uppers, _ = BatchBounder(network).neuron_bounds(lo, hi, known_lower, known_upper)
    return Bounds(tuple(a[0] for a in lowers), tuple(a[0] for a in uppers), "symbolic")


def bound_affine(network: Network, bounds: Bounds, box: Box, form: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Sound ``(lower, upper)`` of an affine map over the network's sources, each shape ``(form.out_dim,)``.

    ``form`` may read any source whose ReLU layer ``bounds`` covers (the output map, a
    condition's expression...); ``bounds`` may cover only the first layers of ``network``.
    """
    _check(network, box)
    needed = max(form.sources, default=0)
    if needed > bounds.layer_count:
        raise BoundsError(f"the map reads h{needed - 1} but the bounds cover only {bounds.layer_count} ReLU layers")
    if needed > len(network.relu_layers):
        raise BoundsError(f"the map reads h{needed - 1} but the network has {len(network.relu_layers)} ReLU layers")
    for source, matrix in form.terms:
        dim = network.source_dims[source]
        if matrix.shape[1] != dim:
            name = "x" if source == 0 else f"h{source - 1}"
            raise BoundsError(f"the map has {matrix.shape[1]} columns on {name}, which has {dim} values")
    if bounds.widths[:needed] != network.widths[:needed]:
        raise BoundsError(f"bounds have layer widths {bounds.widths}, the network has {network.widths}")
    lo, hi = _one_box(box)
    lowers = [a[None, :] for a in bounds.lower[:needed]]
    uppers = [a[None, :] for a in bounds.upper[:needed]]
    low, high = BatchBounder(network).form_bounds(form, lo, hi, lowers, uppers)
    return low[0], high[0]


def output_bounds(network: Network, box: Box, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Sound ``(lower, upper)`` of the network output over ``box``, each shape ``(output_dim,)``."""
    return bound_affine(network, bounds, box, network.output)
