"""Intermediate bounds tightened by a short search per neuron, for the searches that split neurons.

On a deep net over a wide input box the relaxation's slack compounds with depth: a loose
layer 2 makes layer 3 looser still, and the layers near the output end up with every neuron
unstable. Optimising the relaxation (alpha-CROWN, the root of every neuron-split search)
does not help much there: its bounds are those of the LP, and the LP is what is loose.
Measured on mnist_fc's 256x6 net at eps 0.05 (prop_0): the root leaves 67, 65, 200, 256 and 256
neurons unstable in layers 2 to 6; 0.1 s of search per neuron side on layers 2 to 4 leaves 50,
33, 43, 107 and 256, and the mean width of layer 6's bounds falls from 206 to 9.

Each unstable neuron's two sides (the maxima of ``z`` and ``-z`` over the layers below it) are
maximised by the caller's ``maximum``, which limits its own work; whatever bound it has proved
when it stops is sound. Layers go in order, and after each one the layers above are optimised
again (alpha-CROWN) from the tightened ones, so that the next layer's searches read them. The
caller may stop it after any layer (``settled``): on mnist_fc's 256x4 and 256x6 nets, the bounds
of the first two or three layers often prove the property at the root already.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from milp.bounds.propagate import BatchBounder
from milp.core.box import Box
from milp.core.deadline import Deadline
from milp.core.network import Affine, Network
from milp.core.runtime import BackgroundCall
from milp.core.tolerances import LP_BOUND_MARGIN

__all__ = ["refined_bounds", "search_neurons", "NeuronMaximum"]

# (network below the layer, one-row form over its sources, its known (lower, upper) bounds
# (neurons,), deadline) -> a proved upper bound of the form over the box, or None
NeuronMaximum = Callable[[Network, Affine, tuple[np.ndarray, np.ndarray], Deadline], "float | None"]


def refined_bounds(
    network: Network,
    box: Box,
    known: tuple[np.ndarray, np.ndarray] | None,
    maximum: NeuronMaximum,
    *,
    deadline: Deadline,
    steps: int = 20,
    workers: int = 1,
    race: Callable[[], bool] | None = None,
    settled: Callable[[np.ndarray, np.ndarray], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pre-activation bounds (lower, upper), each (neurons,), over ``box``, never looser than ``known``,
    and the count of neurons that are stable by them but unstable by alpha-CROWN's.

    Starts from alpha-CROWN's bounds (``steps`` steps), then searches each unstable neuron's two
    sides with ``maximum`` (see the module docstring). Stops when ``deadline`` expires, or when
    ``race()`` turns true, with the sound bounds it has, or when ``settled(lower, upper)`` (asked after
    each layer but the last) says the bounds so far answer the caller's question: the layers above
    would cost their searches for nothing.

    ``workers`` > 1 shares each layer's neurons among that many processes (this one and
    ``workers - 1`` children): a neuron's searches read only the layers below it, so a layer's
    neurons are independent. ``maximum`` must then be importable by name or an instance of a
    class that is (it travels pickled). The bounds are the same as with one process, unless the
    deadline cuts a layer short.
    """
    bounder = BatchBounder(network)
    offsets = network.neuron_offsets()
    n = network.neuron_count
    lower, upper = (np.full(n, -np.inf), np.full(n, np.inf)) if known is None else (np.array(known[0], float), np.array(known[1], float))

    def optimised(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lowers, uppers, _ = bounder.optimised_neuron_bounds(box.lower[None], box.upper[None], lower[None], upper[None], steps)
        return np.concatenate(lowers, axis=1)[0], np.concatenate(uppers, axis=1)[0]

    lower, upper = optimised(lower, upper)
    unstable_at_start = _unstable(lower, upper)
    for layer in range(1, len(network.widths)):  # layer 0 is affine in x: its bounds are exact
        if deadline.expired() or (race and race()):
            break
        below = network.below(layer)
        start = offsets[layer]
        unstable = start + np.flatnonzero((lower[start : offsets[layer + 1]] < 0) & (upper[start : offsets[layer + 1]] > 0))
        weight = _weight_in_layers_above(network, layer, lower[unstable], upper[unstable], unstable - start)
        order = unstable[np.argsort(-weight, kind="stable")]
        # dealt out in turn, so that every process starts with the neurons that matter most
        helpers = [BackgroundCall(search_neurons, (below, start, order[k::workers], lower, upper, maximum), deadline, "a refinement process")
                   for k in range(1, min(workers, order.size))]
        try:
            parts = [search_neurons(below, start, order[::workers] if helpers else order, lower, upper, maximum, deadline, race)]
            if not (race and race()):  # else the answer is in: the helpers' shares are not waited for
                parts += [helper.join() for helper in helpers]
        finally:
            for helper in helpers:
                helper.cancel()
        lower, upper = np.max([p[0] for p in parts], axis=0), np.min([p[1] for p in parts], axis=0)
        if deadline.expired() or (race and race()):
            break
        lower, upper = optimised(lower, upper)
        if settled is not None and layer < len(network.widths) - 1 and settled(lower, upper):
            break  # after the last layer there is nothing left to save: it is not asked
    return lower, upper, unstable_at_start - _unstable(lower, upper)


def _weight_in_layers_above(network: Network, layer: int, lower: np.ndarray, upper: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """How much each unstable neuron's relaxation loosens the layers that read it, (rows,): the
    largest gap of its triangle relaxation, ``-l u / (u - l)`` (at ``z = 0``), times the summed
    magnitude of its column in every map reading ReLU layer ``layer``. The refinement goes through a
    layer in this order, so that a deadline reached inside the layer has spent the time on the
    neurons that matter most to the layers above."""
    reads = np.zeros(rows.size)
    for form in (*network.relu_layers[layer + 1 :], network.output):
        weight = form.weight(layer + 1)  # ReLU layer `layer` is source layer + 1
        if weight is not None:
            reads += np.abs(weight[:, rows]).sum(axis=0)
    return reads * (-lower * upper / (upper - lower))


def _unstable(lower: np.ndarray, upper: np.ndarray) -> int:
    return int(np.count_nonzero((lower < 0) & (upper > 0)))


def search_neurons(below: Network, start: int, neurons: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                   maximum: NeuronMaximum, deadline: Deadline, race: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``lower`` and ``upper`` (neurons,) with ``neurons`` (indices into them, in the layer
    that ``below`` outputs, which starts at index ``start``) tightened by ``maximum``, in order, until
    ``deadline`` expires or ``race()`` turns true."""
    lower, upper = lower.copy(), upper.copy()
    for neuron in neurons:
        row = neuron - start
        # the side nearer zero first: when it makes the neuron stable, the other is not searched
        for sign in ((1.0, -1.0) if upper[neuron] < -lower[neuron] else (-1.0, 1.0)):
            if deadline.expired() or (race and race()):
                return lower, upper
            form = below.output.rows(slice(row, row + 1))
            form = form if sign > 0 else -form
            bound = maximum(below, form, (lower[:start], upper[:start]), deadline)
            if bound is None or not np.isfinite(bound):
                continue
            bound += LP_BOUND_MARGIN * (1.0 + abs(bound))  # the leaves' MILP tolerances
            if sign > 0:
                upper[neuron] = min(upper[neuron], bound)
            else:
                lower[neuron] = max(lower[neuron], -bound)
            if lower[neuron] >= 0 or upper[neuron] <= 0:
                break  # stable now: the other side cannot change that
    return lower, upper
