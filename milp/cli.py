"""The ``milp`` command line: a thin layer over the public API.

Every command takes ``--json`` and then prints one JSON object on stdout; stdout carries
answers only (whatever a library prints goes to stderr, see :mod:`milp.runtime`). Exit code 0
for an answer (including unsat / never / unknown), 2 for bad input (one line on stderr), 1 for
an internal failure (a bug: the message says so), 130 after Ctrl-C. In ``fires``, ``reach``,
``range`` and ``vnnlib`` the first Ctrl-C stops the search, even inside a long HiGHS solve, and
the answer so far (``unknown`` with the bounds proved) is printed; a second one stops at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .box import Box, parse_box
from .errors import REPORT_HINT, InputError
from .highs_backend import SolverOptions
from .network import Network
from .options import check_count, check_seconds, check_threads, check_tolerance
from .queries import fires, output_range, reach
from .runtime import answers_on_stdout, limit_threads
from .slicing import SLICE_HELP
from .tighten import BOUND_METHODS, pre_activation_bounds

__all__ = ["main", "load_model"]

# Options whose values may start with "-" (argparse would take "-5:5" for an option).
_VALUE_OPTIONS = ("--box", "--where", "--slice")


class CliError(InputError):
    """Bad input from the command line: reported as one line, exit code 2."""


def _join_values(argv: Sequence[str]) -> list[str]:
    out, i = [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS and i + 1 < len(argv):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def load_model(path: str, box: Box | None = None, check: bool = True) -> tuple[Network, Callable | None]:
    """Load a model file for the command line: ``(network, reference)``.

    ``reference`` evaluates the original file (onnxruntime for ONNX) so that every witness
    is checked against it too.
    """
    from importers import ModelImportError, OnnxReference, load_onnx

    file = Path(path)
    if not file.exists():
        raise CliError(f"model file {path!r} does not exist")
    if file.suffix.lower() != ".onnx":
        raise CliError(f"model file {path!r}: only .onnx files are read from the command line (use importers.from_torch in Python)")
    try:
        network = load_onnx(file, box=box, check=check)
        return network, OnnxReference(file)
    except ModelImportError as error:
        raise CliError(str(error)) from None


def _options(args) -> SolverOptions:
    return SolverOptions(threads=args.threads)


def _pyomo_solver(args) -> str | None:
    """The Pyomo solver named by --solver, or None for the built-in HiGHS path."""
    name = getattr(args, "solver", None)
    if name is None:
        return None
    import logging

    import pyomo.environ as pyo

    pyomo_log = logging.getLogger("pyomo")
    level = pyomo_log.level
    pyomo_log.setLevel(logging.CRITICAL)  # an unknown name logs a traceback; one line below says it all
    try:
        available = bool(pyo.SolverFactory(name).available(exception_flag=False))
    except Exception:
        available = False
    finally:
        pyomo_log.setLevel(level)
    if not available:
        raise CliError(f"--solver {name!r}: Pyomo has no such solver available on this machine (try highs, appsi_highs, glpk, cbc, gurobi)")
    return name


def _print(args, payload: dict, human: str) -> None:
    """The command's answer: one JSON object with --json, else the human-readable text."""
    print(json.dumps(payload) if args.json else human, file=args.out)


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, (list, tuple, np.ndarray)):
        return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(x).reshape(-1)) + "]"
    return f"{x:.9g}"


# ------------------------------------------------------------------ commands
def cmd_info(args) -> int:
    network, _ = load_model(args.model, check=not args.no_check)
    payload = {
        "model": str(args.model), "input_dim": network.input_dim, "output_dim": network.output_dim,
        "widths": list(network.widths), "neurons": network.neuron_count,
    }
    lines = [network.describe()]
    if args.box:
        box = parse_box(args.box, network.input_dim)
        lines.append(f"\nunstable neurons over the box (of {network.neuron_count}):")
        payload["unstable"] = {}
        for method in BOUND_METHODS:
            started = time.perf_counter()
            bounds = pre_activation_bounds(network, box, method)
            seconds = time.perf_counter() - started
            per_layer = [int(bounds.unstable(l).sum()) for l in range(len(network.widths))]
            payload["unstable"][method] = {"count": bounds.unstable_count, "per_layer": per_layer, "seconds": seconds}
            lines.append(f"  {method:9s} {bounds.unstable_count:6d}   per layer: {', '.join(map(str, per_layer))}   ({seconds:.3f} s)")
    _print(args, payload, "\n".join(lines))
    return 0


def _box_for(args, network: Network) -> Box:
    if not args.box:
        raise CliError("an input box is required (big-M needs bounds): --box lo:hi or --box lo1:hi1,lo2:hi2,...")
    return parse_box(args.box, network.input_dim)


def cmd_fires(args) -> int:
    network, reference = load_model(args.model, check=not args.no_check)
    box = _box_for(args, network)
    result = fires(
        network, box, args.layer, args.neuron, bounds=args.bounds, options=_options(args), reference=reference,
        solver=_pyomo_solver(args), time_limit=args.time_limit, stop=args.stop,
    )
    limit = "stopped" if args.stop.is_set() else "time limit"
    verdict = {"fires": "yes", "never": "no", "unknown": f"unknown ({limit})"}[result.status]
    human = "\n".join(
        [
            f"can neuron {args.neuron} of ReLU layer {args.layer} fire? {verdict}",
            f"max pre-activation: {_fmt(result.maximum)}   (proved upper bound {_fmt(result.upper_bound)})",
            f"witness: {_fmt(result.witness)}",
            f"seconds: {result.seconds:.3f}",
        ]
    )
    _print(args, result.to_json(), human)
    return 0


def cmd_reach(args) -> int:
    network, reference = load_model(args.model, check=not args.no_check)
    box = _box_for(args, network)
    if not args.where:
        raise CliError('reach needs at least one --where condition, e.g. --where "y[0] - y[1] >= 0.2"')
    result = reach(
        network, box, args.where, bounds=args.bounds, options=_options(args), reference=reference,
        time_limit=args.time_limit, stop=args.stop,
    )
    lines = [f"{result.status}" + (f" ({result.reason})" if result.reason else "")]
    if result.status == "sat":
        lines += [f"witness: {_fmt(result.witness)}", f"output:  {_fmt(result.output)}"]
    lines.append(f"seconds: {result.seconds:.3f}   decided by {result.decided_by}")
    _print(args, result.to_json(), "\n".join(lines))
    return 0


def cmd_range(args) -> int:
    network, reference = load_model(args.model, check=not args.no_check)
    box = _box_for(args, network)
    outputs = None if args.output is None else [args.output]
    result = output_range(
        network, box, outputs, bounds=args.bounds, options=_options(args), reference=reference, solver=_pyomo_solver(args),
        time_limit=args.time_limit, stop=args.stop,
    )
    lines = []
    for o in result.outputs:
        lines.append(f"y[{o.index}]  min {_fmt(o.min)} at {_fmt(o.argmin)}   max {_fmt(o.max)} at {_fmt(o.argmax)}   ({o.status})")
    lines.append(f"seconds: {result.seconds:.3f}")
    _print(args, result.to_json(), "\n".join(lines))
    return 0


# A region search runs this long in the main process before it starts worker processes
# (about a second to start): small enumerations never pay for them.
WARMUP_SECONDS = 1.0


def cmd_regions(args) -> int:
    import hashlib

    from .export import RegionWriter
    from .polytope import Region
    from .regions import regions
    from .slicing import parse_slice, slice_network

    network, _ = load_model(args.model, check=not args.no_check)
    plane = None
    if args.slice:
        # the run is over (s, t): --box, --where x[0], x[1] and the region file are in plane coordinates
        plane = parse_slice(args.slice, network.input_dim)
        network = slice_network(network, plane.origin, plane.u, plane.v)
    box = _box_for(args, network)
    workers = args.workers if args.workers else (os.cpu_count() or 1)
    parallel = args.scheduler is not None or workers > 1
    if parallel:
        from .parallel import parallel_regions

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
    if plane is not None:
        header["slice"] = plane.to_dict()
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
        from tqdm import tqdm

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
    if writer is not None:
        writer.close(complete, stats)
    summary = {
        "regions": total,
        "new_regions": len(found),
        "complete": complete,
        "output": args.output,
        "stats": stats,
    }
    lines = [
        f"{total} regions{'' if complete else ' so far (incomplete: ' + ('interrupted' if interrupted else 'a subproblem failed' if getattr(search, 'errors', None) else 'stopped by a limit') + ')'}",
        f"solver calls: {stats['lps']} LPs, {stats['milps']} MILPs; lower-dimensional patterns skipped: {stats['lower_dimensional']}; "
        f"{stats['seconds']:.3f} s",
    ]
    if args.output:
        lines.append(f"written to {args.output}")
    _print(args, summary, "\n".join(lines))
    if interrupted:
        return 130
    return 1 if getattr(search, "errors", None) else 0  # a subproblem that failed twice: the list is incomplete


# ------------------------------------------------------------------ parser
_EPILOG = {
    "info": "example:\n  milp info model.onnx --box -1:1",
    "fires": "example:\n  milp fires model.onnx --box -5:5 --layer 1 --neuron 0 --json",
    "reach": 'example:\n  milp reach model.onnx --box "-1:1,-1:1,0:0.5" --where "y[0] - y[1] >= 0.2"',
    "range": "example:\n  milp range model.onnx --box -1:1 --output 0",
    "vnnlib": (
        "examples:\n"
        "  milp vnnlib ACASXU_run2a_1_1_batch_2000.onnx prop_1.vnnlib --timeout 116 --results out.txt\n"
        "  milp vnnlib net.onnx prop.vnnlib --json\n"
        "prints sat (then the counterexample ((X_0 v) ... (Y_0 v) ...)), unsat, timeout or unknown; exit code 0 for\n"
        "any of these, 2 for bad input (the --results file then says error)"
    ),
    "regions": (
        "examples:\n"
        '  milp regions model.onnx --box -6:6 --where "y[0] > 0" -o zones.jsonl\n'
        '  milp regions model.onnx --box -6:6 --where "h1[3] > 0" -o zones.json --max-regions 10000 --time-limit 600\n'
        "  milp regions model.onnx --box -6:6 -o all.jsonl --resume\n"
        "  milp regions model.onnx --box -6:6 -o all.jsonl --workers 0      (every local core)\n"
        "  milp regions model.onnx --box -6:6 -o all.jsonl --scheduler tcp://host:8786\n"
        "  milp regions acas.onnx --slice \"x0=0,0,0,0.5,0.5 u=e0 v=e1\" --box -0.5:0.5 -o plane.jsonl\n"
        "    (the regions on the plane x = x0 + s*u + t*v; --box is then the box of (s, t))"
    ),
}

_CONDITION_HELP = (
    "a linear condition over x[i] (inputs), y[i] (outputs), h<L>[k] (ReLU layer L's output) and z<L>[k] "
    "(its pre-activation), e.g. \"y[0] - 2*y[1] > 0.5\"; repeat for a conjunction; > and < are strict"
)


def _add_common(p: argparse.ArgumentParser, needs_box: bool = True) -> None:
    p.add_argument("model", help="an ONNX file")
    p.add_argument(
        "--box",
        help="input box: lo:hi for every input, or lo1:hi1,lo2:hi2,... one per input (lo == hi fixes an input)"
        + ("" if needs_box else "; with it, info reports unstable neurons per bound method"),
    )
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime check of the imported network")


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads per process for numpy's BLAS and HiGHS (default 1: parallelism here is processes)")


def _add_solver(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="seconds; past it the answer is 'unknown'")
    _add_threads(p)
    p.add_argument("--bounds", choices=BOUND_METHODS, default="symbolic", help="pre-activation bound method for the MILP (default symbolic)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="milp",
        description="Exact questions about ReLU networks, answered by mixed-integer linear programming.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  milp fires model.onnx --box -5:5 --layer 1 --neuron 0",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=_EPILOG.get(name), formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("info", "layers, widths, ReLU neurons; with --box, unstable neurons per bound method")
    _add_common(p, needs_box=False)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=cmd_info)

    p = command("fires", "can neuron k of ReLU layer L be positive anywhere in the box? (exact max and witness)")
    _add_common(p)
    p.add_argument("--layer", type=int, required=True, help="ReLU layer, counted from 0 in evaluation order")
    p.add_argument("--neuron", type=int, required=True, help="neuron index within the layer, from 0")
    _add_solver(p)
    p.add_argument("--solver", default=None, metavar="NAME", help="solve the whole big-M MILP through this Pyomo solver (highs, gurobi, cbc, ...) instead of the built-in HiGHS search; its answer is re-checked the same way")
    p.set_defaults(run=cmd_fires)

    p = command("reach", "is there an input in the box where all conditions hold? sat (with a checked witness), unsat or unknown")
    _add_common(p)
    p.add_argument("--where", action="append", default=[], help=_CONDITION_HELP)
    _add_solver(p)
    p.set_defaults(run=cmd_reach)

    p = command("range", "exact min and max of each output over the box, with the inputs attaining them")
    _add_common(p)
    p.add_argument("--output", type=int, default=None, help="only this output")
    _add_solver(p)
    p.add_argument("--solver", default=None, metavar="NAME", help="solve the whole big-M MILP through this Pyomo solver (highs, gurobi, cbc, ...) instead of the built-in HiGHS search; its answer is re-checked the same way")
    p.set_defaults(run=cmd_range)

    p = command("regions", "list every activation region (input polytope) where the conditions hold, exactly")
    _add_common(p)
    p.add_argument("--where", action="append", default=[], help=_CONDITION_HELP)
    p.add_argument("-o", "--output", help="write regions as they are found: .jsonl (streamed), .json or .npz")
    p.add_argument("--method", choices=("tree", "nogood"), default="tree", help="tree: depth-first splitting with LPs (default, faster); nogood: MILP with no-good cuts")
    p.add_argument("--max-regions", type=int, default=None, help="stop after this many regions (the file says complete: false)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop after S seconds (complete: false)")
    p.add_argument("--resume", action="store_true", help="continue the run recorded in -o FILE without repeating a region")
    p.add_argument("--tol", type=float, default=1e-7, help="a piece whose Chebyshev radius is at most tol * max(1, widest box side) is not a region (default 1e-7)")
    p.add_argument("--bounds", choices=BOUND_METHODS, default="symbolic", help="bounds that decide stable neurons (default symbolic)")
    p.add_argument("--slice", default=None, metavar="PLANE", help=SLICE_HELP)
    p.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="worker processes on this machine, 0 = one per core. Default: one per core, started only when the "
        f"search is still running after {WARMUP_SECONDS:g} s (what is left is then cut into independent subproblems)",
    )
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run the subproblems on a running Dask cluster, e.g. tcp://host:8786 (needs the distributed package: pip install 'dask[distributed]')",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    _add_threads(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(run=cmd_regions)

    # plot and verify own their commands' options; they import cli only inside the command
    # (cli is the top of the import chain)
    from .plot import register_cli as register_plot
    from .verify import register_cli as register_vnnlib

    register_plot(command)
    register_vnnlib(command)
    return parser

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), as every other input error."""

    def error(self, message: str):
        raise CliError(f"{message} (see {self.prog} --help)")


# Every option value is checked here, once, with the same checks the Python API uses.
_OPTION_CHECKS = (
    ("time_limit", "--time-limit", check_seconds),
    ("timeout", "--timeout", check_seconds),
    ("threads", "--threads", check_threads),
    ("max_regions", "--max-regions", lambda v, n: check_count(v, n, 1)),
    ("workers", "--workers", lambda v, n: check_count(v, n, 0)),
    ("samples", "--samples", lambda v, n: check_count(v, n, 1)),
    ("seed", "--seed", lambda v, n: check_count(v, n, 0)),
    ("tol", "--tol", check_tolerance),
)

# Commands whose long solves a first Ctrl-C stops, printing the answer so far.
_STOPPABLE = ("fires", "reach", "range", "vnnlib")


def _check_options(args) -> None:
    for attribute, flag, check in _OPTION_CHECKS:
        if hasattr(args, attribute):
            setattr(args, attribute, check(getattr(args, attribute), flag))


def _run(args) -> int:
    """Run the parsed command; stdout already carries answers only (``args.out``)."""
    _check_options(args)
    limit_threads(getattr(args, "threads", 1))
    args.stop = threading.Event()
    previous = None
    if args.command in _STOPPABLE and threading.current_thread() is threading.main_thread():
        def on_interrupt(signum, frame):
            if args.stop.is_set():
                raise KeyboardInterrupt  # a second Ctrl-C: stop at once
            args.stop.set()
            print("milp: stopping (Ctrl-C again to stop at once)", file=sys.stderr)

        previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        code = int(args.run(args) or 0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 130 if args.stop.is_set() else code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    >>> # main(["fires", "model.onnx", "--box", "-5:5", "--layer", "1", "--neuron", "0", "--json"])
    """
    argv = _join_values(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)  # --help prints here, on stdout
    except CliError as error:
        print(f"milp: error: {error}", file=sys.stderr)
        return 2
    with answers_on_stdout() as out:
        args.out = out
        try:
            return _run(args)
        except (InputError, OSError) as error:  # the user's input or files: one line
            print(f"milp: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("milp: interrupted", file=sys.stderr)
            return 130
        except Exception as error:  # anything else is ours
            if os.environ.get("MILP_TRACEBACK"):
                traceback.print_exc(file=sys.stderr)
            print(f"milp: internal error: {type(error).__name__}: {error} ({REPORT_HINT})", file=sys.stderr)
            return 1
