"""``milp fires``, ``milp reach`` and ``milp range``: the exact queries."""

from __future__ import annotations

from milp.cli.common import (CONDITION_HELP, CliError, add_common, add_pyomo_solver, add_solver, box_for, fmt, load_model,
                             print_answer, pyomo_solver)


def run_fires(args) -> int:
    from milp.search.queries import fires
    from milp.core.options import SolverOptions

    if args.neuron is None or args.all:
        return run_feature_report(args)
    if args.layer is None:
        raise CliError("--neuron needs --layer (the ReLU layer it belongs to)")
    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network, reference)
    result = fires(
        network, box, args.layer, args.neuron, bounds=args.bounds, options=SolverOptions(threads=args.threads), reference=reference,
        solver=pyomo_solver(args), time_limit=args.time_limit, stop=args.stop,
    )
    if args.stop.is_set():
        why = "stopped"
    elif args.time_limit is not None and result.seconds >= args.time_limit:
        why = "time limit"
    else:  # within the time: a sub-problem no solver could settle (extreme scales), or a refused witness
        why = "not decided"
    verdict = {"fires": "yes", "never": "no", "unknown": f"unknown ({why})"}[result.status]
    human = "\n".join(
        [
            f"can neuron {args.neuron} of ReLU layer {args.layer} fire? {verdict}",
            f"max pre-activation: {_extreme(result.maximum, result.found, result.upper_bound, '<=')}",
            f"witness: {fmt(result.witness)}",
            f"seconds: {result.seconds:.3f}",
        ]
    )
    print_answer(args, result.to_json(), human)
    return 0


def run_feature_report(args) -> int:
    """``milp fires MODEL --box B --layer L`` (no --neuron) or ``--all``: every neuron of the layer(s)."""
    import sys

    from tqdm import tqdm

    from milp.core.options import SolverOptions
    from milp.search.features import feature_report

    if args.all and (args.layer is not None or args.neuron is not None):
        raise CliError("--all reports every ReLU layer: give it without --layer and --neuron")
    if not args.all and args.layer is None:
        raise CliError("say which neurons: --layer L --neuron K for one, --layer L for a whole layer, --all for every layer")
    if args.solver is not None:
        raise CliError("--solver solves one neuron's MILP through Pyomo: give --layer and --neuron with it")
    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network, reference)
    progress = None
    if not args.json and sys.stderr.isatty():
        progress = tqdm(total=None, unit=" neurons", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        progress.total = total
        progress.n = done
        progress.refresh()

    try:
        report = feature_report(
            network, box, None if args.all else args.layer, bounds=args.bounds, options=SolverOptions(threads=args.threads),
            time_limit=args.time_limit, stop=args.stop, reference=reference, progress=update if progress else None,
        )
    finally:
        if progress is not None:
            progress.close()
    lines = [f"{'layer':>5} {'neuron':>6}  {'status':<7}  {'z at witness':>13}  {'proved min z':>13}  {'proved max z':>13}  decided by"]
    for n in report.neurons:
        lines.append(f"{n.layer:>5} {n.neuron:>6}  {n.status:<7}  {fmt(n.value):>13}  {fmt(n.lower_bound):>13}  {fmt(n.upper_bound):>13}  {n.decided_by}")
    counts = report.counts()
    lines.append("   ".join(f"{status} {count}" for status, count in counts.items()) + f"   ({len(report.neurons)} neurons, {report.seconds:.3f} s)")
    print_answer(args, report.to_json(), "\n".join(lines))
    return 0


def run_reach(args) -> int:
    from milp.search.queries import reach
    from milp.core.options import SolverOptions

    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network, reference)
    if not args.where:
        raise CliError('reach needs at least one --where condition, e.g. --where "y[0] - y[1] >= 0.2"')
    result = reach(
        network, box, args.where, bounds=args.bounds, options=SolverOptions(threads=args.threads), reference=reference,
        time_limit=args.time_limit, stop=args.stop,
    )
    lines = [f"{result.status}" + (f" ({result.reason})" if result.reason else "")]
    if result.status == "sat":
        lines += [f"witness: {fmt(result.witness)}", f"output:  {fmt(result.output)}"]
    lines.append(f"seconds: {result.seconds:.3f}   decided by {result.decided_by}")
    print_answer(args, result.to_json(), "\n".join(lines))
    return 0


def run_range(args) -> int:
    from milp.search.queries import output_range
    from milp.core.options import SolverOptions

    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network, reference)
    outputs = None if args.output is None else [args.output]
    result = output_range(
        network, box, outputs, bounds=args.bounds, options=SolverOptions(threads=args.threads), reference=reference, solver=pyomo_solver(args),
        time_limit=args.time_limit, stop=args.stop,
    )
    lines = []
    for o in result.outputs:
        lines.append(f"y[{o.index}]  min {_extreme(o.min, o.min_found, o.min_bound, '>=', o.argmin)}   "
                     f"max {_extreme(o.max, o.max_found, o.max_bound, '<=', o.argmax)}   ({o.status})")
    lines.append(f"seconds: {result.seconds:.3f}")
    print_answer(args, result.to_json(), "\n".join(lines))
    return 0


def _extreme(exact, found, bound, sense: str, point=None) -> str:
    """An optimum as the answer reads it: the proved value, or at a limit what was found and what
    is proved (``sense`` "<=" for a maximum, ">=" for a minimum), e.g. ``unknown, found 0.41 at
    [...], proved <= 0.58``."""
    at = "" if point is None else f" at {fmt(point)}"
    if exact is not None:
        return f"{fmt(exact)}{at}" if point is not None else f"{fmt(exact)}   (proved)"
    seen = "no point checked" if found is None else f"found {fmt(found)}{at}"
    proved = "nothing proved" if bound is None else f"proved {sense} {fmt(bound)}"
    return f"unknown, {seen}, {proved}"


def register(command) -> None:
    p = command("fires", "can neuron k of ReLU layer L be positive anywhere in the box? (exact max and witness); "
                         "or every neuron of a layer: fires, never, always (linear on the box) or unknown",
                "examples:\n  milp fires model.onnx --box -5:5 --layer 1 --neuron 0 --json\n"
                "  milp fires examples/digits_mlp.onnx --box 0:1 --layer 1        # a table, one row per neuron\n"
                "  milp fires examples/digits_mlp.onnx --box 0:1 --all --json     # every ReLU layer")
    add_common(p)
    p.add_argument("--layer", type=int, default=None, help="ReLU layer, counted from 0 in evaluation order")
    p.add_argument("--neuron", type=int, default=None, help="neuron index within the layer, from 0 (without it: the whole layer)")
    p.add_argument("--all", action="store_true", help="report every neuron of every ReLU layer")
    add_solver(p)
    add_pyomo_solver(p)
    p.set_defaults(run=run_fires)

    p = command("reach", "is there an input in the box where all conditions hold? sat (with a checked witness), unsat or unknown",
                'example:\n  milp reach model.onnx --box "-1:1,-1:1,0:0.5" --where "y[0] - y[1] >= 0.2"')
    add_common(p)
    p.add_argument("--where", action="append", default=[], help=CONDITION_HELP)
    add_solver(p)
    p.set_defaults(run=run_reach)

    p = command("range", "exact min and max of each output over the box, with the inputs attaining them",
                "example:\n  milp range model.onnx --box -1:1 --output 0")
    add_common(p)
    p.add_argument("--output", type=int, default=None, help="only this output")
    add_solver(p)
    add_pyomo_solver(p)
    p.set_defaults(run=run_range)
