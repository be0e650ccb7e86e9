"""The query ladder: exact maxima and minima of this project's portfolio against the plain big-M MILP and peers.

For each rung (a network shape and an input set) and each of several random seeds (weights and
biases drawn from N(0, 1) / sqrt(fan_in)), three questions: max y[0], min y[0], and ``fires`` for
neuron 0 of the last ReLU layer (its exact maximum pre-activation). Each is answered by

* ours: :func:`milp.search.queries.maximize` / :func:`~milp.search.queries.fires` (branch and bound
  with optimised bounds, and the whole-box MILP beside it after a moment);
* plain: the big-M MILP with interval bounds, solved by HiGHS in the same process;
* peers, when installed (``pip install -e .[bench]``; see ``benchmarks/peers/ladder.py``): OMLT's
  big-M formulation through Pyomo and HiGHS, the big-M model in gurobipy (size-limited licence),
  and Marabou's two decision queries that confirm the optimum (unsat just above, sat just below).

Each line shows the seconds of each solver ('>= ' at its limit), plain/ours, and whether the proved
optima are identical. The summary gives each rung's worst seed per question and solver; the last
line is the peak resident memory.

    python benchmarks/queries.py                       # every rung, 5 seeds, 120 s per solve
    python benchmarks/queries.py --only 2-16 --seeds 10 --limit 30 --peers gurobi

With ``--acasxu``, the rung is trained networks instead: the exact range of each of ACAS Xu's 5
outputs (its max and its min) over a property's input box, for 7 (network, property) pairs, ours
against the plain model, each optimisation with ``--limit`` seconds. The networks are read from
``$MILP_BENCHMARKS/acasxu``, else ``../shared/benchmarks/acasxu`` beside the checkout.

    python benchmarks/queries.py --acasxu --limit 10
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

import data  # noqa: E402  (benchmarks/data.py: where the benchmark data is)

from milp import Box, Network  # noqa: E402
from milp.bounds.propagate import interval_bounds  # noqa: E402
from milp.core.conditions import value_form  # noqa: E402
from milp.core.deadline import Deadline  # noqa: E402
from milp.core.network import Affine  # noqa: E402
from milp.core.options import SolverOptions  # noqa: E402
from milp.search.exact import milp_maximum  # noqa: E402
from milp.search.queries import fires, maximize  # noqa: E402


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
    return -form


def agreement(optima) -> str:
    """Whether the proved optima ``[(solver, value)]`` are the same, to 1e-6 relative."""
    spread = [v for _, v in optima]
    if all(abs(v - spread[0]) <= 1e-6 * (1 + abs(spread[0])) for v in spread):
        return "identical" if len(spread) > 1 else "one proof" if spread else "none proved"
    return "DIFFER: " + ", ".join(f"{n} {v:.9g}" for n, v in optima)


def unproved(sign: float, seen: float | None, bound: float | None) -> str:
    """An optimum left open at the limit: the interval between the best checked value and the proved
    bound, in the question's own sign."""
    if seen is not None and bound is not None:
        low, high = sorted((sign * seen, sign * bound))
        return f"unknown, in [{low:.4g}, {high:.4g}]"
    if bound is not None:
        return f"unknown, bound {sign * bound:.6g}"
    return "unknown" if seen is None else f"unknown, found {sign * seen:.6g}"


def timed(f):
    started = time.perf_counter()
    value = f()
    return value, time.perf_counter() - started


def questions(net: Network, sizes):
    """(name, network, objective form, peer layers, peer objective c) of each question on one net:
    max y0, min y0, and fires (the maximum pre-activation of neuron 0 of the last ReLU layer)."""
    layers = [(term[0][1], layer.bias) for layer in (*net.relu_layers, net.output) for term in (layer.terms,)]
    last = len(net.relu_layers) - 1
    y0 = value_form(net, "y", 0)
    unit = np.eye(sizes[-1])[0]
    truncated = Network(net.input_dim, net.relu_layers[:last], value_form(net, f"z{last}", 0))
    yield "max y0", net, y0, layers, unit
    yield "min y0", net, negated(y0), layers, -unit
    yield f"fires z{last}[0]", truncated, truncated.output, layers[:last + 1], np.eye(sizes[-2])[0]


def peer_runs(names, layers, lo, hi, c, proved, limit, skipped):
    """Each requested peer on one question: [(name, PeerResult)], noting missing peers once in ``skipped``."""
    from ladder import PeerMissing, gurobi_maximum, marabou_decide, omlt_maximum

    runs = []
    for name in names:
        if name in skipped:
            continue
        try:
            if name == "marabou":
                if proved is None:
                    continue  # Marabou decides; without a proved optimum there is nothing to confirm
                runs.append((name, marabou_decide(layers, lo, hi, c, proved, limit)))
            else:
                runs.append((name, (omlt_maximum if name == "omlt" else gurobi_maximum)(layers, lo, hi, c, limit)))
        except PeerMissing as missing:
            skipped[name] = str(missing)
            print(f"  skipping {name}: {missing}", flush=True)
    return runs


# (network, property) pairs of the ACAS Xu range rung: the big boxes of properties 1-4 and a few nets
ACAS_PAIRS = (("1_1", 3), ("4_2", 1), ("1_1", 1), ("3_3", 3), ("5_3", 4), ("2_1", 2), ("1_9", 4))


def acas_ranges(limit: float) -> int:
    """The ACAS Xu range rung: each output's max and min over a property's box, ours and plain."""
    from importers import load_onnx
    from milp.io.vnnlib import read_vnnlib

    folder = data.require("acasxu", needs=("onnx/", "vnnlib/"))
    totals = {"ours": [0, 0.0], "plain": [0, 0.0]}
    worst = {"ours": (0.0, ""), "plain": (0.0, "")}
    for name, prop in ACAS_PAIRS:
        net = load_onnx(folder / "onnx" / f"ACASXU_run2a_{name}_batch_2000.onnx")
        box = read_vnnlib(folder / "vnnlib" / f"prop_{prop}.vnnlib", net.input_dim, net.output_dim).disjuncts[0].box
        plain_bounds = interval_bounds(net, box)  # the plain model's, the same for every output
        print(f"\n== ACAS Xu {name}, property {prop}'s box", flush=True)
        for output in range(net.output_dim):
            for side, sign in (("max", 1.0), ("min", -1.0)):
                form = value_form(net, "y", output)
                form = form if sign > 0 else negated(form)
                ours, seconds = timed(lambda: maximize(net, box, form, deadline=Deadline.after(limit)))
                plain, plain_seconds = timed(lambda: milp_maximum(net, box, plain_bounds, form, None, Deadline.after(limit), SolverOptions(), plain=True))
                cells = []
                for solver, result, spent in (("ours", ours, seconds), ("plain", plain, plain_seconds)):
                    done = result.status == "optimal"
                    totals[solver][0] += done
                    totals[solver][1] += spent
                    if spent >= worst[solver][0]:
                        worst[solver] = (spent, f"{name} prop {prop} {side} y{output}" + ("" if done else " open"))
                    cells.append(f"{solver} {'   ' if done else '>= '}{spent:6.2f} s")
                shown = f"{sign * ours.value:.9g}" if ours.status == "optimal" else unproved(sign, ours.value, ours.upper_bound)
                agree = agreement([(solver, sign * result.value) for solver, result in (("ours", ours), ("plain", plain)) if result.status == "optimal"])
                print(f"  {side} y{output} = {shown:28s} " + "  ".join(cells) + f"  ({plain_seconds / seconds:5.1f}x)  {agree}", flush=True)
    count = 2 * 5 * len(ACAS_PAIRS)
    print(f"\nproved within {limit:g} s each, of {count}:")
    for solver, (proved, spent) in totals.items():
        print(f"  {solver:6s} {proved:3d}  in {spent:7.1f} s; slowest {worst[solver][0]:.2f} s ({worst[solver][1]})")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=120.0, help="seconds per solve, ours and plain (default 120)")
    parser.add_argument("--peer-limit", type=float, default=None, help="seconds per peer solve (default: --limit)")
    parser.add_argument("--seeds", type=int, default=5, help="random networks per rung (default 5)")
    parser.add_argument("--only", default=None, help="only rungs whose name contains this text")
    parser.add_argument("--peers", default="omlt,gurobi,marabou", help="comma-separated peers to run beside ours, or 'none' (default omlt,gurobi,marabou)")
    parser.add_argument("--acasxu", action="store_true", help="the ACAS Xu range rung (trained networks) instead of the random ladder; --seeds, --only and --peers do not apply")
    args = parser.parse_args(argv)
    if not args.limit > 0:
        parser.error("--limit must be a positive number of seconds")
    if args.acasxu:
        return acas_ranges(args.limit)
    names = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    unknown = sorted(set(names) - {"omlt", "gurobi", "marabou"})
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}: choose from omlt, gurobi, marabou")
    peer_limit = args.peer_limit if args.peer_limit is not None else args.limit
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
    skipped: dict[str, str] = {}
    summary = []
    for name, sizes, make_box in rungs():
        if args.only and args.only not in name:
            continue
        print(f"\n== {name}", flush=True)
        worst: dict[tuple[str, str], tuple] = {}
        for seed in range(args.seeds):
            net, box = random_mlp(sizes, seed), make_box(seed)
            for question, sub, form, layers, c in questions(net, sizes):
                if question.startswith("fires"):
                    found, seconds = timed(lambda: fires(net, box, len(net.relu_layers) - 1, 0, time_limit=args.limit))
                    done, value, bound = found.status != "unknown" and found.maximum is not None, found.maximum, found.upper_bound
                    seen = found.found
                else:
                    found, seconds = timed(lambda: maximize(sub, box, form, deadline=Deadline.after(args.limit)))
                    done, value, bound = found.status == "optimal", found.value, found.upper_bound
                    seen = found.value
                plain, plain_seconds = timed(lambda: milp_maximum(sub, box, interval_bounds(sub, box), form, None, Deadline.after(args.limit), SolverOptions(), plain=True))
                plain_done = plain.status == "optimal"
                proved = value if done else plain.value if plain_done else None
                sign = -1.0 if question.startswith("min") else 1.0
                shown = f"{sign * value:.9g}" if done else unproved(sign, seen, bound)
                optima = [("ours", value)] if done else []
                optima += [("plain", plain.value)] if plain_done else []
                cells = [f"ours {'>= ' if not done else '   '}{seconds:7.2f} s", f"plain {'>= ' if not plain_done else '   '}{plain_seconds:7.2f} s ({plain_seconds / seconds:5.1f}x)"]
                times = {"ours": (seconds, done), "plain": (plain_seconds, plain_done)}
                for peer, result in peer_runs(names, layers, box.lower, box.upper, c, proved, peer_limit, skipped):
                    finished = result.status in ("optimal", "agrees")
                    times[peer] = (result.seconds, finished)
                    if result.status == "optimal":
                        optima.append((peer, result.value))
                    detail = result.detail
                    if result.upper is not None:  # the peer's proved interval, in the question's own sign
                        ends = sorted(sign * v for v in (result.lower, result.upper) if v is not None)
                        detail = ("range " if len(ends) == 2 else "bound ") + ", ".join(f"{v:.6g}" for v in ends)
                    note = "" if finished else f" [{result.status}{': ' + detail if detail else ''}]"
                    cells.append(f"{peer} {'>= ' if not finished else '   '}{result.seconds:7.2f} s{note}")
                    if result.status == "disagrees":
                        optima.append((peer, float("nan")))
                agree = agreement(optima)
                print(f"  seed {seed} {question:12s} = {shown:26s} " + "  ".join(cells) + f"   optima {agree}", flush=True)
                for solver, (spent, finished) in times.items():
                    key = (question, solver)
                    if key not in worst or spent >= worst[key][0]:
                        worst[key] = (spent, seed, finished, plain_seconds / seconds if solver == "ours" else None)
        for (question, solver), (spent, seed, finished, ratio) in worst.items():
            extra = f" (plain/ours {ratio:.1f}x)" if ratio is not None else ""
            summary.append(f"  {name:28s} {question:12s} {solver:8s} worst seed {seed}: {'>= ' if not finished else ''}{spent:.2f} s{extra}")
    print("\nworst seed per rung, question and solver:")
    print("\n".join(summary))
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
