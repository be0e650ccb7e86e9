"""The one witness check: a point is reported only after a float64 forward pass (and the original
model, when given) confirms it, with the tolerance rule of :mod:`milp.core.tolerances`.

A solver's point may sit a feasibility tolerance off; :func:`polish_in_pattern` re-solves the LP of
its activation pattern, where the network is affine and the float64 forward pass agrees with the LP.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from milp.core.box import Box
from milp.core.conditions import Condition
from milp.core.errors import InputError
from milp.core.network import Affine, Network
from milp.core.patterns import local_form, pattern_constraints
from milp.core.tolerances import REFERENCE_TOLERANCE, condition_tolerance
from milp.solvers.highs import PolytopeLp

__all__ = ["Reference", "check_point", "reference_output", "clip_to_box", "polish_in_pattern"]

# The original model (e.g. onnxruntime on the file): a batch (n, input_dim) -> outputs (n, output_dim).
Reference = Callable[[np.ndarray], np.ndarray]


def clip_to_box(box: Box, x: np.ndarray) -> np.ndarray:
    """Solver points may sit a tolerance outside the box; the clipped point is what gets checked."""
    return np.clip(x, box.lower, box.upper)


def reference_output(reference: Reference, x: np.ndarray, expected: np.ndarray) -> np.ndarray | None:
    """The reference model's output at ``x`` (input_dim,), or None when it disagrees with ``expected``
    (the float64 network's output) beyond :data:`~milp.core.tolerances.REFERENCE_TOLERANCE`."""
    got = np.asarray(reference(x[None, :]), dtype=np.float64).reshape(-1)
    if got.size != expected.size:  # a reference of another model: no point could ever be confirmed
        raise InputError(f"the reference model gave {got.size} outputs for one input; the network has {expected.size}")
    if not np.allclose(got, expected, rtol=REFERENCE_TOLERANCE, atol=REFERENCE_TOLERANCE):
        return None
    return got


def check_point(
    network: Network,
    box: Box,
    x: np.ndarray,
    conditions: Sequence[Condition] = (),
    reference: Reference | None = None,
) -> tuple[bool, str]:
    """Re-check a point: in the box, every condition holds in float64, and the reference model agrees.

    Returns ``(ok, why_not)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (network.input_dim,) or not np.all(np.isfinite(x)):
        return False, "not a finite input of the right size"
    if not box.contains(x):
        return False, "outside the box"
    trace = network.forward(x[None, :])
    values = [trace.inputs, *trace.activations]
    for condition in conditions:
        e = condition.expression
        slack = float(e.apply(values)[0, 0])
        scale = float(sum(np.abs(w).sum() * np.abs(values[s]).max(initial=0.0) for s, w in e.terms) + abs(e.bias[0]))
        if condition.strict and not slack > condition_tolerance(scale):
            # a margin of a few ulps is rounding, not a proof that the strict inequality holds
            return False, f"{condition.text!r} does not hold strictly ({slack:.3g})"
        if not condition.strict and slack < -condition_tolerance(scale):
            return False, f"{condition.text!r} fails by {-slack:.3g}"
    if reference is not None and reference_output(reference, x, trace.output[0]) is None:
        return False, "the reference model disagrees with the float64 network at this point"
    return True, ""


def _clip(box: Box, x: np.ndarray) -> np.ndarray:
    # Solver points may sit a tolerance outside the box; the clipped point is what gets checked.
    return np.clip(x, box.lower, box.upper)


def polish_in_pattern(
    network: Network,
    box: Box,
    x: np.ndarray,
    objective: Affine | None,
    conditions: Sequence[Condition],
    maximize: bool,
) -> np.ndarray | None:
    """Re-solve as an LP over the activation region of ``x``: exact where the MILP point is a tolerance off.

    Fixing every neuron's phase to its phase at ``x`` makes the network affine; the LP's
    optimum (the objective's, or the largest margin of the strict conditions) is a point
    of that region where the float64 forward pass agrees with the LP.
    """

    pattern = network.forward(x[None, :]).pattern()[0]
    strict = [c for c in conditions if c.strict]
    A, b = pattern_constraints(network, box, pattern, [c for c in conditions if not c.strict])
    d = network.input_dim
    # variables (x, t): strict conditions as e(x) >= t, t <= 1; maximise t or the objective
    rows = [np.hstack([A, np.zeros((A.shape[0], 1))])]
    rhs = [b]
    for condition in strict:
        g, g0 = local_form(network, pattern, condition.expression)
        rows.append(np.hstack([-g, [[1.0]]]))
        rhs.append(g0)
    cost = np.zeros(d + 1)
    if objective is not None:
        g, _ = local_form(network, pattern, objective)
        cost[:d] = -g[0] if maximize else g[0]
    else:
        cost[d] = -1.0
    t_lower, t_upper = (-np.inf, 1.0) if strict else (0.0, 0.0)
    lp = PolytopeLp(np.vstack(rows), np.concatenate(rhs), np.append(box.lower, t_lower), np.append(box.upper, t_upper))
    found = lp.maximize(-cost)
    if found is None or found[1] is None:
        return None
    return clip_to_box(box, found[1][:d])
