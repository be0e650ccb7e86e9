"""Speed of region enumeration, for both engines, on a ladder of networks (one process).

For each rung: regions, seconds, milliseconds per region, LPs and MILPs per region for the
`tree` (default) and `nogood` engines, whether both list the identical set, how the cost per
region grows as regions accumulate (seconds per tenth of the list), and how many orthants the
naive per-layer "un-ReLU" would visit: sum over layers of (regions of the layers before) x
2^width.

    python benchmarks/regions.py [--only NAME] [--time-limit S] [--skip-nogood]

With ``--compare``, the side-by-side table instead: five random 2-16-16-16-1 nets over
``[-1,1]^2`` and ACAS Xu 1_1 over the property-3 box shrunk 2x (and whole, with
``--full-acas``), each engine timed in one process, best of ``--repeat`` runs, beside the peers:

    python benchmarks/regions.py --compare [--nnenum PYTHON:NNENUM_SRC] [--relucent PYTHON] [--full-acas]

With ``--conditions``, the regions where an output condition holds, listed by the tree with and
without dropping the nodes that bounds prove to miss the condition (in one process, one after the
other): random nets (N(0,1)/sqrt(fan_in) weights, seeds 0-4) over ``[-1,1]^d`` with ``y[0] >= q`` at
the 95th and 50th percentile of y0 (and, on seed 0, a condition that always holds: the check's
worst case), and ACAS Xu 1_1 over the property-3 box shrunk 2x with two output conditions:

    python benchmarks/regions.py --conditions

nnenum is not on PyPI: clone its public repository and give a Python that has its requirements
and the path of its ``src``. relucent is on PyPI (``pip install -e .[bench]``); ``--relucent``
names the Python it is installed in. A peer not given, or not importable, is skipped with a
message. The drivers are ``benchmarks/peers/*.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from milp import Box, Network, parse_box
from milp.core.network import Affine
from milp.enumeration.engines import regions
from milp.enumeration.tree import SearchStats, split_search
from milp.core.conditions import parse_conditions
from milp.search.tighten import pre_activation_bounds
from milp.core.tolerances import REGION_TOLERANCE

import data  # benchmarks/data.py: where the benchmark data is

PROPERTY_3 = (np.array([-0.303531156, -0.009549297, 0.493380324, 0.3, 0.3]), np.array([-0.298552812, 0.009549297, 0.5, 0.5, 0.5]))


def random_mlp(sizes, seed: int, output_relu: bool = False) -> Network:
    rng = np.random.default_rng(seed)
    layers = [(rng.standard_normal((m, n)), rng.standard_normal(m)) for n, m in zip(sizes[:-1], sizes[1:])]
    return Network.mlp(layers, output_relu=output_relu)


def chained(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    up1, b1 = rng.standard_normal((10, 2)), rng.standard_normal(10) * 0.5
    down = rng.standard_normal((2, 10)) / 3
    up2, b2 = rng.standard_normal((10, 2)), rng.standard_normal(10) * 0.5
    return Network.mlp([(up1, b1), (up2 @ down, b2)], output_relu=True)


def ladder(args):
    for seed in range(3):
        yield f"2-16-16-16-1 [-1,1]^2 seed {seed}", random_mlp([2, 16, 16, 16, 1], seed), parse_box("-1:1", 2), []
    yield "chained 2-10-2-10 [-6,6]^2, y[0] > 0", chained(4), parse_box("-6:6", 2), ["y[0] > 0"]
    yield "3-8-8-2 [-1,1]^3, y[0] - y[1] > 0", random_mlp([3, 8, 8, 2], 5), parse_box("-1:1", 3), ["y[0] - y[1] > 0"]
    folder, problem = data.find("acasxu", needs=(data.ACAS_NETWORK,))
    if problem is None:
        from importers import load_onnx

        net = load_onnx(folder / data.ACAS_NETWORK)
        lower, upper = PROPERTY_3
        centre, half = (lower + upper) / 2, (upper - lower) / 2
        yield "ACAS Xu 1_1, property-3 box shrunk 4x", net, Box(centre - half / 4, centre + half / 4), []
        if args.full_acas:
            yield "ACAS Xu 1_1, property-3 box", net, Box(lower, upper), []
    else:
        print(data.skip_message(problem, "ACAS Xu rungs skipped"), file=sys.stderr)


def truncated(network: Network, layers: int) -> Network:
    width = network.widths[layers - 1]
    return Network(network.input_dim, network.relu_layers[:layers], Affine(((layers, np.eye(width)),), np.zeros(width)))


def naive_orthants(network: Network, box: Box, time_limit: float | None) -> str:
    """sum_l R_{l-1} 2^{w_l}, with R_l the regions of the first l layers (R_0 = 1)."""
    total, previous = 0, 1
    for layer, width in enumerate(network.widths):
        total += previous * 2**width
        if layer + 1 < len(network.widths):
            search = regions(truncated(network, layer + 1), box, time_limit=time_limit)
            previous = sum(1 for _ in search)
            if not search.complete:
                return f">= {total:.3g} (stopped counting)"
    return f"{total:.3g}"


def run(network, box, where, method, time_limit):
    search = regions(network, box, where, method=method, time_limit=time_limit)
    started = time.perf_counter()
    stamps, patterns = [], []
    for region in search:
        stamps.append(time.perf_counter() - started)
        patterns.append(region.pattern)
    return search, np.array(stamps), patterns


PEERS = Path(__file__).resolve().parent / "peers"


def compare_rungs(args):
    """The side-by-side table's rungs: (name, network, box, onnx path or None)."""
    for seed in range(5):
        yield f"2-16-16-16-1 [-1,1]^2 seed {seed}", random_mlp([2, 16, 16, 16, 1], seed), parse_box("-1:1", 2), None
    folder, problem = data.find("acasxu", needs=(data.ACAS_NETWORK,))
    if problem is not None:
        print(data.skip_message(problem, "ACAS Xu rungs skipped"), file=sys.stderr)
        return
    from importers import load_onnx

    path = folder / data.ACAS_NETWORK
    net = load_onnx(path)
    lower, upper = PROPERTY_3
    centre, half = (lower + upper) / 2, (upper - lower) / 2
    yield "ACAS Xu 1_1, property-3 box shrunk 2x", net, Box(centre - half / 2, centre + half / 2), path
    if args.full_acas:
        yield "ACAS Xu 1_1, whole property-3 box", net, Box(lower, upper), path


def time_milp(net, box, repeat: int, time_limit: float):
    """Best of ``repeat`` runs of the default engine, streaming (the list is never held)."""
    best = None
    for _ in range(repeat):
        search = regions(net, box, time_limit=time_limit)
        count = sum(1 for _ in search)
        if best is None or search.seconds < best[1]:
            best = (count, search.seconds, search.stats, search.complete)
    return best


def run_peer(command: list[str], env: dict, repeat: int) -> dict | None:
    """Best of ``repeat`` runs of a peer driver (one JSON line on stdout); None with a message when it fails."""
    best = None
    for _ in range(repeat):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  skipped: {Path(command[1]).name} failed ({last})", file=sys.stderr)
            return None
        found = json.loads(lines[-1])
        if best is None or found["seconds"] < best["seconds"]:
            best = found
    return best


def compare(args) -> int:
    threads = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    nnenum = relucent = None
    if args.nnenum:
        python, _, src = args.nnenum.partition(":")
        nnenum = (python, {**os.environ, **threads, "PYTHONPATH": src})
    else:
        print("nnenum skipped: give --nnenum PYTHON:NNENUM_SRC (it is not on PyPI)", file=sys.stderr)
    if args.relucent:
        relucent = (args.relucent, {**os.environ, **threads})
    else:
        print("relucent skipped: give --relucent PYTHON (pip install -e .[bench])", file=sys.stderr)
    print("| net | regions | milp s | ms/region | LPs/region | nnenum s | milp / nnenum | relucent s | relucent / milp |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, net, box, path in compare_rungs(args):
            if args.only and args.only not in name:
                continue
            if path is None:
                from importers import save_onnx

                path = Path(scratch) / "net.onnx"
                save_onnx(net, path)
            count, seconds, stats, complete = time_milp(net, box, args.repeat, args.time_limit)
            bounds = [",".join(repr(float(v)) for v in box.lower), ",".join(repr(float(v)) for v in box.upper)]
            cells = [name, f"{count:,}" + ("" if complete else " (incomplete)"), f"{seconds:.3f}",
                     f"{1e3 * seconds / max(count, 1):.3f}", f"{stats.lps / max(count, 1):.2f}"]
            peer = run_peer([nnenum[0], str(PEERS / "nnenum_regions.py"), str(path), *bounds], nnenum[1], args.repeat) if nnenum else None
            cells += [f"{peer['seconds']:.3f} ({peer['regions']:,})", f"{seconds / peer['seconds']:.2f}"] if peer else ["-", "-"]
            # relucent takes ~50 ms per region: past 2,000 regions its rate comes from its first 200
            sample = count > 2000
            extra = ["--max-polys", "200"] if sample else []
            peer = run_peer([relucent[0], str(PEERS / "relucent_regions.py"), str(path), *bounds, *extra], relucent[1], 1) if relucent else None  # ~50x slower: run once
            if peer and sample:
                estimate = peer["seconds"] / max(peer["regions"], 1) * count
                cells += [f"~{estimate:.0f} (rate of {peer['regions']})", f"~{estimate / seconds:.0f}"]
            elif peer:
                cells += [f"{peer['seconds']:.2f} ({peer['regions']:,})", f"{peer['seconds'] / seconds:.1f}"]
            else:
                cells += ["-", "-"]
            print("| " + " | ".join(cells) + " |", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (milp's runs): {peak:.0f} MiB")
    return 0


def scaled_mlp(sizes, seed: int) -> Network:
    """Weights and biases N(0, 1)/sqrt(fan_in), as the query ladder's."""
    rng = np.random.default_rng(seed)
    layers = [(rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal(m) / np.sqrt(n)) for n, m in zip(sizes[:-1], sizes[1:])]
    return Network.mlp(layers)


def condition_cases():
    """(name, net, box, where) for the --conditions table."""
    for sizes in ([2, 32, 32, 32, 1], [2, 64, 64, 64, 1], [3, 32, 32, 32, 1]):
        shape = "-".join(map(str, sizes))
        for seed in range(5):
            net = scaled_mlp(sizes, seed)
            box = Box(-np.ones(sizes[0]), np.ones(sizes[0]))
            y = net(np.random.default_rng(100 + seed).uniform(-1, 1, (100_000, sizes[0])))[:, 0]
            for q in (0.95, 0.5):
                yield f"{shape} seed {seed}, y0 >= q{int(q * 100)}", net, box, [f"y[0] >= {float(np.quantile(y, q))!r}"]
            if seed == 0:
                yield f"{shape} seed 0, always holds", net, box, [f"y[0] >= {float(y.min()) - 1e3!r}"]
    folder, problem = data.find("acasxu", needs=(data.ACAS_NETWORK,))
    if problem is not None:
        print(data.skip_message(problem, "ACAS Xu cases skipped"), file=sys.stderr)
        return
    from importers import load_onnx

    net = load_onnx(folder / data.ACAS_NETWORK)
    lower, upper = PROPERTY_3
    centre, half = (lower + upper) / 2, (upper - lower) / 2
    box = Box(centre - half / 2, centre + half / 2)
    for where in (["y[3] >= 0.115"], ["y[3] - y[4] >= 0"], ["y[0] >= -1000"]):
        yield f"ACAS Xu 1_1, property-3 box shrunk 2x, {where[0]}", net, box, where


def conditions_table(args) -> int:
    """Regions under a condition, with and without dropping nodes by bounds: the table, and per
    network shape the worst ratio over its seeds."""
    print("| case | regions | nodes with / without | with | without | without / with | identical |")
    print("|---|---|---|---|---|---|---|")
    worst: dict[str, float] = {}
    for name, net, box, where in condition_cases():
        if args.only and args.only not in name:
            continue
        conditions = parse_conditions(net, where)
        bounds = pre_activation_bounds(net, box, "symbolic")
        tol = REGION_TOLERANCE * max(1.0, float(np.max(box.widths)))
        found, seconds, stats = [], [], []
        for prune in (True, False):
            counters = SearchStats()
            started = time.perf_counter()
            patterns = {raw.pattern.tobytes() for raw in split_search(net, box, conditions, bounds, tol, counters, prune_by_bounds=prune)}
            seconds.append(time.perf_counter() - started)
            found.append(patterns)
            stats.append(counters)
        ratio = seconds[1] / seconds[0]
        shape = name.split(" seed")[0].split(",")[0]
        worst[shape] = min(worst.get(shape, np.inf), ratio)
        print(f"| {name} | {len(found[0])} | {stats[0].nodes} / {stats[1].nodes} | {seconds[0]:.2f} s | {seconds[1]:.2f} s"
              f" | {ratio:.2f} | {found[0] == found[1]} |", flush=True)
    print("\nworst ratio (without / with) per network, over its cases: "
          + ", ".join(f"{shape} {value:.2f}" for shape, value in worst.items()))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="run only rungs whose name contains this text")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per engine per rung (default 600)")
    parser.add_argument("--skip-nogood", action="store_true", help="run only the default engine")
    parser.add_argument("--full-acas", action="store_true", help="also enumerate ACAS Xu 1_1 over the whole property-3 box")
    parser.add_argument("--compare", action="store_true", help="the side-by-side table with nnenum and relucent")
    parser.add_argument("--nnenum", default=None, help="PYTHON:NNENUM_SRC, a Python with nnenum's requirements and its src folder")
    parser.add_argument("--relucent", default=None, help="a Python with relucent installed")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and rung in --compare; the best is shown (default 3)")
    parser.add_argument("--conditions", action="store_true", help="regions under output conditions, with and without dropping nodes by bounds")
    args = parser.parse_args(argv)
    if args.conditions:
        return conditions_table(args)
    if args.compare:
        return compare(args)
    for name, net, box, where in ladder(args):
        if args.only and args.only not in name:
            continue
        print(f"\n== {name}: {net.neuron_count} neurons, naive orthants {naive_orthants(net, box, args.time_limit)}")
        sets = {}
        for method in ("tree", "nogood"):
            if method == "nogood" and args.skip_nogood:
                continue
            search, stamps, patterns = run(net, box, where, method, args.time_limit)
            n = len(patterns)
            seconds = search.seconds
            s = search.stats
            sets[method] = set(patterns)
            per = 1e3 * seconds / max(n, 1)
            print(
                f"  {method:6s}: {n:7d} regions in {seconds:8.3f} s  ({per:7.3f} ms/region, {n / max(seconds, 1e-9):8.1f} regions/s)"
                f"  LPs/region {s.lps / max(n, 1):6.2f}  MILPs/region {s.milps / max(n, 1):6.3f}"
                f"  complete {search.complete}"
            )
            if n >= 20:
                tenths = np.array_split(np.diff(np.concatenate([[0.0], stamps])), 10)
                print("          ms/region by tenth of the list: " + " ".join(f"{1e3 * t.mean():.2f}" for t in tenths))
        if len(sets) == 2:
            print(f"  identical sets: {sets['tree'] == sets['nogood']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
