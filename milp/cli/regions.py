"""``milp regions``: every activation region where the conditions hold, written as it is found."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from milp.cli.common import BOUND_METHODS, CONDITION_HELP, CliError, add_common, add_threads, box_for, load_model, print_answer
from milp.core.errors import InputError
from milp.core.slicing import SLICE_HELP, THROUGH_BOX
from milp.core.tolerances import REGION_TOLERANCE
from milp.enumeration import ENGINES

EPILOG = (
    "examples:\n"
    '  milp regions model.onnx --box -6:6 --where "y[0] > 0" -o zones.jsonl\n'
    '  milp regions model.onnx --box -6:6 --where "h1[3] > 0" -o zones.json --max-regions 10000 --time-limit 600\n'
    "  milp regions model.onnx --box -6:6 -o all.jsonl --resume\n"
    "  milp regions model.onnx --box -6:6 -o all.jsonl --workers 0      (every local core)\n"
    "  milp regions model.onnx --box -6:6 -o all.jsonl --scheduler tcp://host:8786\n"
    "  milp regions acas.onnx --slice \"x0=0,0,0,0.5,0.5 u=e0 v=e1\" --box -0.5:0.5 -o plane.jsonl\n"
    "    (the regions on the plane x = x0 + s*u + t*v; --box is then the box of (s, t))\n"
    '  milp regions examples/un_relu_toy.onnx --box -5:5 --where "y[0] > 0" -o zones.jsonl --merge\n'
    "    (also the convex zones greedy merging of neighbours finds, and each region's neighbours)\n"
    "  milp regions examples/digits_mlp.onnx --through digits.npy:3,17,42 -o plane.jsonl\n"
    "  milp plot plane.jsonl -o plane.png --color-by argmax\n"
    "    (the plane through three inputs, rows of a .npy or .csv file: (s,t) = (0,0), (1,0), (0,1); --box defaults to -0.25:1.25)"
)


# A region search runs this long in the main process before it starts worker processes
# (about a second to start): small enumerations never pay for them.
WARMUP_SECONDS = 1.0


def run(args) -> int:
    import hashlib

    from tqdm import tqdm

    from milp.core.region import Region
    from milp.core.slicing import parse_slice, slice_network
    from milp.enumeration.engines import regions
    from milp.io.regionfiles import RegionWriter

    network, reference = load_model(args.model, check=not args.no_check)
    plane, through = None, None
    if args.slice and args.through:
        raise CliError("--slice and --through both give a plane: use one of them")
    if args.through:
        from milp.io.points import parse_through

        through = parse_through(args.through, network.input_dim)
        plane = through.plane
        if not args.box:
            args.box = THROUGH_BOX
    elif args.slice:
        plane = parse_slice(args.slice, network.input_dim)
    if plane is not None:
        # the run is over (s, t): --box, --where x[0], x[1] and the region file are in plane coordinates
        network = slice_network(network, plane.origin, plane.u, plane.v)
    try:
        box = box_for(args, network, reference)
    except InputError as error:
        if plane is None:
            raise
        raise CliError(f"{error} (with --slice or --through the network's inputs are the plane's s and t: --box gives their ranges)") from None
    workers = args.workers if args.workers else (os.cpu_count() or 1)
    parallel = args.scheduler is not None or workers > 1
    if parallel:
        from milp.enumeration.parallel import parallel_regions

        search = parallel_regions(
            network, box, args.where, workers=None if args.scheduler else workers, scheduler=args.scheduler,
            method=args.method, bounds=args.bounds, tol=args.tol, max_regions=args.max_regions, time_limit=args.time_limit,
            warmup=WARMUP_SECONDS if args.workers is None and not args.scheduler else None, threads=args.threads,
        )
    else:
        search = regions(
            network, box, args.where, method=args.method, bounds=args.bounds, tol=args.tol,
            max_regions=args.max_regions, time_limit=args.time_limit,
        )
    header = {
        "model": str(args.model),
        "model_sha256": hashlib.sha256(Path(args.model).read_bytes()).hexdigest(),
        "box": {"lower": box.lower.tolist(), "upper": box.upper.tolist()},
        "conditions": list(args.where),
        "neurons": network.neuron_count,
        "input_dim": network.input_dim,
        "output_dim": network.output_dim,
        "method": args.method,
        "tolerance": args.tol,
    }
    # widths and names let milp plot colour by layer and label axes without reading the model
    header["widths"] = list(network.widths)
    if network.input_names is not None:
        header["input_names"] = list(network.input_names)
    if network.output_names is not None:
        header["output_names"] = list(network.output_names)  # milp plot --color-by argmax names the classes
    if plane is not None:
        header["slice"] = plane.to_dict()
    if through is not None:
        header["through"] = through.to_dict()  # milp plot marks the points at (0,0), (1,0), (0,1)
    writer = None
    if args.output:
        writer = RegionWriter(args.output, header, resume=args.resume)
        search.skip |= writer.known_patterns
        if parallel:
            search.skip_subproblems(writer.done_subproblems)
    elif args.resume:
        raise CliError("--resume needs -o FILE (the file to continue)")
    progress = None
    if not args.quiet and sys.stderr.isatty():
        progress = tqdm(total=None, unit=" regions", file=sys.stderr, dynamic_ncols=True)
    found, interrupted = [], False
    # a parallel run also reports finished subproblems, recorded so that --resume skips them
    stream = search.events() if parallel else iter(search)
    try:
        for region in stream:
            if not isinstance(region, Region):
                if writer is not None:
                    writer.add_done(region.id)
                continue
            found.append(region)
            if writer is not None:
                writer.add(region)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(lps=search.stats.lps, milps=search.stats.milps, refresh=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stream.close()  # ends the workers of a parallel run
        if progress is not None:
            progress.close()
    complete = search.complete and not interrupted
    for error in getattr(search, "errors", ()):
        print(f"milp: {error}", file=sys.stderr)
    stats = search.stats_dict()
    total = len(found) + (len(writer.known) - len(found) if writer is not None else 0)
    zones, neighbours = (), ()
    if (args.merge or args.adjacency) and not interrupted:
        from milp.enumeration.zones import adjacency, merge_regions

        listed = [Region.from_dict(r) for r in writer.known] if writer is not None else found
        neighbours = adjacency(listed, args.tol)
        if args.merge:
            zones = merge_regions(listed, neighbours, args.tol)
    if writer is not None:
        writer.close(complete, stats, zones, neighbours)
    summary = {
        "regions": total,
        "new_regions": len(found),
        "complete": complete,
        "output": args.output,
        "stats": stats,
    }
    if args.merge and not interrupted:
        summary["zones"] = len(zones)
    if args.adjacency or args.merge:
        summary["neighbour_pairs"] = len(neighbours) // 2
    lines = [
        f"{total} regions{'' if complete else ' so far (incomplete: ' + ('interrupted' if interrupted else 'a subproblem failed' if getattr(search, 'errors', None) else 'stopped by a limit') + ')'}",
        f"solver calls: {stats['lps']} LPs, {stats['milps']} MILPs; lower-dimensional patterns skipped: {stats['lower_dimensional']}; "
        f"{stats['seconds']:.3f} s",
    ]
    if stats.get("thin_regions"):
        lines.insert(1, f"of which thin (radius at most the tolerance, interior certified exactly): {stats['thin_regions']}")
    if stats.get("thin_undecided"):
        lines.insert(1, f"thin pieces left undecided by the rational check: {stats['thin_undecided']} (the list may miss regions there)")
    if args.merge and not interrupted:
        lines.append(f"{len(zones)} zones: convex unions of the {total} regions (greedy merging of neighbours)")
    if (args.merge or args.adjacency) and not interrupted:
        lines.append(f"{len(neighbours) // 2} pairs of neighbouring regions")
    if args.output:
        lines.append(f"written to {args.output}")
    print_answer(args, summary, "\n".join(lines))
    if interrupted:
        return 130
    return 1 if getattr(search, "errors", None) else 0  # a subproblem that failed twice: the list is incomplete


def register(command) -> None:
    p = command("regions", "list every activation region (input polytope) where the conditions hold, exactly", EPILOG)
    add_common(p)
    p.add_argument("--where", action="append", default=[], help=CONDITION_HELP)
    p.add_argument("-o", "--output", help="write regions as they are found: .jsonl (streamed), .json or .npz")
    p.add_argument("--method", choices=ENGINES, default="tree", help="tree: depth-first splitting with LPs (default, faster); nogood: MILP with no-good cuts")
    p.add_argument("--max-regions", type=int, default=None, help="stop after this many regions (the file says complete: false)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop after S seconds (complete: false)")
    p.add_argument("--resume", action="store_true", help="continue the run recorded in -o FILE without repeating a region")
    p.add_argument("--tol", type=float, default=REGION_TOLERANCE,
                   help=f"a piece whose Chebyshev radius is at most tol * max(1, widest box side) is not a region (default {REGION_TOLERANCE:g})")
    p.add_argument("--bounds", choices=BOUND_METHODS, default="symbolic", help="bounds that decide stable neurons (default symbolic)")
    p.add_argument("--slice", default=None, metavar="PLANE", help=SLICE_HELP)
    from milp.io.points import THROUGH_HELP

    p.add_argument("--through", default=None, metavar="POINTS", help=THROUGH_HELP)
    p.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="worker processes on this machine, 0 = one per core. Default: one per core, started only when the "
        f"search is still running after {WARMUP_SECONDS:g} s (what is left is then cut into independent subproblems)",
    )
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run the subproblems on a running Dask cluster, e.g. tcp://host:8786 (needs the distributed package: pip install 'dask[distributed]')",
    )
    p.add_argument("--merge", action="store_true",
                   help="also write zones: the union of the regions as convex polytopes, by merging neighbours while the "
                        'union stays convex (e.g. --where "y[0] > 0" --merge: 7 regions of the un-ReLU toy make 3 zones)')
    p.add_argument("--adjacency", action="store_true",
                   help="also write each region's neighbours: the listed region across each facet (implied by --merge)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    add_threads(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(run=run)
