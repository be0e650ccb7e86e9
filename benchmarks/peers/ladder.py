"""Peers of the query ladder (``benchmarks/queries.py``): the same maximum, proved by other tools.

Each question is a plain MLP, given as ``layers`` = [(W (out, in), b (out,)), ...] with a ReLU
between consecutive maps and none after the last, an input box ``lo, hi`` (d,), and an objective
``c`` (m,) over the last map's outputs: maximise ``c . f(x)``.

* :func:`omlt_maximum`: OMLT's ReluBigMFormulation in Pyomo, solved by HiGHS (``pip install omlt``).
* :func:`gurobi_maximum`: a big-M model with interval bounds written directly in gurobipy, solved by
  Gurobi on two threads. The licence bundled with gurobipy is size-limited (2,000 variables and
  constraints); a model over the limit is reported as such.
* :func:`marabou_decide`: Marabou is a decision procedure, not an optimiser, so it is asked the two
  questions that confirm a proved optimum ``v``: "is ``c . f(x) >= v + tol`` reachable?" (expected
  unsat) and "is ``c . f(x) >= v - tol`` reachable?" (expected sat).

Every function returns a :class:`PeerResult`, or raises :class:`PeerMissing` when its package is not
installed (the ladder then prints one line and skips it). ``pip install -e .[bench]`` installs all three.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np


class PeerMissing(Exception):
    """The peer's package is not installed."""


@dataclass(frozen=True)
class PeerResult:
    """``status``: "optimal", "limit", "too large" (licence), or for Marabou "agrees"/"disagrees"/"limit";
    ``lower``/``upper``: the best point's value and the proved bound of ``c . f(x)`` at a limit."""

    status: str
    value: float | None
    seconds: float
    detail: str = ""
    lower: float | None = None
    upper: float | None = None


def interval_bounds(layers, lo, hi):
    """Pre-activation bounds of every map by interval arithmetic: [(l (m,), u (m,)), ...]."""
    bounds, low, high = [], np.asarray(lo, float), np.asarray(hi, float)
    for index, (w, b) in enumerate(layers):
        positive, negative = np.maximum(w, 0), np.minimum(w, 0)
        l, u = positive @ low + negative @ high + b, positive @ high + negative @ low + b
        bounds.append((l, u))
        low, high = np.maximum(l, 0), np.maximum(u, 0)
    return bounds


def omlt_maximum(layers, lo, hi, c, limit: float) -> PeerResult:
    try:
        import pyomo.environ as pyo
        from omlt import OmltBlock
        from omlt.neuralnet import NetworkDefinition, ReluBigMFormulation
        from omlt.neuralnet.layer import DenseLayer, InputLayer
    except ImportError as error:
        raise PeerMissing(f"omlt is not installed ({error}); pip install -e .[bench]") from error
    started = time.perf_counter()
    definition = NetworkDefinition(scaled_input_bounds={i: (float(a), float(b)) for i, (a, b) in enumerate(zip(lo, hi))})
    previous = InputLayer([len(lo)])
    definition.add_layer(previous)
    for index, (w, b) in enumerate(layers):
        last = index == len(layers) - 1
        # OMLT's weights are (inputs, outputs)
        layer = DenseLayer([w.shape[1]], [w.shape[0]], activation="linear" if last else "relu", weights=w.T.copy(), biases=b.copy())
        definition.add_layer(layer)
        definition.add_edge(previous, layer)
        previous = layer
    model = pyo.ConcreteModel()
    model.nn = OmltBlock()
    model.nn.build_formulation(ReluBigMFormulation(definition))
    model.objective = pyo.Objective(expr=sum(float(c[j]) * model.nn.outputs[j] for j in range(len(c)) if c[j] != 0), sense=pyo.maximize)
    solver = pyo.SolverFactory("highs")
    results = solver.solve(model, options={"time_limit": float(limit), "mip_rel_gap": 0.0, "mip_abs_gap": 1e-9}, load_solutions=False)
    optimal = str(results.solver.termination_condition).lower().endswith("optimal")
    value = None
    if optimal:
        model.solutions.load_from(results)
        value = float(pyo.value(model.objective))
    return PeerResult("optimal" if optimal else "limit", value, time.perf_counter() - started)


def gurobi_maximum(layers, lo, hi, c, limit: float) -> PeerResult:
    try:
        import gurobipy as gp
        from gurobipy import GRB
    except ImportError as error:
        raise PeerMissing(f"gurobipy is not installed ({error}); pip install -e .[bench]") from error
    started = time.perf_counter()
    environment = gp.Env(empty=True)
    environment.setParam("OutputFlag", 0)
    environment.start()
    model = gp.Model(env=environment)
    model.Params.TimeLimit = float(limit)
    model.Params.Threads = 2
    model.Params.MIPGap = 0.0
    model.Params.MIPGapAbs = 1e-9
    bounds = interval_bounds(layers, lo, hi)
    a = model.addMVar(len(lo), lb=np.asarray(lo, float), ub=np.asarray(hi, float))
    for index, ((w, b), (l, u)) in enumerate(zip(layers, bounds)):
        z = model.addMVar(len(b), lb=l, ub=u)
        model.addConstr(z == w @ a + b)
        if index == len(layers) - 1:
            model.setObjective(np.asarray(c, float) @ z, GRB.MAXIMIZE)
            break
        h = model.addMVar(len(b), lb=0.0, ub=np.maximum(u, 0.0))
        for j in range(len(b)):
            if l[j] >= 0:
                model.addConstr(h[j] == z[j])
            elif u[j] <= 0:
                model.addConstr(h[j] == 0)
            else:  # big-M with the neuron's own interval bounds
                delta = model.addVar(vtype=GRB.BINARY)
                model.addConstr(h[j] >= z[j])
                model.addConstr(h[j] <= z[j] - l[j] * (1 - delta))
                model.addConstr(h[j] <= u[j] * delta)
        a = h
    try:
        model.optimize()
    except gp.GurobiError as error:
        if "size-limited" in str(error) or getattr(error, "errno", None) == 10010:
            return PeerResult("too large", None, time.perf_counter() - started, "over the size-limited licence")
        raise
    optimal = model.Status == GRB.OPTIMAL
    lower = float(model.ObjVal) if model.SolCount else None
    return PeerResult("optimal" if optimal else "limit", lower if optimal else None, time.perf_counter() - started,
                      lower=lower, upper=float(model.ObjBound))


def marabou_decide(layers, lo, hi, c, value: float, limit: float) -> PeerResult:
    """Marabou's two decision queries around ``value`` (the optimum another tool proved)."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its TensorFlow reader is unavailable; ONNX is all we use
            from maraboupy import Marabou, MarabouCore  # noqa: F401
    except ImportError as error:
        raise PeerMissing(f"maraboupy is not installed ({error}); pip install -e .[bench]") from error
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tol = 1e-4 * (1.0 + abs(value))
    started = time.perf_counter()
    nodes, initializers, name = [], [], "x"
    for index, (w, b) in enumerate(layers):
        initializers += [numpy_helper.from_array(w.T.astype(np.float32), f"W{index}"), numpy_helper.from_array(b.astype(np.float32), f"b{index}")]
        nodes.append(helper.make_node("MatMul", [name, f"W{index}"], [f"m{index}"]))
        nodes.append(helper.make_node("Add", [f"m{index}", f"b{index}"], [f"z{index}" if index < len(layers) - 1 else "y"]))
        if index < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [f"z{index}"], [f"h{index}"]))
            name = f"h{index}"
    graph = helper.make_graph(nodes, "ladder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, len(lo)])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, len(c)])], initializers)
    verdicts = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.onnx")
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
        for threshold in (value + tol, value - tol):
            network = Marabou.read_onnx(path)
            inputs, outputs = network.inputVars[0].flatten(), network.outputVars[0].flatten()
            for variable, a, b in zip(inputs, lo, hi):
                network.setLowerBound(int(variable), float(a))
                network.setUpperBound(int(variable), float(b))
            used = [j for j in range(len(c)) if c[j] != 0]
            # c . y >= threshold, written as -c . y <= -threshold
            network.addInequality([int(outputs[j]) for j in used], [-float(c[j]) for j in used], -float(threshold))
            remaining = max(1, int(limit - (time.perf_counter() - started)))
            options = Marabou.createOptions(verbosity=0, timeoutInSeconds=remaining)
            exit_code, _, _ = _quiet(lambda: network.solve(options=options, verbose=False))
            verdicts.append(exit_code)
    seconds = time.perf_counter() - started
    if verdicts == ["unsat", "sat"]:
        return PeerResult("agrees", value, seconds, "unsat above, sat below")
    if any(v not in ("sat", "unsat") for v in verdicts):
        return PeerResult("limit", None, seconds, "/".join(verdicts))
    return PeerResult("disagrees", None, seconds, f"above: {verdicts[0]}, below: {verdicts[1]}")


def _quiet(call):
    """Run ``call`` with file descriptor 1 sent to /dev/null (Marabou's C++ core prints on stdout)."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            return call()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
