"""Parallel region enumeration: 1 vs 2 local workers, the Dask path vs the process pool, and a cost model.

On ACAS Xu 1_1 over the property-3 box (shrunk around its centre by ``--shrink``, so that a
run takes seconds to minutes rather than the ~12 minutes of the whole box), it runs:

* the single-process engine (:func:`milp.regions`), the reference;
* :func:`milp.enumeration.parallel.parallel_regions` in-process (``serial``: the cost of cutting and re-splitting);
* the local process pool with 1 and 2 workers;
* a local Dask cluster (2 worker processes, one thread each), cluster start-up timed apart;

and prints regions, seconds, regions per second and speed-ups, and whether every complete
run listed the identical set. Then the cost model: the in-process run's tasks (each with its
measured seconds, each leftover released when its parent ends) are list-scheduled on 1..64
simulated workers, which says how the time would fall on a bigger machine.

    python benchmarks/parallel.py [--shrink F] [--time-limit S] [--split-after S] [--skip-dask] [--model FILE]

The network is read from ``$MILP_BENCHMARKS/acasxu``, else ``../shared/benchmarks/acasxu`` beside
the checkout (see ``benchmarks/data.py``); without it the script stops with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from milp import Box
from milp.enumeration.parallel import parallel_regions, simulate_makespan
from milp.enumeration.engines import regions

import data  # benchmarks/data.py: where the benchmark data is

PROPERTY_3 = (np.array([-0.303531156, -0.009549297, 0.493380324, 0.3, 0.3]), np.array([-0.298552812, 0.009549297, 0.5, 0.5, 0.5]))


def shrunk(factor: float) -> Box:
    lower, upper = PROPERTY_3
    centre, half = (lower + upper) / 2, (upper - lower) / 2 / factor
    return Box(centre - half, centre + half)


def row(name: str, n: int, seconds: float, complete: bool, base_rate: float | None, extra: str = "") -> float:
    rate = n / max(seconds, 1e-9)
    speed = "" if base_rate is None else f"  speed-up {rate / base_rate:5.2f}x"
    print(f"  {name:34s} {n:7d} regions {seconds:8.2f} s {rate:8.1f} regions/s  complete {str(complete):5s}{speed}{extra}")
    return rate


def busy(search, seconds: float) -> str:
    """The workers' share of the wall time spent in tasks (below 100%: idle at start-up or waiting for the
    last tasks), and their CPU seconds: on a quiet machine about the tasks' seconds; when other programs
    share the cores, the CPU seconds still say how much work the run did."""
    work = sum(t.seconds for t in search.tasks)
    cpu = sum(t.cpu_seconds for t in search.tasks)
    return f"; workers busy {work / max(seconds * search.workers, 1e-9):.0%}, {cpu:.1f} CPU s"


def run_parallel(net, box, args, **kwargs):
    started = time.perf_counter()
    search = parallel_regions(net, box, time_limit=args.time_limit, split_after=args.split_after, **kwargs)
    patterns = [r.pattern for r in search]
    if search.errors:
        print("  errors: " + "; ".join(search.errors))
    return search, patterns, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="an ONNX file of 5 inputs (default: ACAS Xu 1_1 from $MILP_BENCHMARKS/acasxu, "
                        "else ../shared/benchmarks/acasxu beside the checkout)")
    parser.add_argument("--shrink", type=float, default=2.0, help="shrink the property-3 box around its centre by this factor (default 2: 5,706 regions; 1 = whole box: 71,872)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop every run after S seconds (compare regions/s then)")
    parser.add_argument("--split-after", type=float, default=5.0, metavar="S", help="task time budget before a subproblem is re-split (default 5)")
    parser.add_argument("--model-split", type=float, default=0.5, metavar="S", help="task budget of the in-process run the cost model reads (default 0.5)")
    parser.add_argument("--skip-dask", action="store_true", help="do not run the Dask path")
    args = parser.parse_args(argv)
    if args.model is None:
        args.model = str(data.require("acasxu", needs=(data.ACAS_NETWORK,), usage="python benchmarks/parallel.py --model /path/to/ACASXU_run2a_1_1_batch_2000.onnx")
                         / data.ACAS_NETWORK)
    elif not Path(args.model).exists():
        print(f"{Path(sys.argv[0]).name}: error: model {args.model} not found (the --model given on the command line)", file=sys.stderr)
        return 2
    if not args.shrink >= 1:
        print("--shrink must be at least 1", file=sys.stderr)
        return 2
    from importers import load_onnx

    net = load_onnx(args.model)
    box = shrunk(args.shrink)
    print(f"{Path(args.model).name}: {net.neuron_count} neurons; property-3 box shrunk {args.shrink:g}x; task budget {args.split_after:g} s")

    started = time.perf_counter()
    reference = regions(net, box, time_limit=args.time_limit)
    base = [r.pattern for r in reference]
    base_seconds = time.perf_counter() - started
    base_rate = row("single process (regions())", len(base), base_seconds, reference.complete, None)
    sets = {"single process": (set(base), reference.complete)}

    serial, patterns, seconds = run_parallel(net, box, args, workers=1, scheduler="serial")
    row("parallel_regions, in-process", len(patterns), seconds, serial.complete, base_rate, f"  ({serial.stats_dict()['tasks']} tasks)")
    sets["in-process"] = (set(patterns), serial.complete)

    rates = {}
    for workers in (1, 2):
        search, patterns, seconds = run_parallel(net, box, args, workers=workers, scheduler="processes")
        rates[workers] = row(f"process pool, {workers} worker{'s' if workers > 1 else ''}", len(patterns), seconds, search.complete, base_rate, f"  ({search.stats_dict()['tasks']} tasks{busy(search, seconds)})")
        sets[f"pool {workers}"] = (set(patterns), search.complete)
    print(f"  pool speed-up, 2 workers vs 1: {rates[2] / rates[1]:.2f}x")

    if not args.skip_dask:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("  (distributed is not installed: the Dask path is skipped; pip install 'dask[distributed]')")
        else:
            t = time.perf_counter()
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
                startup = time.perf_counter() - t
                search, patterns, seconds = run_parallel(net, box, args, scheduler=client)
                dask_rate = row("Dask LocalCluster, 2 workers", len(patterns), seconds, search.complete, base_rate, f"  ({search.stats_dict()['tasks']} tasks{busy(search, seconds)}; cluster start {startup:.1f} s)")
                sets["dask 2"] = (set(patterns), search.complete)
            print(f"  Dask vs process pool (2 workers): {dask_rate / rates[2]:.2f}x the pool's rate")

    complete_sets = [s for s, done in sets.values() if done]
    if len(complete_sets) > 1:
        print(f"  complete runs list the identical set: {all(s == complete_sets[0] for s in complete_sets)}")

    print(f"\ncost model: in-process run with a {args.model_split:g} s task budget, list-scheduled on simulated workers")
    model = parallel_regions(net, box, workers=1, scheduler="serial", split_after=args.model_split, target=64, time_limit=args.time_limit)
    count = sum(1 for _ in model)
    tasks = model.tasks
    total = sum(t.seconds for t in tasks)
    longest = max((t.seconds for t in tasks), default=0.0)
    print(f"  {count} regions, {len(tasks)} tasks, {total:.2f} s of work, longest task {longest:.2f} s, complete {model.complete}")
    print("  workers   makespan s   speed-up   efficiency")
    one = simulate_makespan(tasks, 1)
    for workers in (1, 2, 4, 8, 16, 32, 64):
        span = simulate_makespan(tasks, workers)
        print(f"  {workers:7d}   {span:10.2f}   {one / span:8.2f}   {one / span / workers:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
