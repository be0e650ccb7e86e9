"""New networks from old ones, exactly: several networks side by side, their difference, and a network
with its stable neurons folded away.

All three rest on one operation, substituting sources: in canonical form (:mod:`milp.core.network`)
every map is ``sum_s W_s @ source_s + b``, so when each old source is an affine map of new sources
the composed map is again one :class:`~milp.core.network.Affine`.

* :func:`side_by_side` runs networks on parts of one joint input (or on the same input) and stacks
  their outputs: one network, so one MILP or one branch and bound answers a question about all of them
  (a teacher and its student, a network and its pruned copy).
* :func:`difference` is ``a(x) - b(x)``: the two agree on a box exactly when its range there is 0.
* :func:`fold_stable` removes the neurons that never fire on a box and folds those that are always
  active into the affine maps around them (a whole layer that becomes linear disappears). It is the
  same function as the original on the box *given* that the statuses are true there.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from milp.core.network import Affine, Network, NetworkError

__all__ = ["side_by_side", "difference", "fold_stable", "neuron_count", "substitute", "unit"]


def substitute(form: Affine, sources: Sequence[Affine]) -> Affine:
    """``form`` with each old source ``s`` replaced by ``sources[s]`` (an Affine over new sources)."""
    bias = np.array(form.bias, dtype=np.float64)
    terms: list[tuple[int, np.ndarray]] = []
    for s, matrix in form.terms:
        inner = sources[s]
        bias = bias + matrix @ inner.bias
        terms.extend((t, matrix @ m) for t, m in inner.terms)
    return Affine(tuple(terms), bias)


def unit(source: int, dim: int) -> Affine:
    """Source ``source`` (of ``dim`` values) itself, as an affine map."""
    return Affine(((source, np.eye(dim)),), np.zeros(dim))


def side_by_side(networks: Sequence[Network], inputs: Sequence[Sequence[int]] | None = None, input_dim: int | None = None) -> Network:
    """One network computing every network of ``networks`` and stacking their outputs.

    ``inputs[i]`` lists, for each input of network ``i``, its position in the joint input of
    ``input_dim`` values (shared positions tie inputs together); by default every network reads the
    whole joint input, which then has their common input dimension. The joint network's ReLU layers are
    those of ``networks[0]``, then those of ``networks[1]``, ...; its output is ``[y_0; y_1; ...]``.
    """
    networks = list(networks)
    if not networks:
        raise NetworkError("side_by_side needs at least one network")
    if inputs is None:
        dims = {n.input_dim for n in networks}
        if len(dims) != 1:
            raise NetworkError(f"networks with different input dimensions {sorted(dims)} need explicit input positions")
        input_dim = dims.pop()
        inputs = [list(range(input_dim)) for _ in networks]
    if input_dim is None:
        input_dim = 1 + max(max(p) for p in inputs)
    layers: list[Affine] = []
    outputs: list[Affine] = []
    for network, positions in zip(networks, inputs):
        positions = np.asarray(positions, dtype=int)
        if positions.shape != (network.input_dim,) or positions.min() < 0 or positions.max() >= input_dim:
            raise NetworkError(f"a network of {network.input_dim} inputs needs {network.input_dim} positions in 0..{input_dim - 1}")
        pick = np.zeros((network.input_dim, input_dim))
        pick[np.arange(network.input_dim), positions] = 1.0
        sources = [Affine(((0, pick),), np.zeros(network.input_dim))]
        for layer in network.relu_layers:
            layers.append(substitute(layer, sources))
            sources.append(unit(len(layers), layer.out_dim))
        outputs.append(substitute(network.output, sources))
    return Network(input_dim, tuple(layers), Affine.stack(outputs))


def difference(a: Network, b: Network) -> Network:
    """The network ``x -> a(x) - b(x)`` (same input and output dimensions)."""
    if a.input_dim != b.input_dim or a.output_dim != b.output_dim:
        raise NetworkError(f"cannot subtract a {b.input_dim}->{b.output_dim} network from a {a.input_dim}->{a.output_dim} one")
    both = side_by_side([a, b])
    m = a.output_dim
    minus = Affine(tuple((s, w[:m] - w[m:]) for s, w in both.output.terms), both.output.bias[:m] - both.output.bias[m:])
    return Network(a.input_dim, both.relu_layers, minus, input_names=a.input_names, output_names=a.output_names)


def neuron_count(network: Network) -> int:
    """The number of ReLU neurons."""
    return int(sum(network.widths))


def fold_stable(network: Network, never: Sequence[np.ndarray], always: Sequence[np.ndarray]) -> Network:
    """The network with every ``never`` neuron removed and every ``always`` neuron made linear.

    ``never[l]`` and ``always[l]`` are boolean masks of shape (width_l,) per ReLU layer. A never-active
    neuron contributes ``relu(z) = 0``; an always-active one ``relu(z) = z``, so its consumers read
    ``z``'s own terms instead (skip connections in the canonical form). Only the neurons that stay get a
    ReLU; a layer with none left disappears into the maps around it.
    """
    if len(never) != len(network.widths) or len(always) != len(network.widths):
        raise NetworkError(f"masks for {len(never)} and {len(always)} layers, but the network has {len(network.widths)}")
    d = network.input_dim
    sources = [unit(0, d)]  # each old source as an affine map of the new sources
    layers: list[Affine] = []
    for layer, off, on in zip(network.relu_layers, never, always):
        off, on = np.asarray(off, dtype=bool), np.asarray(on, dtype=bool)
        if off.shape != (layer.out_dim,) or on.shape != (layer.out_dim,):
            raise NetworkError(f"masks of shape {off.shape} and {on.shape} for a layer of {layer.out_dim} neurons")
        if np.any(off & on):
            # z == 0 on the whole box: both are true, and removing the neuron is the simpler of the two
            on = on & ~off
        z = substitute(layer, sources)
        keep = np.flatnonzero(~off & ~on)
        terms: list[tuple[int, np.ndarray]] = []
        bias = np.zeros(layer.out_dim)
        on_rows = np.flatnonzero(on)
        for t, m in z.terms:  # always-active neurons: h = z
            w = np.zeros_like(m)
            w[on_rows] = m[on_rows]
            terms.append((t, w))
        bias[on_rows] = z.bias[on_rows]
        if keep.size:
            layers.append(Affine(tuple((t, m[keep]) for t, m in z.terms), z.bias[keep]))
            select = np.zeros((layer.out_dim, keep.size))
            select[keep, np.arange(keep.size)] = 1.0
            terms.append((len(layers), select))
        sources.append(Affine(tuple(terms), bias))
    output = substitute(network.output, sources)
    return Network(d, tuple(layers), output, input_names=network.input_names, output_names=network.output_names,
                   source_description=network.source_description)
