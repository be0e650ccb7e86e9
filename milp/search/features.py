"""Whole-layer feature reports: can each neuron of a layer fire, never fire, or is it always active?

A researcher asks "can feature k fire?" for every feature of a layer at once. Most neurons are
answered by cheap means, so the work is shared, cheapest first:

1. **one bounding pass** over the box settles every stable neuron: an upper bound ``<= 0`` proves
   ``never``, a lower bound ``>= 0`` proves ``always`` (the neuron is linear on the box);
2. **one batch of samples** (the box's centre, two corners and uniform points), then **projected
   gradient steps** from the best samples of each still-open neuron, shows ``fires`` for every
   neuron some checked point activates, and rules out ``always`` for every neuron some point
   switches off;
3. **decisions only for the rest**: is ``z > 0`` reachable (:func:`milp.search.queries.reach`, which
   stops at the first checked point and closes every sub-box whose bound is below 0, cheaper than an
   exact maximum) for a neuron no point fired; is ``z < 0`` reachable for a neuron no point switched
   off. Each starts from the bounds of step 1, and they share the time limit.

Statuses (``NeuronReport.status``):

* ``fires`` — a checked witness with ``z > 0`` (re-checked in float64 and by the reference model);
* ``never`` — proved ``z <= 0`` on the whole box (``upper_bound`` is the proved maximum bound);
* ``always`` — fires, and proved ``z >= 0`` on the whole box: ``relu(z) = z`` there;
* ``unknown`` — neither shown nor proved before the time limit (the bounds proved are given).

"Never" and "always" are decided at the solver's resolution
(:func:`milp.core.tolerances.proves_not_positive`), like every ``unsat`` of :func:`~milp.search.queries.reach`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.conditions import parse_conditions
from milp.core.deadline import Deadline
from milp.core.errors import InputError
from milp.core.network import Affine, Network, layer_choices
from milp.core.options import SolverOptions, check_index, check_seconds
from milp.core.patterns import input_gradients
from milp.search.queries import reach
from milp.search.tighten import pre_activation_bounds
from milp.search.witness import Reference, check_point

__all__ = ["NeuronReport", "FeatureReport", "feature_report", "STATUSES"]

STATUSES = ("fires", "never", "always", "unknown")


@dataclass(frozen=True)
class NeuronReport:
    """One neuron's answer: ``status`` in :data:`STATUSES`.

    ``witness`` (input_dim,) is a checked input where ``z > 0`` (``fires``/``always``), with ``value``
    its ``z`` there; ``lower_bound``/``upper_bound`` are proved bounds of ``z`` on the box (from the
    bounding pass; 0 where a decision proved the sign); ``decided_by`` says which step answered.
    """

    layer: int
    neuron: int
    status: str
    witness: np.ndarray | None
    value: float | None
    lower_bound: float
    upper_bound: float
    decided_by: str

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "neuron": self.neuron,
            "status": self.status,
            "value": self.value,
            "witness": None if self.witness is None else self.witness.tolist(),
            "lower_bound": self.lower_bound,
            "upper_bound": self.upper_bound,
            "decided_by": self.decided_by,
        }


@dataclass(frozen=True)
class FeatureReport:
    """The answers for every neuron of ``layers`` (in layer, then neuron order)."""

    layers: tuple[int, ...]
    neurons: tuple[NeuronReport, ...]
    seconds: float
    bounds_method: str

    def counts(self) -> dict[str, int]:
        """How many neurons have each status."""
        return {s: sum(1 for n in self.neurons if n.status == s) for s in STATUSES}

    def of_layer(self, layer: int) -> tuple[NeuronReport, ...]:
        return tuple(n for n in self.neurons if n.layer == layer)

    def status_masks(self, network: Network) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per ReLU layer, boolean masks (width_l,) of the neurons proved ``never`` and ``always``."""
        never = [np.zeros(w, dtype=bool) for w in network.widths]
        always = [np.zeros(w, dtype=bool) for w in network.widths]
        for n in self.neurons:
            if n.status == "never":
                never[n.layer][n.neuron] = True
            elif n.status == "always":
                always[n.layer][n.neuron] = True
        return never, always

    def to_json(self) -> dict:
        return {
            "layers": list(self.layers),
            "counts": self.counts(),
            "neurons": [n.to_json() for n in self.neurons],
            "bounds": self.bounds_method,
            "seconds": self.seconds,
        }


class _Layer:
    """The open questions of one layer: what is known of each neuron so far."""

    def __init__(self, layer: int, lower: np.ndarray, upper: np.ndarray, d: int) -> None:
        width = lower.shape[0]
        self.layer = layer
        self.lower = lower.astype(float).copy()  # proved bounds of z
        self.upper = upper.astype(float).copy()
        self.best = np.full(width, -np.inf)  # largest z at a checked point
        self.witness = np.full((width, d), np.nan)
        self.seen_off = np.zeros(width, dtype=bool)  # some point has z <= 0: not "always"
        self.decided_by = [""] * width

    def fired(self) -> np.ndarray:
        return self.best > 0

    def never(self) -> np.ndarray:
        return self.upper <= 0

    def always_proved(self) -> np.ndarray:
        return self.lower >= 0


def _ascend(sub: Network, form: Affine, box: Box, starts: np.ndarray, rows: np.ndarray, sign: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Projected sign-gradient steps on ``sign * z[rows[i]]`` from ``starts[i]`` (n, d); the best point of
    each start and its ``z`` (n,). The steps shrink geometrically from a quarter of the box width."""
    x = starts.copy()
    width = box.upper - box.lower
    idx = np.arange(x.shape[0])
    best_x, best = x.copy(), np.full(x.shape[0], -np.inf)
    for step in range(steps):
        trace = sub.forward(x)
        z = form.apply([trace.inputs, *trace.activations])[idx, rows] * sign
        better = z > best
        best_x[better], best[better] = x[better], z[better]
        if step == steps - 1:
            break
        weights = np.zeros((x.shape[0], form.out_dim))
        weights[idx, rows] = sign
        gradient = input_gradients(sub, form, trace.masks(), weights)
        size = 0.25 * (0.02 ** (step / max(1, steps - 1)))
        x = np.clip(x + size * width * np.sign(gradient), box.lower, box.upper)
    return best_x, best * sign


def feature_report(
    network: Network,
    box: Box,
    layer: int | Sequence[int] | None = None,
    *,
    bounds: Bounds | str = "symbolic",
    samples: int = 2000,
    starts: int = 8,
    steps: int = 30,
    options: SolverOptions = SolverOptions(),
    time_limit: float | None = None,
    stop: threading.Event | None = None,
    reference: Reference | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureReport:
    """Can each neuron of ReLU layer ``layer`` (an int, several, or ``None`` for every layer) fire on ``box``?

    Returns a :class:`FeatureReport` with one :class:`NeuronReport` per neuron (see the module
    docstring for the steps and statuses). ``time_limit`` (seconds) bounds the whole report; a
    neuron still open at the limit is ``unknown``. ``progress(done, total)`` is called as neurons
    are decided.

    >>> # report = feature_report(net, parse_box("0:1", 64), layer=1)
    >>> # report.counts()  ->  {"fires": 117, "never": 1, "always": 0, "unknown": 0} ...
    """
    started = time.perf_counter()
    deadline = Deadline.after(check_seconds(time_limit if time_limit is not None else options.time_limit), stop)
    box.check_dim(network.input_dim)
    depth = len(network.widths)
    if layer is None:
        layers = list(range(depth))
    else:
        layers = sorted({check_index(v, "layer") for v in ([layer] if np.isscalar(layer) else layer)})
    if not layers:
        raise InputError("the network has no ReLU layer: no neuron to report on or to remove")
    for v in layers:
        if not 0 <= v < depth:
            raise InputError(f"there is no ReLU layer {v}: the network has {layer_choices(depth)}")
    if samples < 0 or starts < 0 or steps < 1:
        raise InputError("samples and starts must be >= 0 and steps >= 1")

    # 1. one bounding pass for every layer
    known = bounds if isinstance(bounds, Bounds) else pre_activation_bounds(network, box, bounds, options, deadline)
    states = {v: _Layer(v, known.lower[v], known.upper[v], network.input_dim) for v in layers}
    for state in states.values():
        for k in np.flatnonzero(state.never() | state.always_proved()):
            state.decided_by[k] = "bounds"
    total = sum(network.widths[v] for v in layers)

    def report_progress() -> None:
        if progress is not None:
            done = sum(int(np.sum(s.fired() & (s.seen_off | s.always_proved()) | s.never())) for s in states.values())
            progress(done, total)

    # 2. samples, then gradient steps from the best of them
    rng = np.random.default_rng(seed)
    points = np.vstack([box.center[None, :], box.lower[None, :], box.upper[None, :], box.sample(samples, rng)])
    trace = network.forward(points)
    for v, state in states.items():
        z = trace.pre_activations[v]
        _take(network, box, state, points, z, reference, "samples")
        state.seen_off |= (z <= 0).any(axis=0)
    report_progress()
    if starts > 0:
        for v, state in states.items():
            sub = network.below(v)
            form = network.relu_layers[v]
            z = trace.pre_activations[v]
            for sign, open_ in ((1.0, ~state.fired() & ~state.never()), (-1.0, ~state.seen_off & ~state.always_proved())):
                rows = np.flatnonzero(open_)
                if rows.size == 0 or deadline.expired():
                    continue
                order = np.argsort(-sign * z[:, rows], axis=0)[: min(starts, points.shape[0])]  # (starts, r)
                starts_x = points[order.T.reshape(-1)]
                row_of = np.repeat(rows, order.shape[0])
                best_x, best_z = _ascend(sub, form, box, starts_x, row_of, sign, steps)
                values = np.full((best_x.shape[0], form.out_dim), np.nan)
                values[np.arange(best_x.shape[0]), row_of] = best_z
                if sign > 0:
                    _take(network, box, state, best_x, np.where(np.isnan(values), -np.inf, values), reference, "gradient ascent")
                else:
                    state.seen_off |= np.any(np.where(np.isnan(values), np.inf, values) <= 0, axis=0)
        report_progress()

    # 3. decisions for the rest, sharing the time left: is {z > 0} (or {z < 0}) reachable on the box?
    for v, state in states.items():
        sub_bounds = Bounds(tuple(known.lower[:v]), tuple(known.upper[:v]), known.method)
        form = network.relu_layers[v]
        for k in range(network.widths[v]):
            if deadline.expired():
                break
            row = Affine(tuple((s, w[k : k + 1]) for s, w in form.terms), form.bias[k : k + 1])
            sub = network.below(v, row)
            if not state.fired()[k] and not state.never()[k]:
                result = reach(sub, box, ["y[0] > 0"], bounds=sub_bounds, options=options, time_limit=_share(deadline, states),
                               stop=stop, samples=0, seed=seed)
                if result.status == "sat":
                    condition = parse_conditions(network, [f"z{v}[{k}] > 0"])
                    if check_point(network, box, result.witness, condition, reference)[0]:
                        state.best[k], state.witness[k] = float(result.output[0]), result.witness
                        state.decided_by[k] = result.decided_by
                elif result.status == "unsat":
                    state.upper[k] = min(state.upper[k], 0.0)
                    state.decided_by[k] = result.decided_by
            if state.fired()[k] and not state.seen_off[k] and not state.always_proved()[k] and not deadline.expired():
                result = reach(sub, box, ["y[0] < 0"], bounds=sub_bounds, options=options, time_limit=_share(deadline, states),
                               stop=stop, samples=0, seed=seed)
                if result.status == "unsat":
                    state.lower[k] = max(state.lower[k], 0.0)
                    state.decided_by[k] = result.decided_by
                elif result.status == "sat":
                    state.seen_off[k] = True
            report_progress()

    neurons = []
    for v in layers:
        state = states[v]
        for k in range(network.widths[v]):
            witness = state.witness[k] if state.fired()[k] else None
            if state.never()[k]:
                status = "never"
            elif state.fired()[k]:
                status = "always" if state.always_proved()[k] else "fires"
            else:
                status = "unknown"
            by = state.decided_by[k] or ("" if status == "unknown" else "samples")
            neurons.append(NeuronReport(v, k, status, witness, float(state.best[k]) if witness is not None else None,
                                        float(state.lower[k]), float(state.upper[k]), by))
    method = bounds.method if isinstance(bounds, Bounds) else bounds
    return FeatureReport(tuple(layers), tuple(neurons), time.perf_counter() - started, method)


def _take(network: Network, box: Box, state: _Layer, points: np.ndarray, z: np.ndarray, reference, how: str) -> None:
    """Record, for each neuron not yet fired, the point of ``points`` (n, d) with the largest ``z`` (n, width)
    when it is positive there and the point passes the check (float64 and the reference model)."""
    best = np.argmax(z, axis=0)
    value = z[best, np.arange(z.shape[1])]
    for k in np.flatnonzero((value > 0) & ~state.fired() & ~state.never()):
        x = points[best[k]]
        condition = parse_conditions(network, [f"z{state.layer}[{k}] > 0"])
        if check_point(network, box, x, condition, reference)[0]:
            state.best[k], state.witness[k] = float(value[k]), x
            state.decided_by[k] = state.decided_by[k] or how  # "always" by bounds stays decided by bounds


def _share(deadline: Deadline, states: dict) -> float | None:
    """The seconds one proof may use: the time left divided over the neurons still open (at least 1 s)."""
    left = deadline.remaining()
    if left is None:
        return None
    open_ = sum(int(np.sum(~s.fired() & ~s.never()) + np.sum(s.fired() & ~s.seen_off & ~s.always_proved())) for s in states.values())
    return max(1.0, left / max(1, open_))
