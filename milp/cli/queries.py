"""``milp fires``, ``milp reach`` and ``milp range``: the exact queries."""

from __future__ import annotations

from milp.cli.common import (CONDITION_HELP, CliError, add_common, add_pyomo_solver, add_solver, box_for, fmt, load_model,
                             print_answer, pyomo_solver)


def run_fires(args) -> int:
    from milp.search.queries import fires
    from milp.core.options import SolverOptions

    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network)
    result = fires(
        network, box, args.layer, args.neuron, bounds=args.bounds, options=SolverOptions(threads=args.threads), reference=reference,
        solver=pyomo_solver(args), time_limit=args.time_limit, stop=args.stop,
    )
    limit = "stopped" if args.stop.is_set() else "time limit"
    verdict = {"fires": "yes", "never": "no", "unknown": f"unknown ({limit})"}[result.status]
    human = "\n".join(
        [
            f"can neuron {args.neuron} of ReLU layer {args.layer} fire? {verdict}",
            f"max pre-activation: {fmt(result.maximum)}   (proved upper bound {fmt(result.upper_bound)})",
            f"witness: {fmt(result.witness)}",
            f"seconds: {result.seconds:.3f}",
        ]
    )
    print_answer(args, result.to_json(), human)
    return 0


def run_reach(args) -> int:
    from milp.search.queries import reach
    from milp.core.options import SolverOptions

    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network)
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
    box = box_for(args, network)
    outputs = None if args.output is None else [args.output]
    result = output_range(
        network, box, outputs, bounds=args.bounds, options=SolverOptions(threads=args.threads), reference=reference, solver=pyomo_solver(args),
        time_limit=args.time_limit, stop=args.stop,
    )
    lines = []
    for o in result.outputs:
        lines.append(f"y[{o.index}]  min {fmt(o.min)} at {fmt(o.argmin)}   max {fmt(o.max)} at {fmt(o.argmax)}   ({o.status})")
    lines.append(f"seconds: {result.seconds:.3f}")
    print_answer(args, result.to_json(), "\n".join(lines))
    return 0


def register(command) -> None:
    p = command("fires", "can neuron k of ReLU layer L be positive anywhere in the box? (exact max and witness)",
                "example:\n  milp fires model.onnx --box -5:5 --layer 1 --neuron 0 --json")
    add_common(p)
    p.add_argument("--layer", type=int, required=True, help="ReLU layer, counted from 0 in evaluation order")
    p.add_argument("--neuron", type=int, required=True, help="neuron index within the layer, from 0")
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
