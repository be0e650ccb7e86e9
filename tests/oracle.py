"""Independent brute-force truth about tiny ReLU networks, for the tests.

This module shares no code with the engine: from a :class:`milp.core.network.Network` it reads
only the raw weights (``input_dim``, ``relu_layers[l].terms`` / ``.bias``,
``output.terms`` / ``.bias``) and solves its own LPs with ``scipy.optimize.linprog``
(HiGHS). It is slow on purpose and meant for networks of up to ~20 neurons.

Definitions (the engine is held to the same ones):

* A *pattern* is a 0/1 string with one character per ReLU neuron, over all ReLU layers in
  evaluation order; ``'1'`` means active (``z > 0``), ``'0'`` inactive (``z <= 0``).
* Fixing a pattern makes every value affine in x: source 0 is ``x``, source ``l + 1`` is
  ``h_l = D_l z_l`` with ``D_l = diag(pattern of layer l)``, ``z_l = A_l x + c_l`` and the
  output ``y = C x + d``.
* The region of a pattern is ``{x in box : the network has this pattern at x, and every
  condition holds}``. It *counts* when it has a non-empty interior: its Chebyshev ball has a
  radius above ``tol * max(1, widest box side)`` (Euclidean, in x). Inputs fixed by the box
  (``lower == upper``) are substituted first, and interiors are taken in the remaining
  inputs. For a row that varies with x, ``>`` and ``>=`` have the same interior; a row that
  is constant over a region (its x-coefficients are all exactly 0 in float64) is decided
  exactly: ``'1'`` needs a positive constant, ``'0'`` a non-positive one, a strict condition a
  positive one, a non-strict one a non-negative one. Like the float64 forward pass, the maps
  in x are computed in float64 and rounding noise is taken at face value.

Conditions are given either as objects with ``.expression`` (a one-row form with ``.terms``
and ``.bias`` over sources, like :class:`milp.core.conditions.Condition`) and ``.strict``, or as
``(form, strict)`` pairs; the condition is ``form >= 0``, or ``form > 0`` when strict.

Limits: regions thinner than the tolerance are not listed, so :func:`exact_max` and
:func:`reachable` may miss a sliver narrower than ``tol`` (a value error of about
``tol`` times the form's Lipschitz constant).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import linprog

__all__ = [
    "OracleError",
    "affine_maps",
    "patterns",
    "form_values",
    "enumerate_regions",
    "enumerate_regions_exhaustive",
    "exact_max",
    "exact_output_range",
    "reachable",
    "sample_check",
]

DEFAULT_TOL = 1e-7
# reachable(): the conditions' largest common slack must exceed this (strict), or -this (non-strict).
STRICT_SLACK = 1e-9
# Tight HiGHS tolerances: the LP radii are compared with tol = 1e-7.
_LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
EXHAUSTIVE_LIMIT = 12


class OracleError(ValueError):
    """Invalid input to the oracle, or an LP that HiGHS could not solve cleanly."""


# --------------------------------------------------------------------- affine maps in x
@dataclass(frozen=True)
class _Map:
    """``value = matrix @ x + offset``; ``matrix`` (k, input_dim), ``offset`` (k,)."""

    matrix: np.ndarray
    offset: np.ndarray

    def masked(self, mask: np.ndarray) -> "_Map":
        keep = np.asarray(mask, dtype=np.float64)
        return _Map(self.matrix * keep[:, None], self.offset * keep)

    def row(self, index: int) -> "_Map":
        return _Map(self.matrix[index : index + 1], self.offset[index : index + 1])


def _input_map(n: int) -> _Map:
    return _Map(np.eye(n), np.zeros(n))


def _apply(terms, bias, maps: Sequence[_Map], what: str) -> _Map:
    """Compose ``sum_s W_s source_s + bias`` with the sources' maps in x."""
    offset = np.array(bias, dtype=np.float64).reshape(-1)
    matrix = np.zeros((offset.size, maps[0].matrix.shape[1]))
    for source, weight in terms:
        if not 0 <= int(source) < len(maps):
            raise OracleError(f"{what} reads source {source}, which is not computed before it")
        weight = np.asarray(weight, dtype=np.float64)
        source_map = maps[int(source)]
        if weight.shape != (offset.size, source_map.matrix.shape[0]):
            raise OracleError(f"{what}: weight on source {source} has shape {weight.shape}, expected {(offset.size, source_map.matrix.shape[0])}")
        matrix += weight @ source_map.matrix
        offset += weight @ source_map.offset
    return _Map(matrix, offset)


def _layer_slices(network) -> list[slice]:
    slices, start = [], 0
    for layer in network.relu_layers:
        width = np.asarray(layer.bias).reshape(-1).size
        slices.append(slice(start, start + width))
        start += width
    return slices


def _neuron_count(network) -> int:
    return sum(np.asarray(layer.bias).reshape(-1).size for layer in network.relu_layers)


def _bits(network, pattern) -> np.ndarray:
    """A pattern (``'0110'``, or a sequence of 0/1 or bools) as a bool array, validated."""
    count = _neuron_count(network)
    if isinstance(pattern, str):
        if set(pattern) - {"0", "1"}:
            raise OracleError(f"pattern {pattern!r} may hold only '0' and '1'")
        bits = np.array([c == "1" for c in pattern], dtype=bool)
    else:
        values = np.asarray(pattern).reshape(-1)
        if values.size and not np.all((values == 0) | (values == 1)):
            raise OracleError("pattern entries must be 0/1 or booleans")
        bits = values.astype(bool)
    if bits.size != count:
        raise OracleError(f"pattern has {bits.size} entries but the network has {count} ReLU neurons")
    return bits


def _text(bits) -> str:
    return "".join("1" if b else "0" for b in bits)


def _source_maps(network, bits: np.ndarray) -> tuple[list[_Map], list[_Map]]:
    """Maps in x of every source (x, h_0, h_1, ...) and every pre-activation, for one pattern."""
    maps = [_input_map(int(network.input_dim))]
    pre = []
    for index, (layer, where) in enumerate(zip(network.relu_layers, _layer_slices(network))):
        z = _apply(layer.terms, layer.bias, maps, f"ReLU layer {index}")
        pre.append(z)
        maps.append(z.masked(bits[where]))
    return maps, pre


def affine_maps(network, pattern) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """The network with ``pattern`` fixed: ``([(A_l, c_l) per ReLU layer], (C, d))``.

    ``z_l = A_l @ x + c_l`` with ``A_l`` of shape ``(width_l, input_dim)``; the output is
    ``y = C @ x + d`` with ``C`` of shape ``(output_dim, input_dim)``.
    """
    maps, pre = _source_maps(network, _bits(network, pattern))
    out = _apply(network.output.terms, network.output.bias, maps, "the output")
    return [(z.matrix, z.offset) for z in pre], (out.matrix, out.offset)


def _form_map(form, maps: Sequence[_Map]) -> _Map:
    bias = np.asarray(form.bias, dtype=np.float64).reshape(-1)
    if bias.size != 1:
        raise OracleError(f"a form must have one row, this one has {bias.size}")
    return _apply(form.terms, bias, maps, "a form")


# ---------------------------------------------------------------- own forward pass
def _forward(network, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sources ``[x, h_0, ...]`` and pre-activations ``[z_0, ...]`` on a batch (n, input_dim)."""
    sources, pre = [x], []
    for layer in network.relu_layers:
        z = _evaluate(layer.terms, layer.bias, sources)
        pre.append(z)
        sources.append(np.maximum(z, 0.0))
    return sources, pre


def _evaluate(terms, bias, sources) -> np.ndarray:
    out = np.tile(np.asarray(bias, dtype=np.float64).reshape(-1), (sources[0].shape[0], 1))
    for source, weight in terms:
        out += sources[int(source)] @ np.asarray(weight, dtype=np.float64).T
    return out


def _batch(network, x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if x.shape[1] != int(network.input_dim):
        raise OracleError(f"inputs have {x.shape[1]} values, the network takes {network.input_dim}")
    return x


def patterns(network, x) -> list[str]:
    """The activation pattern at each input of a batch ``x`` (n, input_dim), by a plain forward pass."""
    _, pre = _forward(network, _batch(network, x))
    if not pre:
        return [""] * np.atleast_2d(x).shape[0]
    active = np.concatenate([z > 0 for z in pre], axis=1)
    return [_text(row) for row in active]


def form_values(network, form, x) -> np.ndarray:
    """A one-row form over sources at each input of a batch ``x`` (n, input_dim): shape (n,)."""
    sources, _ = _forward(network, _batch(network, x))
    return _evaluate(form.terms, form.bias, sources)[:, 0]


def _condition_parts(conditions) -> list[tuple[object, bool]]:
    parts = []
    for condition in conditions:
        if hasattr(condition, "expression"):
            parts.append((condition.expression, bool(condition.strict)))
        elif isinstance(condition, tuple) and len(condition) == 2:
            parts.append((condition[0], bool(condition[1])))
        else:
            raise OracleError(f"a condition must have .expression and .strict, or be a (form, strict) pair; got {condition!r}")
    return parts


def _holds(network, parts, x: np.ndarray) -> np.ndarray:
    ok = np.ones(x.shape[0], dtype=bool)
    for form, strict in parts:
        value = form_values(network, form, x)
        ok &= value > 0 if strict else value >= 0
    return ok


# -------------------------------------------------------------------- box and rows
@dataclass(frozen=True)
class _Box:
    """The input box; ``free`` marks inputs with ``lower < upper`` (the others are substituted)."""

    lower: np.ndarray
    upper: np.ndarray
    free: np.ndarray
    radius_tol: float

    @property
    def free_lower(self) -> np.ndarray:
        return self.lower[self.free]

    @property
    def free_upper(self) -> np.ndarray:
        return self.upper[self.free]

    def full(self, point: np.ndarray) -> np.ndarray:
        x = self.lower.copy()
        x[self.free] = point
        return x

    def centre(self) -> tuple[np.ndarray, float]:
        lo, hi = self.free_lower, self.free_upper
        radius = float(np.min(hi - lo) / 2) if lo.size else math.inf
        return (lo + hi) / 2, radius


def _box(network, lower, upper, tol: float) -> _Box:
    lower = np.asarray(lower, dtype=np.float64).reshape(-1)
    upper = np.asarray(upper, dtype=np.float64).reshape(-1)
    n = int(network.input_dim)
    if lower.size != n or upper.size != n:
        raise OracleError(f"box has {lower.size} lower and {upper.size} upper bounds for {n} inputs")
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise OracleError("box bounds must be finite")
    if np.any(lower > upper):
        i = int(np.flatnonzero(lower > upper)[0])
        raise OracleError(f"box is inverted for input {i}: {lower[i]:g} > {upper[i]:g}")
    if not (tol > 0 and math.isfinite(tol)):
        raise OracleError(f"tol must be a positive number, got {tol}")
    return _Box(lower, upper, upper > lower, float(tol) * max(1.0, float(np.max(upper - lower))))


@dataclass(frozen=True)
class _Row:
    """``a @ x_free + b >= 0`` (``> 0`` when ``open``); ``a`` of shape (free inputs,)."""

    a: np.ndarray
    b: float
    open: bool

    @property
    def constant(self) -> bool:
        return not np.any(self.a)

    def constant_holds(self) -> bool:
        return self.b > 0 if self.open else self.b >= 0


def _row(box: _Box, value: _Map, sign: float, open_: bool) -> _Row:
    """``sign * value >= 0`` (``> 0`` when ``open_``) in the free inputs, fixed inputs substituted."""
    fixed = ~box.free
    b = float(value.offset[0] + value.matrix[0, fixed] @ box.lower[fixed])
    return _Row(sign * value.matrix[0, box.free], sign * b, open_)


def _check(status: int, message: str, what: str) -> None:
    if status != 0:
        raise OracleError(f"HiGHS could not solve the {what} LP: {message}")


def _chebyshev(box: _Box, rows: Sequence[_Row]) -> tuple[np.ndarray, float]:
    """Centre (free inputs) and radius of the largest ball in the box and the rows' half-spaces.

    Constant rows are skipped: the caller decides them. The radius is re-measured at the
    LP's centre, so it is a certificate, not the LP's claim.
    """
    lo, hi = box.free_lower, box.free_upper
    d = lo.size
    if d == 0:
        return np.zeros(0), math.inf
    rows = [r for r in rows if not r.constant]
    A = np.array([r.a for r in rows]).reshape(len(rows), d)
    norms = np.linalg.norm(A, axis=1)
    A = A / norms[:, None]
    b = np.array([r.b for r in rows]).reshape(-1) / norms
    eye = np.eye(d)
    # variables (x, r): -A x + r <= b;  lo + r <= x <= hi - r
    A_ub = np.vstack([np.hstack([-A, np.ones((len(rows), 1))]), np.hstack([-eye, np.ones((d, 1))]), np.hstack([eye, np.ones((d, 1))])])
    b_ub = np.concatenate([b, -lo, hi])
    cost = np.zeros(d + 1)
    cost[-1] = -1.0
    bounds = [*zip(lo, hi), (None, float(np.max(hi - lo)))]
    result = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", options=_LP_OPTIONS)
    _check(result.status, result.message, "Chebyshev")
    centre = np.clip(result.x[:d], lo, hi)
    radius = float(min(np.min(centre - lo), np.min(hi - centre), np.min(A @ centre + b, initial=math.inf)))
    if -result.fun > box.radius_tol * 2 and radius <= box.radius_tol:
        raise OracleError(f"Chebyshev LP claims radius {-result.fun:g} but its centre has {radius:g}")
    return centre, radius


# ----------------------------------------------------------------------- enumeration
def _condition_rows(box: _Box, parts, maps: Sequence[_Map]) -> list[_Row]:
    return [_row(box, _form_map(form, maps), 1.0, strict) for form, strict in parts]


def _neuron_row(box: _Box, z: _Map, index: int, active: bool) -> _Row:
    # '1' is z > 0 (open), '0' is -z >= 0 (closed)
    return _row(box, z.row(index), 1.0 if active else -1.0, active)


def enumerate_regions(network, lower, upper, conditions=(), tol: float = DEFAULT_TOL) -> dict[str, np.ndarray]:
    """Every pattern whose region (with ``conditions``) has a non-empty interior, with an interior point.

    Splits neuron by neuron in evaluation order; a prefix whose polytope has no ball of radius
    above the tolerance is pruned (its children are subsets). Conditions are added at the
    leaves. Returns ``{pattern: x}`` sorted by pattern, ``x`` of shape (input_dim,) at distance
    above the tolerance from every face of its region.
    """
    box = _box(network, lower, upper, tol)
    parts = _condition_parts(conditions)
    slices = _layer_slices(network)
    layer_of = [index for index, where in enumerate(slices) for _ in range(where.stop - where.start)]
    count = len(layer_of)
    found: dict[str, np.ndarray] = {}

    def extend(rows, ball, row):
        """The child node after adding ``row``, or None when its interior is too thin."""
        if row.constant:
            return (rows, ball) if row.constant_holds() else None
        rows = rows + [row]
        centre, radius = ball
        # The parent's ball, shrunk to the new half-space, still certifies the child when big enough.
        margin = (row.a @ centre + row.b) / np.linalg.norm(row.a)
        if min(radius, margin) > box.radius_tol:
            return rows, (centre, min(radius, margin))
        centre, radius = _chebyshev(box, rows)
        return (rows, (centre, radius)) if radius > box.radius_tol else None

    def descend(bits, maps, z, rows, ball):
        k = len(bits)
        if k == count:
            node = (rows, ball)
            for row in _condition_rows(box, parts, maps):
                node = extend(*node, row)
                if node is None:
                    return
            found[_text(bits)] = box.full(node[1][0])
            return
        layer = layer_of[k]
        where = slices[layer]
        if k == where.start:
            z = _apply(network.relu_layers[layer].terms, network.relu_layers[layer].bias, maps, f"ReLU layer {layer}")
        for active in (True, False):
            child = extend(rows, ball, _neuron_row(box, z, k - where.start, active))
            if child is None:
                continue
            child_bits = bits + [active]
            child_maps = maps + [z.masked(np.array(child_bits[where]))] if k + 1 == where.stop else maps
            descend(child_bits, child_maps, z, *child)

    centre, radius = box.centre()
    if radius > box.radius_tol:
        descend([], [_input_map(int(network.input_dim))], None, [], (centre, radius))
    return dict(sorted(found.items()))


def _region_rows(network, box: _Box, bits: np.ndarray, parts) -> tuple[list[_Row], list[_Map]]:
    """Every row of a pattern's region (neurons, then conditions) and the sources' maps."""
    maps, pre = _source_maps(network, bits)
    rows = []
    for z, where in zip(pre, _layer_slices(network)):
        rows += [_neuron_row(box, z, i, bool(bits[where][i])) for i in range(where.stop - where.start)]
    return rows + _condition_rows(box, parts, maps), maps


def enumerate_regions_exhaustive(network, lower, upper, conditions=(), tol: float = DEFAULT_TOL) -> dict[str, np.ndarray]:
    """Like :func:`enumerate_regions`, by one Chebyshev LP for each of the 2^N patterns (N <= 12)."""
    count = _neuron_count(network)
    if count > EXHAUSTIVE_LIMIT:
        raise OracleError(f"exhaustive enumeration is for at most {EXHAUSTIVE_LIMIT} neurons, the network has {count}")
    box = _box(network, lower, upper, tol)
    parts = _condition_parts(conditions)
    found = {}
    for bits in itertools.product((False, True), repeat=count):
        rows, _ = _region_rows(network, box, np.array(bits, dtype=bool), parts)
        if not all(r.constant_holds() for r in rows if r.constant):
            continue
        centre, radius = _chebyshev(box, rows)
        if radius > box.radius_tol:
            found[_text(bits)] = box.full(centre)
    return dict(sorted(found.items()))


# --------------------------------------------------------------------------- maxima
def _closed_lp(box: _Box, rows: Sequence[_Row], objective: np.ndarray, slack: np.ndarray | None = None):
    """Maximise ``objective @ v`` over a region's closure; ``v`` is the free inputs.

    With ``slack`` (one 0/1 entry per row), ``v`` ends with a variable ``t <= 1`` and row ``i``
    reads ``a @ x + b >= slack[i] * t``. Returns scipy's result.
    """
    d = int(box.free.sum())
    A = np.array([r.a for r in rows]).reshape(len(rows), d)
    b = np.array([r.b for r in rows])
    bounds = list(zip(box.free_lower, box.free_upper))
    if slack is not None:
        A = np.hstack([A, -np.asarray(slack, dtype=np.float64).reshape(-1, 1)])
        bounds.append((None, 1.0))
    if not rows:
        return linprog(-objective, bounds=bounds, method="highs", options=_LP_OPTIONS)
    return linprog(-objective, A_ub=-A, b_ub=b, bounds=bounds, method="highs", options=_LP_OPTIONS)


def _extreme(box: _Box, rows: Sequence[_Row], value: _Row, start: np.ndarray) -> tuple[float, np.ndarray]:
    """Max of ``value`` (a row in the free inputs) over a region's closure, and where."""
    if value.constant:
        return value.b, start
    result = _closed_lp(box, rows, value.a)
    _check(result.status, result.message, "region maximum")
    point = np.clip(result.x, box.free_lower, box.free_upper)
    return float(value.a @ point + value.b), point


def exact_max(network, lower, upper, form, conditions=(), tol: float = DEFAULT_TOL) -> tuple[float, np.ndarray | None]:
    """The maximum of a one-row form over sources on the box where ``conditions`` hold.

    The maximum over every region (:func:`enumerate_regions` with the conditions) of the LP
    maximum of the form's local affine map over the region's closure. Returns
    ``(value, argmax (input_dim,))``, or ``(-inf, None)`` when no region has an interior.
    """
    box = _box(network, lower, upper, tol)
    parts = _condition_parts(conditions)
    best, where = -math.inf, None
    for pattern, point in enumerate_regions(network, lower, upper, conditions, tol).items():
        rows, maps = _region_rows(network, box, _bits(network, pattern), parts)
        value, argmax = _extreme(box, rows, _row(box, _form_map(form, maps), 1.0, False), point[box.free])
        if value > best:
            best, where = value, box.full(argmax)
    return best, where


def exact_output_range(network, lower, upper, tol: float = DEFAULT_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimum and maximum of every output over the box: two arrays of shape (output_dim,)."""
    box = _box(network, lower, upper, tol)
    outputs = np.asarray(network.output.bias).reshape(-1).size
    mins, maxs = np.full(outputs, math.inf), np.full(outputs, -math.inf)
    for pattern, point in enumerate_regions(network, lower, upper, (), tol).items():
        rows, maps = _region_rows(network, box, _bits(network, pattern), [])
        out = _apply(network.output.terms, network.output.bias, maps, "the output")
        for j in range(outputs):
            high, _ = _extreme(box, rows, _row(box, out.row(j), 1.0, False), point[box.free])
            low, _ = _extreme(box, rows, _row(box, out.row(j), -1.0, False), point[box.free])
            maxs[j], mins[j] = max(maxs[j], high), min(mins[j], -low)
    return mins, maxs


def reachable(network, lower, upper, conditions, tol: float = DEFAULT_TOL) -> bool:
    """Whether some x in the box satisfies every condition (lower-dimensional sets count).

    In each region's closure (regions of the whole box), maximise ``t <= 1`` subject to
    ``form >= t`` for every strict condition and ``form >= 0`` for the others (``form >= t``
    for all when none is strict). Reachable iff some region gives ``t > 1e-9`` (with strict
    conditions) or ``t >= -1e-9`` (without).
    """
    box = _box(network, lower, upper, tol)
    parts = _condition_parts(conditions)
    any_strict = any(strict for _, strict in parts)
    d = int(box.free.sum())
    objective = np.zeros(d + 1)
    objective[-1] = 1.0
    for pattern in enumerate_regions(network, lower, upper, (), tol):
        region, maps = _region_rows(network, box, _bits(network, pattern), [])
        conditions_rows = _condition_rows(box, parts, maps)
        # t enters the strict conditions' rows (every condition's when none is strict), never the region's.
        slack = [0.0] * len(region) + [1.0 if (strict or not any_strict) else 0.0 for _, strict in parts]
        result = _closed_lp(box, region + conditions_rows, objective, slack)
        if result.status == 2:  # the non-strict conditions exclude this region's closure
            continue
        _check(result.status, result.message, "reachability")
        t = -result.fun
        if (t > STRICT_SLACK) if any_strict else (t >= -STRICT_SLACK):
            return True
    return False


# ------------------------------------------------------------------------- sampling
def _pattern_key(region) -> str:
    if isinstance(region, str):
        return region
    if hasattr(region, "pattern"):
        region = region.pattern
    if isinstance(region, str):
        return region
    return _text(np.asarray(region).reshape(-1).astype(bool))


def sample_check(network, lower, upper, regions: Iterable, conditions=(), n: int = 20000, seed: int = 0) -> float:
    """Fraction of ``n`` uniform samples of the box satisfying ``conditions`` whose pattern is listed exactly once.

    ``regions`` holds patterns (strings, 0/1 sequences, or objects with a ``.pattern``).
    Patterns come from this module's own forward pass. Returns NaN when no sample satisfies
    the conditions (so that a test expecting 1.0 fails instead of passing vacuously).
    """
    box = _box(network, lower, upper, DEFAULT_TOL)
    listed: dict[str, int] = {}
    for region in regions:
        key = _pattern_key(region)
        listed[key] = listed.get(key, 0) + 1
    rng = np.random.default_rng(seed)
    x = box.lower + rng.random((int(n), box.lower.size)) * (box.upper - box.lower)
    x = x[_holds(network, _condition_parts(conditions), x)]
    if not len(x):
        return math.nan
    return float(np.mean([listed.get(p, 0) == 1 for p in patterns(network, x)]))
