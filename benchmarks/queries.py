"""The query ladder: exact maxima and minima of this project's portfolio against the plain big-M MILP.

For each rung (a network shape and an input set) and each of several random seeds (weights and
biases drawn from N(0, 1) / sqrt(fan_in)), prints the seconds to prove max y[0] and min y[0] (and,
with --fires, the maximum of a last-layer neuron), by

* ours: :func:`milp.search.queries.maximize` (branch and bound with optimised bounds, and the
  whole-box MILP beside it after a moment);
* plain: the big-M MILP with interval bounds, solved by HiGHS in the same process;

with both optima, their ratio, and each rung's worst seed. A run at its limit is shown as
'>= limit' (so its ratio is a bound). The last line is the peak resident memory.

    python benchmarks/queries.py                       # every rung, 5 seeds, 120 s per solve
    python benchmarks/queries.py --only 2-16 --seeds 10 --limit 30
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one BLAS thread: the second core is the portfolio's MILP

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from milp import Box, Network  # noqa: E402
from milp.bounds.propagate import interval_bounds  # noqa: E402
from milp.core.conditions import value_form  # noqa: E402
from milp.core.deadline import Deadline  # noqa: E402
from milp.core.network import Affine  # noqa: E402
from milp.core.options import SolverOptions  # noqa: E402
from milp.search.exact import milp_maximum  # noqa: E402
from milp.search.queries import maximize  # noqa: E402


def random_mlp(sizes, seed: int) -> Network:
    """Weights and biases N(0, 1) / sqrt(fan_in)."""
    rng = np.random.default_rng(seed)
    return Network.mlp([(rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal(m) / np.sqrt(n)) for n, m in zip(sizes[:-1], sizes[1:])])


def rungs():
    """(name, sizes, box maker) of each rung; the box may depend on the seed."""
    cube = lambda d, r: (lambda seed: Box(np.full(d, -r), np.full(d, r)))  # noqa: E731

    def mnist_ball(seed):
        centre = np.random.default_rng(1000 + seed).uniform(0, 1, 784)
        return Box(np.clip(centre - 0.02, 0, 1), np.clip(centre + 0.02, 0, 1))

    yield "2-16-16-16-1 [-1,1]^2", [2, 16, 16, 16, 1], cube(2, 1.0)
    yield "5-50x6-5 [-1,1]^5", [5] + [50] * 6 + [5], cube(5, 1.0)
    yield "10-64x4-1 [-1,1]^10", [10] + [64] * 4 + [1], cube(10, 1.0)
    yield "784-100-100-10 L_inf 0.02", [784, 100, 100, 10], mnist_ball


def negated(form: Affine) -> Affine:
    return Affine(tuple((s, -w) for s, w in form.terms), -form.bias)


def timed(f):
    started = time.perf_counter()
    value = f()
    return value, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=120.0, help="seconds per solve, ours and plain (default 120)")
    parser.add_argument("--seeds", type=int, default=5, help="random networks per rung (default 5)")
    parser.add_argument("--only", default=None, help="only rungs whose name contains this text")
    args = parser.parse_args(argv)
    summary = []
    for name, sizes, make_box in rungs():
        if args.only and args.only not in name:
            continue
        print(f"\n== {name}", flush=True)
        worst = {"max": (0.0, None), "min": (0.0, None)}
        for seed in range(args.seeds):
            net, box = random_mlp(sizes, seed), make_box(seed)
            y0 = value_form(net, "y", 0)
            for side, form in (("max", y0), ("min", negated(y0))):
                sign = 1.0 if side == "max" else -1.0
                ours, seconds = timed(lambda: maximize(net, box, form, deadline=Deadline.after(args.limit)))
                plain, plain_seconds = timed(lambda: milp_maximum(net, box, interval_bounds(net, box), form, None, Deadline.after(args.limit), SolverOptions()))
                done, plain_done = ours.status == "optimal", plain.status == "optimal"
                same = done and plain_done and abs(ours.value - plain.value) <= 1e-6 * (1 + abs(ours.value))
                value = f"{sign * ours.value:.9g}" if done else f"unknown, bound {sign * ours.upper_bound:.6g}" if ours.upper_bound is not None else "unknown"
                ratio = plain_seconds / seconds
                agree = "identical" if same else "plain capped" if done and not plain_done else "ours capped" if plain_done and not done else "both capped" if not done else "DIFFER"
                print(f"  seed {seed} {side} y0 = {value:30s} ours {'>= ' if not done else '   '}{seconds:7.2f} s   "
                      f"plain {'>= ' if not plain_done else '   '}{plain_seconds:7.2f} s   plain/ours {ratio:7.1f}   optima {agree}", flush=True)
                if seconds >= worst[side][0]:
                    worst[side] = (seconds, seed, done, ratio)
        for side in ("max", "min"):
            seconds, seed, done, ratio = worst[side]
            summary.append(f"  {name:28s} {side}: worst seed {seed}: {'>= ' if not done else ''}{seconds:.2f} s (plain/ours {ratio:.1f})")
    print("\nworst seed per rung:")
    print("\n".join(summary))
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
