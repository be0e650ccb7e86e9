"""Activation patterns: with a pattern fixed, a ReLU network is affine in its input.

A *pattern* holds one ``'0'``/``'1'`` per ReLU neuron (every ReLU layer in evaluation
order, an output ReLU and stable neurons included); ``'1'`` means active, ``z > 0``.
Fixing it gives ``z_l = A_l x + c_l`` for each ReLU layer and ``y = C x + d``
(:func:`local_affine_maps`), and the pattern's closed set in the box is ``{x : A x <= b}``
(:func:`pattern_constraints`). A coefficient counts as cancelled (exactly 0) when it is
below ``1e-12`` times the sum of the magnitudes it was computed from, so ``h - h`` in a
residual network is exactly zero, not rounding noise.

This is the step between the network and its polytopes: queries use it to polish a
solver's point on its linear piece, :mod:`milp.enumeration.geometry` to build regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from milp.core.errors import InputError
from milp.core.box import Box
from milp.core.conditions import parse_conditions
from milp.core.network import Affine, Network

__all__ = [
    "PatternError", "LocalMaps", "local_affine_maps", "local_form", "pattern_constraints", "pattern_bits", "pattern_text",
    "compose_in_x", "source_maps", "input_gradients", "gradient_at", "CANCELLATION",
]

# A coefficient below this fraction of the magnitudes summed into it is rounding noise.
CANCELLATION = 1e-12


class PatternError(InputError):
    """A pattern that does not fit the network (wrong length or characters)."""


# ------------------------------------------------------------------ local affine maps
@dataclass(frozen=True)
class LocalMaps:
    """The network with a pattern fixed: ``z_l = A_l x + c_l`` and ``y = C x + d``.

    ``layers[l] = (A_l (width_l, input_dim), c_l (width_l,))``; ``output = (C (output_dim, input_dim), d (output_dim,))``.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    output: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Map:
    """``value = matrix @ x + offset`` (k, d) and (k,), with the magnitude sums each entry came from."""

    matrix: np.ndarray
    offset: np.ndarray
    matrix_scale: np.ndarray
    offset_scale: np.ndarray

    def masked(self, keep: np.ndarray) -> "_Map":
        k = keep.astype(np.float64)
        return _Map(self.matrix * k[:, None], self.offset * k, self.matrix_scale * k[:, None], self.offset_scale * k)


def compose_in_x(affine: Affine, maps: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``sum_s W_s (M_s x + m_s) + bias`` as ``(G (out_dim, d), g (out_dim,))``, where ``maps[s] = (M_s, m_s)``
    writes source ``s`` in x. The one composition every local affine map is built from."""
    d = maps[0][0].shape[1]
    G, g = np.zeros((affine.out_dim, d)), affine.bias.copy()
    for source, weight in affine.terms:
        if source >= len(maps):
            raise PatternError(f"a map reads source {source}, but only {len(maps)} sources are computed before it")
        M, m = maps[source]
        G += weight @ M
        g += weight @ m
    return G, g


def source_maps(network: Network, layer_patterns: Sequence[np.ndarray], dim: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(M_s, m_s)`` of each source in x for the fixed patterns (bool (width,)) of the first layers.

    Source 0 is ``x`` itself (``M = I``); source ``l + 1`` is ``diag(pattern_l) (G_l x + g_l)``.
    """
    maps = [(np.eye(dim), np.zeros(dim))]
    for layer, pattern in enumerate(layer_patterns):
        G, g = compose_in_x(network.relu_layers[layer], maps)
        maps.append((G * pattern[:, None], g * pattern))
    return maps


def _compose(affine: Affine, maps: Sequence[_Map]) -> _Map:
    """:func:`compose_in_x` with the magnitudes each entry came from; cancelled entries become exactly 0."""
    matrix, offset = compose_in_x(affine, [(m.matrix, m.offset) for m in maps])
    magnitudes = Affine(tuple((s, np.abs(w)) for s, w in affine.terms), np.abs(affine.bias))
    matrix_scale, offset_scale = compose_in_x(magnitudes, [(m.matrix_scale, m.offset_scale) for m in maps])
    matrix[np.abs(matrix) <= CANCELLATION * matrix_scale] = 0.0
    offset[np.abs(offset) <= CANCELLATION * offset_scale] = 0.0
    return _Map(matrix, offset, matrix_scale, offset_scale)


def input_gradients(network: Network, form: Affine, masks: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """``d (weights[n] . form) / dx`` at ``n`` points with activation masks ``masks[l]`` (n, width_l):
    the slope of each point's local affine map, by one backward pass for the whole batch, shape (n, d).

    ``weights`` has shape (n, form.out_dim) (one weighting of the form's rows per point).
    """
    grads: dict[int, np.ndarray] = {}

    def add(source: int, value: np.ndarray) -> None:
        grads[source] = grads[source] + value if source in grads else value

    for source, matrix in form.terms:
        add(source, weights @ matrix)
    for layer in range(len(network.relu_layers) - 1, -1, -1):
        g = grads.pop(layer + 1, None)
        if g is None:
            continue
        g = g * masks[layer]
        for source, matrix in network.relu_layers[layer].terms:
            add(source, g @ matrix)
    return grads.get(0, np.zeros((weights.shape[0], network.input_dim)))


def pattern_bits(network: Network, pattern) -> np.ndarray:
    """A pattern (``'0110'`` or a sequence of bools / 0-1 values) as a validated bool array."""
    count = network.neuron_count
    if isinstance(pattern, str):
        if set(pattern) - {"0", "1"}:
            raise PatternError(f"pattern {pattern!r} may hold only '0' and '1'")
        bits = np.array([c == "1" for c in pattern], dtype=bool)
    else:
        values = np.asarray(pattern).reshape(-1)
        if values.dtype != bool and values.size and not np.all((values == 0) | (values == 1)):
            raise PatternError("pattern entries must be booleans or 0/1")
        bits = values.astype(bool)
    if bits.size != count:
        raise PatternError(f"pattern has {bits.size} entries but the network has {count} ReLU neurons")
    return bits


def pattern_text(bits: np.ndarray) -> str:
    """Bools (or 0/1) as a ``'0'``/``'1'`` string."""
    return (np.asarray(bits, dtype=bool).view(np.uint8) + ord("0")).tobytes().decode("ascii")


def _source_maps(network: Network, bits: np.ndarray) -> tuple[list[_Map], list[_Map]]:
    """Maps in x of every source (x, h_0, h_1, ...) and of every pre-activation, for one pattern."""
    d = network.input_dim
    sources = [_Map(np.eye(d), np.zeros(d), np.eye(d), np.zeros(d))]
    pre = []
    offsets = network.neuron_offsets()
    for layer, affine in enumerate(network.relu_layers):
        z = _compose(affine, sources)
        pre.append(z)
        sources.append(z.masked(bits[offsets[layer] : offsets[layer + 1]]))
    return sources, pre


def local_affine_maps(network: Network, pattern) -> LocalMaps:
    """Every pre-activation and the output as affine maps in x, with ``pattern`` (str or bools) fixed."""
    sources, pre = _source_maps(network, pattern_bits(network, pattern))
    out = _compose(network.output, sources)
    return LocalMaps(tuple((z.matrix, z.offset) for z in pre), (out.matrix, out.offset))


def gradient_at(network: Network, form: Affine, x: np.ndarray) -> np.ndarray:
    """The gradient (d,) of a one-row form at ``x`` (the slope of its local affine map there)."""
    masks = network.forward(np.asarray(x, dtype=np.float64)[None, :]).masks()
    return input_gradients(network, form, masks, np.ones((1, 1)))[0]


def local_form(network: Network, pattern, expression: Affine) -> tuple[np.ndarray, np.ndarray]:
    """An affine map over sources (e.g. a condition's expression) as ``(G (out_dim, d), g (out_dim,))`` in x."""
    sources, _ = _source_maps(network, pattern_bits(network, pattern))
    form = _compose(expression, sources)
    return form.matrix, form.offset


# ------------------------------------------------------------------ rows of a region
def _empty_rows(d: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((1, d)), np.array([-1.0])


def pattern_constraints(network: Network, box: Box, pattern, conditions=()) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``A x <= b`` of a pattern's region: ``A (k, input_dim)``, ``b (k,)``.

    In order: one row per neuron (``-z <= 0`` active, ``z <= 0`` inactive), one per condition
    (``-expression <= 0``), then the box faces ``x_i <= upper_i`` and ``-x_i <= -lower_i`` of
    every input (fixed ones too). Rows constant over the free inputs are decided exactly (see
    the module docstring) and left out; when one fails the region is empty and the result is
    the single row ``0 <= -1``. ``conditions`` are :class:`~milp.core.conditions.Condition` values
    or texts. Rows are not normalised.
    """
    box.check_dim(network.input_dim)
    bits = pattern_bits(network, pattern)
    conditions = parse_conditions(network, conditions)
    sources, pre = _source_maps(network, bits)
    d = network.input_dim
    values = pre + [_compose(c.expression, sources) for c in conditions]
    # Every row reads "sign * value >= 0" (strict where marked).
    sign = np.concatenate([np.where(bits, 1.0, -1.0), np.ones(len(conditions))])
    strict = np.concatenate([bits, np.array([c.strict for c in conditions], dtype=bool)])
    if values:
        V = np.vstack([v.matrix for v in values])
        v = np.concatenate([v.offset for v in values])
        V_scale = np.vstack([v.matrix_scale for v in values])
        v_scale = np.concatenate([v.offset_scale for v in values])
    else:
        V, v, V_scale, v_scale = np.zeros((0, d)), np.zeros(0), np.zeros((0, d)), np.zeros(0)
    free = box.upper > box.lower
    fixed = ~free
    constant = ~np.any(V[:, free] != 0.0, axis=1)
    if np.any(constant):
        value = v[constant] + V[constant][:, fixed] @ box.lower[fixed]
        scale = v_scale[constant] + V_scale[constant][:, fixed] @ np.abs(box.lower[fixed])
        value[np.abs(value) <= CANCELLATION * scale] = 0.0
        signed = sign[constant] * value
        holds = np.where(strict[constant], signed > 0, signed >= 0)
        if not np.all(holds):
            return _empty_rows(d)
    varying = ~constant
    eye = np.eye(d)
    A = np.vstack([-sign[varying, None] * V[varying], eye, -eye])
    b = np.concatenate([sign[varying] * v[varying], box.upper, -box.lower])
    return A, b
