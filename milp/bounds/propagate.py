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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milp.core.errors import InputError
from milp.core.box import Box
from milp.core.network import Affine, Network

__all__ = ["Bounds", "BoundsError", "interval_bounds", "symbolic_bounds", "bound_affine", "output_bounds"]

# Outward margin added to every computed bound, relative to the magnitudes involved.
# A bound is a long float64 dot product (hundreds of terms, and for symbolic bounds a
# chain of matrix products, one per layer); each operation may round by 2**-53, so the
# computed value can sit up to ~n * 1e-16 times the sum of the terms' magnitudes inside
# the true bound. 1e-9 of that magnitude (plus 1e-9 absolute) is many orders larger
# than the rounding, and far below anything that matters to a big-M constant.
_MARGIN = 1e-9


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


# --------------------------------------------------------------------- helpers
def _widen(lower: np.ndarray, upper: np.ndarray, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move computed bounds outward to cover float rounding (see ``_MARGIN``)."""
    lower_margin = _MARGIN * (1.0 + np.abs(lower) + magnitude)
    upper_margin = _MARGIN * (1.0 + np.abs(upper) + magnitude)
    return lower - lower_margin, upper + upper_margin


def _source_bounds(box: Box, lower, upper, source: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of source ``source``: the box for x, relu of layer ``source - 1``'s bounds otherwise."""
    if source == 0:
        return box.lower, box.upper
    return np.maximum(lower[source - 1], 0.0), np.maximum(upper[source - 1], 0.0)


def _interval_affine(form: Affine, box: Box, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of ``form`` given the bounds of the layers it reads, widened."""
    lo = form.bias.copy()
    hi = form.bias.copy()
    magnitude = np.abs(form.bias)
    for source, matrix in form.terms:
        s_lo, s_hi = _source_bounds(box, lower, upper, source)
        positive, negative = np.maximum(matrix, 0.0), np.minimum(matrix, 0.0)
        lo += positive @ s_lo + negative @ s_hi
        hi += positive @ s_hi + negative @ s_lo
        magnitude = magnitude + np.abs(matrix) @ np.maximum(np.abs(s_lo), np.abs(s_hi))
    return _widen(lo, hi, magnitude)


def _relaxation(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slopes and offset of the ReLU relaxation of one layer, each shape ``(width,)``.

    ``lower_slope * z <= relu(z) <= upper_slope * z + upper_offset`` for ``lower <= z <= upper``.
    """
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    upper_slope = active.astype(np.float64)
    upper_offset = np.zeros_like(lower)
    lower_slope = active.astype(np.float64)
    if np.any(unstable):
        l, u = lower[unstable], upper[unstable]
        slope = u / (u - l)
        upper_slope[unstable] = slope
        upper_offset[unstable] = -slope * l
        # CROWN's adaptive choice: the lower line of smaller area between the triangle's sides.
        lower_slope[unstable] = (u > -l).astype(np.float64)
    return lower_slope, upper_slope, upper_offset


def _back_substitute_upper(network: Network, box: Box, lower, upper, form: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound of each row of ``form`` by back-substitution, and the magnitude of its terms.

    ``lower``/``upper`` are the bounds of every ReLU layer ``form`` reads (directly or
    through earlier layers). Coefficients on each source are accumulated as dense matrices
    of shape ``(rows, dim(source))`` and eliminated from the highest source down to x.
    """
    coefficients: dict[int, np.ndarray] = {source: np.array(matrix) for source, matrix in form.terms}
    constant = form.bias.copy()
    magnitude = np.abs(form.bias)
    for source in range(max(coefficients, default=0), 0, -1):
        c = coefficients.pop(source, None)
        if c is None:
            continue
        layer = source - 1
        lower_slope, upper_slope, upper_offset = _relaxation(lower[layer], upper[layer])
        positive, negative = np.maximum(c, 0.0), np.minimum(c, 0.0)
        # upper bound: positive coefficients take the upper line, negative ones the lower line
        on_z = positive * upper_slope + negative * lower_slope
        offset = positive @ upper_offset
        constant += offset
        magnitude = magnitude + np.abs(offset)
        keep = np.flatnonzero(np.any(on_z != 0.0, axis=0))  # stable inactive neurons drop out
        if keep.size == 0:
            continue
        on_z = on_z[:, keep]
        pre = network.relu_layers[layer]
        shift = on_z @ pre.bias[keep]
        constant += shift
        magnitude = magnitude + np.abs(on_z) @ np.abs(pre.bias[keep])
        for earlier, matrix in pre.terms:
            contribution = on_z @ matrix[keep]
            if earlier in coefficients:
                coefficients[earlier] += contribution
            else:
                coefficients[earlier] = contribution
    value = constant.copy()
    on_x = coefficients.get(0)
    if on_x is not None:
        value += np.maximum(on_x, 0.0) @ box.upper + np.minimum(on_x, 0.0) @ box.lower
        magnitude = magnitude + np.abs(on_x) @ np.maximum(np.abs(box.lower), np.abs(box.upper))
    return value, magnitude


def _affine_bounds(network: Network, box: Box, lower, upper, form: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of ``form``: back-substitution intersected with one interval step, shapes ``(rows,)``."""
    rows = form.out_dim
    # lower bound of f = - upper bound of -f: stack both so one pass computes the two sides
    stacked = Affine(tuple((s, np.vstack([m, -m])) for s, m in form.terms), np.concatenate([form.bias, -form.bias]))
    value, magnitude = _back_substitute_upper(network, box, lower, upper, stacked)
    symbolic_lo, symbolic_hi = _widen(-value[rows:], value[:rows], np.maximum(magnitude[:rows], magnitude[rows:]))
    interval_lo, interval_hi = _interval_affine(form, box, lower, upper)
    return np.maximum(symbolic_lo, interval_lo), np.minimum(symbolic_hi, interval_hi)


def _check(network: Network, box: Box) -> None:
    box.check_dim(network.input_dim)


# ------------------------------------------------------------------ public API
def interval_bounds(network: Network, box: Box) -> Bounds:
    """Interval-arithmetic bounds of every ReLU layer's pre-activation over ``box``."""
    _check(network, box)
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for form in network.relu_layers:
        lo, hi = _interval_affine(form, box, lower, upper)
        lower.append(lo)
        upper.append(hi)
    return Bounds(tuple(lower), tuple(upper), "interval")


def symbolic_bounds(network: Network, box: Box, base: Bounds | None = None) -> Bounds:
    """Back-substitution (DeepPoly/CROWN-style) bounds of every ReLU layer over ``box``.

    Each layer's bounds are intersected with ``base`` (interval bounds when None) and with
    an interval step from the layers below, before later layers use them; so the result
    is never looser than ``base``.
    """
    _check(network, box)
    base = base if base is not None else interval_bounds(network, box)
    if base.widths != network.widths:
        raise BoundsError(f"base bounds have layer widths {base.widths}, the network has {network.widths}")
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for layer, form in enumerate(network.relu_layers):
        lo, hi = _affine_bounds(network, box, lower, upper, form)
        lower.append(np.maximum(lo, base.lower[layer]))
        upper.append(np.minimum(hi, base.upper[layer]))
    return Bounds(tuple(lower), tuple(upper), "symbolic")


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
    return _affine_bounds(network, box, bounds.lower, bounds.upper, form)


def output_bounds(network: Network, box: Box, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Sound ``(lower, upper)`` of the network output over ``box``, each shape ``(output_dim,)``."""
    return bound_affine(network, bounds, box, network.output)
