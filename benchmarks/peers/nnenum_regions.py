"""Count the activation regions (stars) of a ReLU network over an input box with nnenum.

    PYTHONPATH=NNENUM/src PYTHON benchmarks/peers/nnenum_regions.py NET.onnx L0,L1,... U0,U1,...

nnenum is not on PyPI: clone its public repository and run this with a Python that has its
requirements (numpy, scipy, onnx<1.17, onnxruntime, skl2onnx, swiglpk, termcolor).
``benchmarks/regions.py --nnenum PYTHON:NNENUM/src`` runs it beside milp.

Prints one JSON line: {"tool": "nnenum", "regions": N, "zero_volume": null, "seconds": S, ...}.

nnenum runs in exact mode (BRANCH_EXACT, no spec, no overapproximation, no quick overapprox,
one process, no parallel root LPs) so it splits every neuron whose LP range over the current
star straddles zero (by more than Settings.SPLIT_TOLERANCE) and counts every leaf star.
A split is only made when both sides have points with |pre-activation| > SPLIT_TOLERANCE, so
every star is full-dimensional; nnenum has no separate zero-volume count (null).
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json
import multiprocessing
import sys
import time

import numpy as np

from nnenum.enumerate import enumerate_network
from nnenum.onnx_network import load_onnx_network, load_onnx_network_optimized
from nnenum.result import Result
from nnenum.settings import Settings


def configure():
    Settings.NUM_PROCESSES = 1
    Settings.NUM_LP_PROCESSES = 1
    Settings.PARALLEL_ROOT_LP = False  # otherwise near the root it starts a multiprocessing Pool
    Settings.SPLIT_IF_IDLE = False
    Settings.BRANCH_MODE = Settings.BRANCH_EXACT  # exact enumeration, no overapproximation rounds
    Settings.TRY_QUICK_OVERAPPROX = False
    Settings.SINGLE_SET = False
    Settings.OVERAPPROX_TYPES = []
    Settings.OVERAPPROX_TYPES_NEAR_ROOT = []
    Settings.FIND_CONCRETE_COUNTEREXAMPLES = False
    Settings.RESULT_SAVE_STARS = False
    Settings.RESULT_SAVE_POLYS = False
    Settings.TIMEOUT = np.inf
    Settings.PRINT_OUTPUT = False
    Settings.PRINT_PROGRESS = False
    Settings.TIMING_STATS = False


def main():
    args = [a for a in sys.argv[1:] if a != "--radii"]
    radii = "--radii" in sys.argv[1:]  # diagnostic only: keeps the stars, then measures each one
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    onnx_path = args[0]
    lower = np.array([float(v) for v in args[1].split(",")])
    upper = np.array([float(v) for v in args[2].split(",")])
    assert lower.shape == upper.shape and np.all(lower <= upper)

    configure()
    Settings.RESULT_SAVE_STARS = radii
    try:
        network = load_onnx_network_optimized(onnx_path)
    except Exception:  # unsupported layer for the optimized loader
        network = load_onnx_network(onnx_path)
    init_box = np.array(list(zip(lower, upper)), dtype=np.float64)  # same box as the other tools (nnenum.py would use the ONNX float32)

    # Result() starts a multiprocessing.Manager (a helper process, only used for saved stars/polys);
    # start it now so its startup is not in the timed search.
    if Result.manager is None:
        Result.manager = multiprocessing.Manager()

    start = time.perf_counter()
    result = enumerate_network(init_box, network, spec=None)
    seconds = time.perf_counter() - start

    line = {
        "tool": "nnenum",
        "regions": int(result.total_stars),
        "zero_volume": None,
        "seconds": round(seconds, 4),
        "status": result.result_str,  # "none" = enumeration completed without a spec
        "lps": int(result.total_lps),
    }
    if radii:
        line["radii"] = star_radii(result.stars, lower, upper)
    print(json.dumps(line), flush=True)


def star_radii(stars, lower, upper):
    """Chebyshev radius (largest inscribed ball, in input space) of each saved star: how many are
    below 1e-7 (what milp's default REGION_TOLERANCE would call lower-dimensional for boxes of width <= 1)."""
    from scipy.optimize import linprog

    out = []
    for star in stars:
        assert star.init_bm is None or np.allclose(star.init_bm, np.eye(len(lower))), "compressed input box"
        a = star.lpi.get_constraints_csr().toarray()
        b = star.lpi.get_rhs()
        n = a.shape[1]
        rows = np.vstack([a, np.eye(n), -np.eye(n)])
        rhs = np.concatenate([b, upper, -lower])
        norms = np.linalg.norm(rows, axis=1)
        keep = norms > 0
        rows, rhs, norms = rows[keep], rhs[keep], norms[keep]
        cost = np.zeros(n + 1)
        cost[-1] = -1.0
        res = linprog(cost, A_ub=np.hstack([rows, norms[:, None]]), b_ub=rhs,
                      bounds=[(None, None)] * n + [(0, None)], method="highs")
        out.append(float(res.x[-1]) if res.status == 0 else -1.0)
    out = np.array(out)
    return {"min": float(out.min()), "below_1e-7": int(np.sum(out < 1e-7)),
            "below_1e-6": int(np.sum(out < 1e-6)), "smallest": sorted(out.tolist())[:8]}


if __name__ == "__main__":
    main()
