"""Pre-activation bounds tightened by LP, and the one entry point that picks a bound method.

``interval`` and ``symbolic`` bounds (:mod:`milp.bounds.propagate`) are cheap; ``lp`` bounds solve, for
each neuron still unstable, two LPs (min and max of ``z``) over the big-M relaxation of
the layers before it, built with the bounds found so far. The LP relaxation contains
every reachable point, so its optimum is a valid bound; a small outward margin covers
the LP solver's tolerances. Layers are processed in order, so every layer's relaxation
uses the tightest bounds of the layers below it.
"""

from __future__ import annotations


import numpy as np

from milp.bounds.propagate import Bounds, interval_bounds, symbolic_bounds
from milp.core.box import Box
from milp.core.deadline import NO_DEADLINE, Deadline
from milp.core.errors import InputError
from milp.core.options import SolverOptions
from milp.core.tolerances import LP_BOUND_MARGIN
from milp.core.network import Network

__all__ = ["BOUND_METHODS", "pre_activation_bounds", "lp_tightened_bounds"]


def lp_tightened_bounds(
    network: Network,
    box: Box,
    base: Bounds | None = None,
    options: SolverOptions = SolverOptions(presolve=False),
    deadline: Deadline = NO_DEADLINE,
) -> Bounds:
    """Tighten ``base`` (symbolic bounds by default) with two LPs per unstable neuron.

    Stops tightening (keeping the sound bounds it has) when ``deadline`` expires.
    """
    from milp.encode.bigm import affine_rows, build_milp
    from milp.solvers.highs import HighsSolver  # here, so that naming the methods loads no solver

    base = base if base is not None else symbolic_bounds(network, box)
    lower = [np.array(a, dtype=float) for a in base.lower]
    upper = [np.array(a, dtype=float) for a in base.upper]
    for layer in range(len(network.widths)):
        unstable = np.flatnonzero((lower[layer] < 0) & (upper[layer] > 0))
        if layer == 0 or unstable.size == 0:
            continue  # layer 0 is affine in x: symbolic bounds are already exact
        if deadline.expired():
            break
        sub = network.below(layer)
        sub_bounds = Bounds(tuple(lower[:layer]), tuple(upper[:layer]), "lp")
        model = build_milp(sub, box, sub_bounds).relaxed()
        solver = HighsSolver(model, options)
        rows, constant = affine_rows(model.layout, sub.output)
        for neuron in unstable:
            row = rows.getrow(int(neuron))
            for maximize in (True, False):
                solver.set_objective(row.indices, row.data, float(constant[neuron]), maximize=maximize)
                solution = solver.solve()
                if solution.status != "optimal" or solution.objective is None:
                    continue  # keep the bound we had: it is sound
                margin = LP_BOUND_MARGIN * (1.0 + abs(solution.objective))
                if maximize:
                    upper[layer][neuron] = min(upper[layer][neuron], solution.objective + margin)
                else:
                    lower[layer][neuron] = max(lower[layer][neuron], solution.objective - margin)
                if lower[layer][neuron] >= 0 or upper[layer][neuron] <= 0:
                    break  # stable now: the other side cannot change that
    return Bounds(tuple(lower), tuple(upper), f"{base.method}+lp")


# name -> bounds(network, box, options, deadline); a new method is one entry
_METHODS = {
    "interval": lambda network, box, options, deadline: interval_bounds(network, box),
    "symbolic": lambda network, box, options, deadline: symbolic_bounds(network, box),
    "lp": lambda network, box, options, deadline: lp_tightened_bounds(network, box, symbolic_bounds(network, box), options, deadline),
}
BOUND_METHODS = tuple(_METHODS)


def pre_activation_bounds(
    network: Network,
    box: Box,
    method: str = "lp",
    options: SolverOptions = SolverOptions(presolve=False),
    deadline: Deadline = NO_DEADLINE,
) -> Bounds:
    """Per-neuron pre-activation bounds by ``interval``, ``symbolic`` or ``lp`` (symbolic, then LP-tightened)."""
    box.check_dim(network.input_dim)
    if method not in _METHODS:
        raise InputError(f"unknown bound method {method!r}: choose one of {', '.join(_METHODS)}")
    return _METHODS[method](network, box, options, deadline)

