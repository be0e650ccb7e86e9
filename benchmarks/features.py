"""Whole-layer feature reports and exact simplification, measured in one process.

Table 1, the feature report: for the digits MLP (examples/digits_mlp.onnx, 64-128-128-10 trained on
scikit-learn's digits) over [0,1]^64, over the data's own bounding box and over an L-inf ball of 0.1
around one digit, the neurons per status and the seconds of ``feature_report`` (every ReLU layer),
beside one ``fires`` call per neuron in the same run for a subset of neurons (their seconds, and the
extrapolation to the whole network).

Table 2, simplification: neurons before and after ``simplify`` on the digit's ball and, when the
ACAS Xu data is there, on ACAS Xu 1_1 over property 3's box; then a later verification on each model
(the digit's robustness on the ball; property 3), and for ACAS Xu the regions of the box shrunk 2x.

    python benchmarks/features.py [--subset 4] [--fires-limit 60] [--time-limit 300] [--only report|simplify]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from importers import OnnxReference, load_onnx
from milp import Box
from milp.core.runtime import limit_threads
from milp.search.features import feature_report
from milp.io.vnnlib import Disjunct, VnnlibProperty, read_vnnlib
from milp.search.queries import fires
from milp.search.simplify import simplify
from milp.search.verify import verify

import data  # benchmarks/data.py: where the benchmark data is

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent / "examples" / "digits_mlp.onnx"


def digit_boxes():
    sys.path.insert(0, str(HERE.parent / "examples"))
    from digits_model import digits  # scikit-learn's images, shipped with it

    x, _ = digits()
    yield "[0,1]^64", Box(np.zeros(64), np.ones(64))
    yield "data's bounding box", Box(x.min(axis=0), x.max(axis=0))
    yield "L-inf ball 0.1 around digit 0", Box(np.clip(x[0] - 0.1, 0, 1), np.clip(x[0] + 0.1, 0, 1))


def table_report(subset: int, fires_limit: float, time_limit: float) -> None:
    net, ref = load_onnx(DIGITS), OnnxReference(DIGITS)
    print("Feature report: digits MLP 64-128-128-10, every ReLU layer (256 neurons)")
    print(f"{'box':<32} {'fires':>6} {'never':>6} {'always':>7} {'unknown':>8} {'report s':>9}   "
          f"{'one fires per neuron, subset':<32} {'extrapolated':>13}")
    for name, box in digit_boxes():
        started = time.perf_counter()
        report = feature_report(net, box, None, reference=ref, time_limit=time_limit)
        seconds = time.perf_counter() - started
        counts = report.counts()
        # a subset of neurons, spread over both layers, one exact fires call each
        rng = np.random.default_rng(0)
        picks = [(layer, int(k)) for layer in (0, 1) for k in rng.choice(128, size=max(1, subset // 2), replace=False)]
        single = []
        for layer, k in picks:
            t = time.perf_counter()
            result = fires(net, box, layer, k, reference=ref, time_limit=fires_limit)
            single.append(time.perf_counter() - t)
            ours = next(n for n in report.neurons if (n.layer, n.neuron) == (layer, k))
            if result.status != "unknown" and ours.status != "unknown":
                assert (result.status == "fires") == (ours.status in ("fires", "always")), (layer, k, result.status, ours.status)
        capped = sum(s >= fires_limit for s in single)
        subset_text = f"{len(picks)} neurons {sum(single):.1f} s" + (f" ({capped} at the cap)" if capped else "")
        extrapolated = np.mean(single) * sum(net.widths)
        at_least = ">=" if capped else ""  # a capped call makes the extrapolation a lower bound
        print(f"{name:<32} {counts['fires']:>6} {counts['never']:>6} {counts['always']:>7} {counts['unknown']:>8} {seconds:>9.2f}   "
              f"{subset_text:<32} {at_least:>2}{extrapolated:>9.0f} s   ({at_least}{extrapolated / seconds:.0f}x)")


def _later_verify(net, prop, time_limit: float) -> tuple[float, str]:
    started = time.perf_counter()
    verdict = verify(net, prop, timeout=time_limit)
    return time.perf_counter() - started, verdict.result


def _robustness(box: Box, label: int, classes: int) -> VnnlibProperty:
    """The unsafe set 'some other class scores at least as high as label' over box."""
    disjuncts = []
    for k in range(classes):
        if k != label:
            row = np.zeros((1, classes))
            row[0, label], row[0, k] = 1.0, -1.0  # y[label] - y[k] <= 0
            disjuncts.append(Disjunct(box, row, np.zeros(1)))
    return VnnlibProperty(box.dim, classes, tuple(disjuncts))


def table_simplify(time_limit: float) -> None:
    print()
    print("Simplification: neurons before and after, and a later verification on each model (its verdict and seconds)")
    print(f"{'model, box and later query':<58} {'before':>7} {'after':>6} {'never':>6} {'always':>7} {'unknown':>8} {'simplify s':>11} "
          f"{'query before':>20} {'after':>20}")
    cases = []
    boxes = dict(digit_boxes())
    digits_net = load_onnx(DIGITS)
    ball = boxes["L-inf ball 0.1 around digit 0"]
    label = int(np.argmax(digits_net(ball.center)))
    cases.append((f"digits, ball 0.1 around digit 0: still class {label}?", digits_net, ball, _robustness(ball, label, 10)))
    folder, problem = data.find("acasxu", needs=(data.ACAS_NETWORK,))
    acas = None
    if problem is None:
        acas = load_onnx(folder / data.ACAS_NETWORK)
        lower = np.array([-0.303531156, -0.009549297, 0.493380324, 0.3, 0.3])
        upper = np.array([-0.298552812, 0.009549297, 0.5, 0.5, 0.5])
        prop = read_vnnlib(folder / "vnnlib" / "prop_3.vnnlib", 5, 5)
        cases.append(("ACAS Xu 1_1, property 3 (its box)", acas, Box(lower, upper), prop))
    else:
        print(data.skip_message(problem, "the ACAS Xu row is skipped"), file=sys.stderr)
    for name, net, box, prop in cases:
        started = time.perf_counter()
        result = simplify(net, box, time_limit=time_limit)
        seconds = time.perf_counter() - started
        counts = result.report.counts()
        before, before_result = _later_verify(net, prop, time_limit)
        after, after_result = _later_verify(result.network, prop, time_limit)
        print(f"{name:<58} {sum(result.widths_before):>7} {sum(result.widths_after):>6} {counts['never']:>6} {counts['always']:>7} "
              f"{counts['unknown']:>8} {seconds:>11.1f} {before_result:>8} {before:>9.1f} s {after_result:>8} {after:>9.1f} s")
        x = box.sample(2000, np.random.default_rng(0))
        assert np.abs(net(x) - result.network(x)).max() < 1e-6
    if acas is not None:
        from milp.enumeration.engines import regions

        centre, half = 0.5 * (lower + upper), 0.25 * (upper - lower)
        small = Box(centre - half, centre + half)
        pruned = simplify(acas, small, time_limit=time_limit).network
        print()
        print("Regions of ACAS Xu 1_1 over property 3's box shrunk 2x, on the original and the simplified model")
        for name, net in (("original", acas), ("simplified", pruned)):
            started = time.perf_counter()
            count = sum(1 for _ in regions(net, small))
            print(f"  {name:<11} {sum(net.widths):>4} neurons   {count:>6} regions   {time.perf_counter() - started:7.1f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", type=int, default=4, help="neurons answered one fires call each (default 4)")
    parser.add_argument("--fires-limit", type=float, default=60.0, help="seconds per single fires call (default 60)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per report, simplification or range (default 300)")
    parser.add_argument("--only", choices=("report", "simplify"), default=None, help="run one table only")
    args = parser.parse_args(argv)
    limit_threads(1)
    if args.only in (None, "report"):
        table_report(args.subset, args.fires_limit, args.time_limit)
    if args.only in (None, "simplify"):
        table_simplify(args.time_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
