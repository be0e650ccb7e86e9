"""Speed of region enumeration, for both engines, on a ladder of networks (one process).

For each rung: regions, seconds, milliseconds per region, LPs and MILPs per region for the
`tree` (default) and `nogood` engines, whether both list the identical set, how the cost per
region grows as regions accumulate (seconds per tenth of the list), and how many orthants the
naive per-layer "un-ReLU" would visit: sum over layers of (regions of the layers before) x
2^width.

    python benchmarks/regions.py [--only NAME] [--time-limit S] [--skip-nogood]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from milp import Box, Network, parse_box
from milp.core.network import Affine
from milp.enumeration.engines import regions

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="run only rungs whose name contains this text")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per engine per rung (default 600)")
    parser.add_argument("--skip-nogood", action="store_true", help="run only the default engine")
    parser.add_argument("--full-acas", action="store_true", help="also enumerate ACAS Xu 1_1 over the whole property-3 box")
    args = parser.parse_args(argv)
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
