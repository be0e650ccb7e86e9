"""Count the activation regions of a ReLU network over an input box with relucent (1.0.0).

    PYTHON benchmarks/peers/relucent_regions.py NET.onnx L0,L1,... U0,U1,... [--max-polys N] [--no-verify]

relucent is on PyPI (``pip install -e .[bench]``; it solves its LPs with gurobipy's bundled,
size-limited licence). ``benchmarks/regions.py --relucent PYTHON`` runs it beside milp.

Prints one JSON line: {"tool": "relucent", "regions": N, "zero_volume": null, "seconds": S, ...}.

How the box is handled: relucent only restricts a search to a cube [-r, r]^d centred at the
origin, so the box [L, U] is folded into the first layer (x = c + h * z, z in [-1, 1]^d; the
regions of the folded network over the cube are exactly those of the original over the box),
and the search is Complex.bfs(start=0 (the box centre), cube_radius=1, cube_mode="intersect")
(relucent's documented way to explore only the cells that meet the cube). Each cell's facets
are computed on the whole (unclipped) cell, with relucent's default LP box radius, so the
search also evaluates the neighbours just outside the cube before dropping them.
(Confining the facet LPs to the cube with bound=1, escalate_bound=False was tried: it raises
AmbiguousGeometryError on rand_0, so it is not used.)

--max-polys N: stop after N cells (for a rate estimate on big boxes; "complete" is then false).

Single process: relucent always runs its search through a multiprocessing pool (nworkers=1
still means one worker process beside the main one, which overlap); here the pool is replaced
by an in-process serial map, and the Gurobi environment is started with Threads=1.
verify=True (relucent's default; certifies at the end that the dual graph is complete w.r.t.
the cells' LP facets, within the cube) unless --no-verify is given; it is part of the timing.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RELUCENT_VERBOSE", "0")

import argparse
import json
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

import relucent
from relucent.model.model import LinearLayer, ReLULayer, ReLUNetwork


# --------------------------------------------------------------------------- ONNX -> layers
def onnx_affine_relu_layers(path):
    """[(W (out, in), b (out,)), ...] for a chain of affine maps separated by Relu.

    Handles Gemm (alpha, beta, transA=0, transB), MatMul, Add/Sub of a constant, and the shape-only
    ops Flatten/Reshape/Identity/Dropout/Squeeze/Unsqueeze (assumed to keep a flat vector).
    """
    model = onnx.load(path)
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init).astype(np.float64) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t).astype(np.float64)
    inputs = [i.name for i in graph.input if i.name not in consts]
    assert len(inputs) == 1, f"expected one network input, got {inputs}"
    (graph_input,) = [i for i in graph.input if i.name == inputs[0]]
    # flat input size: product of the fixed dims (a symbolic batch dim has dim_value 0)
    n_in = int(np.prod([d.dim_value for d in graph_input.type.tensor_type.shape.dim if d.dim_value > 0]))

    current = inputs[0]
    W = np.eye(n_in)
    b = np.zeros(n_in)
    layers = []
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        data_inputs = [i for i in node.input if i and i not in consts]
        assert data_inputs == [current], f"not a simple chain at {node.op_type} {node.name}: {list(node.input)}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "Gemm":
            assert node.input[0] == current and not attrs.get("transA", 0)
            B = consts[node.input[1]]
            B = B.T if attrs.get("transB", 0) else B  # now (in, out)
            alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
            M = alpha * B.T
            W, b = M @ W, M @ b
            if len(node.input) > 2 and node.input[2]:
                b = b + beta * consts[node.input[2]].reshape(-1)
        elif op == "MatMul":
            assert node.input[0] == current
            M = consts[node.input[1]].T
            W, b = M @ W, M @ b
        elif op in ("Add", "Sub"):
            other = [i for i in node.input if i != current][0]
            c = np.broadcast_to(consts[other].reshape(-1), b.shape)
            if op == "Add":
                b = b + c
            elif node.input[0] == current:  # x - c
                b = b - c
            else:  # c - x
                W, b = -W, c - b
        elif op in ("Flatten", "Reshape", "Identity", "Dropout", "Squeeze", "Unsqueeze"):
            pass
        elif op == "Relu":
            layers.append((W, b))
            W, b = np.eye(W.shape[0]), np.zeros(W.shape[0])
        else:
            raise ValueError(f"unsupported ONNX op {op}")
        current = node.output[0]
    layers.append((W, b))
    return layers


def network_on_unit_cube(layers, lower, upper):
    """ReLUNetwork whose input z in [-1, 1]^d stands for x = c + h * z in the box [lower, upper]."""
    centre, half = (lower + upper) / 2.0, (upper - lower) / 2.0
    W0, b0 = layers[0]
    layers = [(W0 * half[None, :], b0 + W0 @ centre)] + list(layers[1:])
    canon = []
    for k, (W, b) in enumerate(layers):
        canon.append(LinearLayer(weight=np.ascontiguousarray(W, dtype=np.float64),
                                 bias=np.asarray(b, dtype=np.float64).reshape(1, -1)))
        if k < len(layers) - 1:
            canon.append(ReLULayer())
    return ReLUNetwork(canon, input_shape=(W0.shape[1],))


# --------------------------------------------------------------------------- one process
class SerialPool:
    """Stands in for relucent's WorkerPool: runs every task in this process, lazily, in order."""

    def __init__(self, processes=None, initializer=None, initargs=()):
        if initializer is not None:
            initializer(*initargs)

    def imap_unordered(self, func, iterable, chunksize=1):
        return (func(item) for item in iterable)

    imap = imap_unordered

    def map(self, func, iterable, chunksize=None):
        return [func(item) for item in iterable]

    def starmap(self, func, iterable, chunksize=None):
        return [func(*item) for item in iterable]

    def shutdown(self):
        pass

    terminate = shutdown

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def single_process():
    import relucent.search.engine as engine
    import relucent.verify.certify as certify
    from relucent._internal.gurobi import get_env

    import relucent.graph.complex_graph, relucent.graph.meta_graph, relucent.graph.vertex_star  # noqa: F401 (lazy imports, keep them out of the timing)

    engine.worker_pool = SerialPool
    certify.worker_pool = SerialPool
    get_env(num_threads=1)  # cached: every later get_env() (also in the "workers") returns this one


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("onnx")
    parser.add_argument("lower")
    parser.add_argument("upper")
    parser.add_argument("--max-polys", type=int, default=None)
    parser.add_argument("--no-verify", action="store_true")
    argv, options = sys.argv[1:], []
    if "--no-verify" in argv:
        argv.remove("--no-verify")
        options.append("--no-verify")
    if "--max-polys" in argv:
        i = argv.index("--max-polys")
        options, argv = options + argv[i:i + 2], argv[:i] + argv[i + 2:]
    args = parser.parse_args(options + ["--"] + argv)  # bounds like -1,-1 are not options
    lower = np.array([float(v) for v in args.lower.split(",")])
    upper = np.array([float(v) for v in args.upper.split(",")])
    assert lower.shape == upper.shape and np.all(lower < upper)

    relucent.update_settings(VERBOSE=0)
    single_process()
    layers = onnx_affine_relu_layers(args.onnx)
    assert layers[0][0].shape[1] == lower.size, f"network has {layers[0][0].shape[1]} inputs, box {lower.size}"
    net = network_on_unit_cube(layers, lower, upper)
    cplx = relucent.Complex(net)

    start = np.zeros(lower.size)  # the box centre
    if (cplx.point2ss(start[None, :]) == 0).any():  # on a hyperplane: nudge it
        start = start + np.random.default_rng(0).uniform(-1e-6, 1e-6, size=start.size)

    kwargs = dict(start=start, nworkers=1, cube_radius=1.0, cube_mode="intersect",
                  verify=not args.no_verify, verbose=0)
    if args.max_polys:
        kwargs["max_polys"] = args.max_polys

    t0 = time.perf_counter()
    result = cplx.bfs(**kwargs)
    seconds = time.perf_counter() - t0

    dims = [int(p.dim) for p in cplx]
    full = sum(d == lower.size for d in dims)
    print(json.dumps({
        "tool": "relucent",
        "regions": full,
        "zero_volume": None,
        "seconds": round(seconds, 4),
        "ms_per_region": round(1000 * seconds / max(full, 1), 2),
        "complete": bool(result.complete),
        "verified": bool(result.verified),
        "cells": len(cplx),  # every cell kept (all full-dimensional in a bfs)
        "failed_neighbour_lps": len(result.bad_shi_computations),
        "depth": int(result.depth),
    }), flush=True)


if __name__ == "__main__":
    main()
