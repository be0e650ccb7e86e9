"""The same big-M MILP as a Pyomo model: for other solvers, or to embed a network in a model of your own.

Pyomo is off the hot path (building one expression per row costs seconds on large
networks); the HiGHS back-end (:mod:`milp.solvers.highs`) is what queries use.

>>> # import pyomo.environ as pyo
>>> # m = pyo.ConcreteModel()
>>> # net_block = add_network(m, network, box)          # m.net.x[i], m.net.y[j] ...
>>> # m.obj = pyo.Objective(expr=m.net.y[0], sense=pyo.maximize)
>>> # pyo.SolverFactory("appsi_highs").solve(m)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milp.bounds.propagate import Bounds, interval_bounds, symbolic_bounds
from milp.core.box import Box
from milp.core.errors import InputError
from milp.encode.bigm import MilpModel, affine_rows, binary_free, build_milp
from milp.core.network import Network

__all__ = ["to_pyomo", "add_network", "solve_pyomo", "PyomoResult"]


def to_pyomo(model: MilpModel, block=None):
    """Fill a Pyomo block (a new ``ConcreteModel`` by default) with the MILP.

    Columns become ``block.v[i]`` (binary where the model is integral), rows become
    ``block.rows[r]``; returns the block.
    """
    import pyomo.environ as pyo

    block = pyo.ConcreteModel() if block is None else block
    n = model.shape[1]
    block.columns = pyo.RangeSet(0, n - 1)

    def domain(_, i):
        return pyo.Binary if model.integer[i] else pyo.Reals

    def bounds(_, i):
        lo, hi = model.col_lower[i], model.col_upper[i]
        return (None if not np.isfinite(lo) else float(lo), None if not np.isfinite(hi) else float(hi))

    block.v = pyo.Var(block.columns, domain=domain, bounds=bounds)
    matrix = model.matrix.tocsr()
    block.row_index = pyo.RangeSet(0, matrix.shape[0] - 1) if matrix.shape[0] else pyo.Set(initialize=[])

    def row_rule(b, r):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        body = sum(float(a) * b.v[int(j)] for a, j in zip(matrix.data[start:end], matrix.indices[start:end]))
        lo, hi = model.row_lower[r], model.row_upper[r]
        lo = None if not np.isfinite(lo) else float(lo)
        hi = None if not np.isfinite(hi) else float(hi)
        if lo is not None and hi is not None and lo == hi:
            return body == lo
        return pyo.inequality(lo, body, hi)

    block.rows = pyo.Constraint(block.row_index, rule=row_rule)
    return block


def _bounds(network: Network, box: Box, bounds: Bounds | str) -> Bounds:
    """``bounds`` as given, or computed by propagation ("interval" or "symbolic"). LP-tightened
    bounds come from :func:`milp.search.tighten.pre_activation_bounds`, a later step: pass them in."""
    if isinstance(bounds, Bounds):
        return bounds
    methods = {"interval": interval_bounds, "symbolic": symbolic_bounds}
    if bounds not in methods:
        raise InputError(f"bounds {bounds!r}: give 'interval', 'symbolic' or a Bounds value "
                         "(e.g. milp.search.tighten.pre_activation_bounds(network, box, 'lp'))")
    return methods[bounds](network, box)


def add_network(parent, network: Network, box: Box, bounds: Bounds | str = "symbolic", name: str = "net"):
    """Embed ``network`` over ``box`` in a Pyomo model as a block ``parent.<name>``.

    The block has ``x[i]`` (input variables), ``y[j]`` (output expressions) and the big-M
    rows; constrain or optimise them in your own model. ``bounds`` gives each unstable
    neuron's big-M constants (see :func:`_bounds`).
    """
    import pyomo.environ as pyo

    bounds = _bounds(network, box, bounds)
    model = build_milp(network, box, bounds)
    block = pyo.Block(concrete=True)
    parent.add_component(name, block)
    to_pyomo(model, block)
    inputs = model.layout.input
    block.x = pyo.Expression(range(network.input_dim), rule=lambda b, i: b.v[int(inputs[i])])
    out_rows, out_const = affine_rows(model.layout, network.output)
    out_rows = out_rows.tocsr()

    def output_rule(b, j):
        start, end = out_rows.indptr[j], out_rows.indptr[j + 1]
        return float(out_const[j]) + sum(float(a) * b.v[int(c)] for a, c in zip(out_rows.data[start:end], out_rows.indices[start:end]))

    block.y = pyo.Expression(range(network.output_dim), rule=output_rule)
    block.input_columns = [int(i) for i in inputs]
    return block


@dataclass(frozen=True)
class PyomoResult:
    """``status`` (``optimal`` or the solver's termination condition), ``objective``, ``x`` (input_dim,)
    and the number of ``binaries`` the model had."""

    status: str
    objective: float | None
    x: np.ndarray | None
    seconds: float
    binaries: int = 0


def solve_pyomo(
    network: Network,
    box: Box,
    objective_rows,
    maximize: bool = True,
    bounds: Bounds | str = "interval",
    solver: str = "highs",
    time_limit: float | None = None,
    plain: bool = False,
) -> PyomoResult:
    """Optimise a linear form ``(columns-matrix row, constant)`` of the network through Pyomo and any solver.

    ``objective_rows`` is an :class:`~milp.core.network.Affine` with one row over the network's sources
    (e.g. ``milp.core.conditions.value_form(network, "y", 0)``). Unstable neurons whose binary this
    objective does not need (:func:`~milp.encode.bigm.binary_free`) get none, as in the HiGHS path,
    unless ``plain`` (every unstable neuron with its binary: the textbook model).
    """
    import time

    import pyomo.environ as pyo

    started = time.perf_counter()
    bounds = _bounds(network, box, bounds)
    free = None if plain else binary_free(network, objective_rows if maximize else -objective_rows)
    model = build_milp(network, box, bounds, free)
    m = to_pyomo(model)
    row, constant = affine_rows(model.layout, objective_rows)
    row = row.tocsr()
    m.objective = pyo.Objective(
        expr=float(constant[0]) + sum(float(a) * m.v[int(j)] for a, j in zip(row.data, row.indices)),
        sense=pyo.maximize if maximize else pyo.minimize,
    )
    opt = pyo.SolverFactory(solver)
    if not opt.available():
        raise InputError(f"Pyomo solver {solver!r} is not available on this machine")
    if solver == "highs":  # Pyomo's maintained HiGHS interface (its time limit holds; appsi_highs's did not)
        options = {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-9, "threads": 1}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
        results = opt.solve(m, options=options, load_solutions=False)
        condition = str(results.solver.termination_condition)
        optimal = condition.lower().endswith("optimal")
        if optimal:
            m.solutions.load_from(results)
    elif solver == "appsi_highs":
        opt.config.mip_gap = 0.0
        if time_limit is not None:
            opt.config.time_limit = time_limit
        opt.highs_options = {"mip_abs_gap": 1e-9, "threads": 1}
        results = opt.solve(m)
    else:
        options = {} if time_limit is None else {"timelimit": time_limit}
        results = opt.solve(m, options=options)
    condition = str(results.solver.termination_condition)
    optimal = condition.lower().endswith("optimal")
    x = np.array([pyo.value(m.v[int(i)]) for i in model.layout.input]) if optimal else None
    value = float(pyo.value(m.objective)) if optimal else None
    return PyomoResult("optimal" if optimal else condition, value, x, time.perf_counter() - started,
                       int(model.integer.sum()))
