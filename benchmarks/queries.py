"""Speed of the exact queries against a plain big-M baseline, measured in one process.

For a ladder of networks, prints: unstable neurons per bound method (and the seconds to
compute them), then for `range` (max and min of y[0]) and `fires` (a last-layer neuron) the
seconds of this project's default path and of the baseline — the plain big-M MILP with
interval bounds, built through Pyomo and solved by HiGHS — with both optima and the ratio.

    python benchmarks/queries.py [--baseline-limit 120] [--only NAME]

The baseline is capped at --baseline-limit seconds; a capped run is shown as '>= limit'
(so its ratio is a lower bound).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from milp import Box, Network
from milp.core.conditions import value_form
from milp.core.network import Affine
from milp.solvers.pyomo import solve_pyomo
from milp.search.queries import fires, output_range
from milp.search.tighten import BOUND_METHODS, pre_activation_bounds

import data  # benchmarks/data.py: where the benchmark data is


def random_mlp(sizes, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    layers = [(rng.standard_normal((m, n)) * np.sqrt(2.0 / n), rng.standard_normal(m) * 0.1) for n, m in zip(sizes[:-1], sizes[1:])]
    return Network.mlp(layers)


def ladder():
    yield "2-16-16-16-1 [-1,1]^2", random_mlp([2, 16, 16, 16, 1], 0), Box(np.full(2, -1.0), np.full(2, 1.0))
    folder, problem = data.find("acasxu", needs=(data.ACAS_NETWORK,))
    if problem is None:
        from importers import load_onnx

        net = load_onnx(folder / data.ACAS_NETWORK)
        # ACAS Xu property 3's box
        lower = np.array([-0.303531156, -0.009549297, 0.493380324, 0.3, 0.3])
        upper = np.array([-0.298552812, 0.009549297, 0.5, 0.5, 0.5])
        yield "ACAS Xu 1_1 5-50x6-5 (prop 3 box)", net, Box(lower, upper)
    else:
        print(data.skip_message(problem, "ACAS Xu rung skipped (the random 5-50x6-5 net still runs)"), file=sys.stderr)
    yield "random 5-50x6-5 [-0.1,0.1]^5", random_mlp([5] + [50] * 6 + [5], 1), Box(np.full(5, -0.1), np.full(5, 0.1))
    rng = np.random.default_rng(2)
    centre = rng.uniform(0, 1, 784)
    yield "784-100-100-10 L_inf 0.01", random_mlp([784, 100, 100, 10], 2), Box(np.clip(centre - 0.01, 0, 1), np.clip(centre + 0.01, 0, 1))
    yield "10-64x4-1 [-0.2,0.2]^10", random_mlp([10, 64, 64, 64, 64, 1], 3), Box(np.full(10, -0.2), np.full(10, 0.2))


def timed(f):
    started = time.perf_counter()
    value = f()
    return value, time.perf_counter() - started


def compare(query: str, ours: float, detail: str, baseline: float, capped: bool, mine_ok: bool, agree: bool) -> tuple[float, bool]:
    """Print one query's line (ours, the baseline, their ratio, whether the optima agree); returns (ratio, capped)."""
    ratio = baseline / ours
    at_least = ">= " if capped else ""
    verdict = "identical" if agree else "baseline capped" if capped else "ours capped" if not mine_ok else "DIFFER"
    print(f"  {query}: ours {ours:8.3f} s  {detail}   baseline {at_least}{baseline:8.3f} s   ratio {at_least}{ratio:7.1f}x   optima {verdict}")
    return ratio, capped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-limit", type=float, default=120.0, help="seconds per baseline solve (default 120)")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds per query of ours (default 120; past it: unknown)")
    parser.add_argument("--only", default=None, help="run only ladder rungs whose name contains this text")
    args = parser.parse_args(argv)
    ratios = []
    for name, net, box in ladder():
        if args.only and args.only not in name:
            continue
        print(f"\n== {name}: {net.neuron_count} ReLU neurons")
        for method in BOUND_METHODS:
            bounds, seconds = timed(lambda: pre_activation_bounds(net, box, method))
            print(f"  unstable by {method:9s}: {bounds.unstable_count:5d}   ({seconds:.3f} s)")
        y0 = value_form(net, "y", 0)
        neg = Affine(tuple((s, -w) for s, w in y0.terms), -y0.bias)
        result, ours = timed(lambda: output_range(net, box, [0], time_limit=args.limit).outputs[0])
        top, base_max = timed(lambda: solve_pyomo(net, box, y0, True, "interval", time_limit=args.baseline_limit))
        bottom, base_min = timed(lambda: solve_pyomo(net, box, neg, True, "interval", time_limit=args.baseline_limit))
        baseline = base_max + base_min
        capped = top.status != "optimal" or bottom.status != "optimal"
        mine_ok = result.status == "exact"
        agree = (not capped) and mine_ok and abs(top.objective - result.max) <= 1e-6 * (1 + abs(result.max)) and abs(-bottom.objective - result.min) <= 1e-6 * (1 + abs(result.min))
        detail = f"[{result.min}, {result.max}] ({result.status}; bounds [{result.min_bound:.6g}, {result.max_bound:.6g}])"
        ratios.append((name, "range", *compare("range y[0]", ours, detail, baseline, capped, mine_ok, agree)))
        layer, neuron = len(net.widths) - 1, 0
        z = value_form(net, f"z{layer}", neuron)
        sub = Network(net.input_dim, net.relu_layers[:layer], z)
        answer, ours = timed(lambda: fires(net, box, layer, neuron, time_limit=args.limit))
        base, baseline = timed(lambda: solve_pyomo(sub, box, z, True, "interval", time_limit=args.baseline_limit))
        capped = base.status != "optimal"
        mine_ok = answer.maximum is not None
        agree = (not capped) and mine_ok and abs(base.objective - answer.maximum) <= 1e-6 * (1 + abs(answer.maximum))
        detail = f"max {answer.maximum} ({answer.status})"
        ratios.append((name, "fires", *compare(f"fires z{layer}[{neuron}]", ours, detail, baseline, capped, mine_ok, agree)))
    print("\nsummary (baseline seconds / ours):")
    for name, query, ratio, capped in ratios:
        print(f"  {name:38s} {query:6s} {'>= ' if capped else '   '}{ratio:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
